"""Loader for attribute-value extraction data in JSON lines (OA-Mine / ExtractGPT layout).

Each line is ``{"input": title, "category": ..., "target_scores": {attribute: {value: 1}}}``
(an ``"id"`` field, when present, is the item id; otherwise ``"<file stem>:<line>"``).  The
result has one item per line (``title``, ``category``, ``split`` from the file name), one
``item_attributes`` row per target value, and ``truth["attribute_spans"]`` with the character
span of the first occurrence of each value in the title.  Interactions and users are empty.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from kgwb.data.loaders._io import (
    CONTROL_IN_ID,
    EMPTY_ID,
    MAX_JSON_DEPTH,
    Errors,
    Problem,
    TextFile,
    check_errors,
    emit,
    may_nest_deeper,
    read_lines,
)
from kgwb.data.schema import SPLITS, Dataset, LoadReport
from kgwb.errors import ConfigError, DataError

INVALID_JSON = "invalid JSON"
TOO_DEEP = "nested too deeply"
CONTROL = re.compile(r"[\x00-\x1f\x7f]")
NOT_FOUND = "value not found in title"
#: a target value that means "this attribute is absent" rather than a string to find
NOT_APPLICABLE = {"n/a"}
WHAT = 'JSON lines {"input": title, "category": ..., "target_scores": {attribute: {value: 1}}}'


def load_attributes(
    path: str | Path | Sequence[str | Path], *, errors: Errors = "raise", name: str | None = None
) -> Dataset:
    """Load one or more attribute JSON-lines files (or a folder of them) into a Dataset."""
    check_errors(errors)
    files = _files(path)
    report = LoadReport()
    items: list[dict[str, Any]] = []
    attributes: list[tuple[str, str, str]] = []
    spans: list[tuple[str, str, str, str, int, int]] = []
    seen_ids: set[str] = set()
    not_applicable = 0
    for file in files:
        tf = TextFile.open(file, what=WHAT)
        report.files.append(str(file))
        lines = read_lines(tf, errors=errors)
        report.read(lines.n_rows)
        emit(lines.problems, file, errors, report)
        split = _split_of(file)
        loaded = 0
        for text, line in zip(lines.text.to_pylist(), lines.numbers.tolist(), strict=True):
            parsed = _parse(text, file, line, seen_ids)
            if isinstance(parsed, Problem):
                emit([parsed], file, errors, report)
                continue
            item_id, title, category, targets = parsed
            seen_ids.add(item_id)
            items.append({"item_id": item_id, "title": title, "category": category, "split": split})
            for attribute, value, start in targets:
                if start < 0:
                    not_applicable += 1
                    continue
                attributes.append((item_id, attribute, value))
                spans.append((item_id, "title", attribute, value, start, start + len(value)))
            loaded += 1
        report.loaded(loaded)

    items_df = pd.DataFrame(items, columns=["item_id", "title", "category", "split"])
    for column in ("item_id", "title", "category", "split"):
        items_df[column] = items_df[column].astype("str")
    item_attributes = pd.DataFrame(attributes, columns=["item_id", "attribute", "value"]).astype(
        "str"
    )
    span_df = pd.DataFrame(
        spans, columns=["item_id", "field", "attribute", "value", "start", "end"]
    ).astype({c: "str" for c in ("item_id", "field", "attribute", "value")})
    span_df = span_df.astype({"start": "int64", "end": "int64"})
    schema = (
        item_attributes.merge(items_df[["item_id", "category"]], on="item_id")
        .groupby("category")["attribute"]
        .apply(lambda s: sorted(set(s)))
        .to_dict()
    )
    return Dataset(
        name=name or (files[0].parent.name if len(files) > 1 else files[0].stem),
        items=items_df,
        item_attributes=item_attributes,
        truth={"attribute_spans": span_df},
        meta={
            "format": "attributes",
            "source": [str(f) for f in files],
            "schema": schema,
            "not_applicable_values": not_applicable,
        },
        report=report,
    )


def _files(path: str | Path | Sequence[str | Path]) -> list[Path]:
    if isinstance(path, (str, Path)):
        p = Path(path)
        if p.is_dir():
            candidates = sorted(p.glob("*.jsonl")) + sorted(p.glob("*.json"))
            by_split = [f for f in candidates if f.stem in SPLITS]
            files = by_split or candidates
            if not files:
                raise DataError("no .jsonl files in this folder", file=p, expected=WHAT)
            return sorted(files, key=lambda f: (_split_rank(f), f.name))
        return [p]
    files = [Path(p) for p in path]
    if not files:
        raise ConfigError("no attribute files given")
    return files


def _split_of(file: Path) -> str | None:
    stem = _stem(file)
    for split in SPLITS:
        if stem == split or any(stem.startswith(split + sep) for sep in "_.-"):
            return split
    return None


def _split_rank(file: Path) -> int:
    split = _split_of(file)
    return SPLITS.index(split) if split else len(SPLITS)


def _parse(
    text: str, file: Path, line: int, seen_ids: set[str]
) -> Problem | tuple[str, str, str | None, list[tuple[str, str, int]]]:
    """One line -> (item_id, title, category, [(attribute, value, start)]) or its problem."""
    if may_nest_deeper(text.encode("utf-8", "replace")):
        return Problem(line, TOO_DEEP, expected=f"JSON nested at most {MAX_JSON_DEPTH} levels deep")
    try:
        record = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as e:
        return Problem(line, INVALID_JSON, column=e.colno, expected=WHAT, detail=e.msg)
    except ValueError as e:  # NaN / Infinity
        return Problem(line, INVALID_JSON, expected=WHAT, detail=str(e))
    if not isinstance(record, dict):
        return Problem(line, "not a JSON object", expected=WHAT, detail=type(record).__name__)
    title = record.get("input")
    if not isinstance(title, str) or not title.strip():
        reason = "missing field" if title is None else "not a non-empty string"
        return Problem(line, reason, column="input", expected="the product title as a string")
    category = record.get("category")
    if category is not None and not isinstance(category, str):
        return Problem(line, "not a string", column="category", expected="a category name")
    if "id" in record:
        raw_id = record["id"]
        if (
            isinstance(raw_id, bool)
            or not isinstance(raw_id, (str, int))
            or not str(raw_id).strip()
        ):
            return Problem(
                line,
                EMPTY_ID if raw_id in (None, "") else "not a string or integer",
                column="id",
                expected="a non-empty string or integer id",
            )
        item_id = str(raw_id)
        if CONTROL.search(item_id):
            return Problem(
                line,
                CONTROL_IN_ID,
                column="id",
                expected="an id without NUL or control characters",
                detail=repr(item_id),
            )
    else:
        item_id = f"{_stem(file)}:{line}"
    if item_id in seen_ids:
        return Problem(
            line, "duplicate item_id", column="id", expected="unique ids", detail=item_id
        )
    scores = record.get("target_scores", {})
    if not isinstance(scores, dict):
        return Problem(
            line, "not an object", column="target_scores", expected="{attribute: {value: 1}}"
        )
    targets = []
    for attribute, values in scores.items():
        column = f"target_scores.{attribute}"
        if not isinstance(values, dict) or not all(isinstance(v, str) for v in values):
            return Problem(line, "not an object", column=column, expected="{value: 1}")
        for value in values:
            start = title.find(value) if value else -1
            if start < 0 and value.strip().lower() not in NOT_APPLICABLE:
                return Problem(
                    line,
                    NOT_FOUND,
                    column=column,
                    expected="a value that is a substring of the title",
                    detail=repr(value),
                )
            targets.append((attribute, value, start))
    return item_id, title, category, targets


def _reject_constant(name: str) -> Any:
    raise ConfigError(f"{name} is not valid JSON")


def _stem(file: Path) -> str:
    return file.name.split(".")[0] if file.suffix == ".gz" else file.stem
