"""Loader for generic tables: CSV, TSV, Parquet and JSON lines (each optionally gzipped).

A source is one file, a folder, or a ``{role: file}`` dict, with roles ``interactions``,
``items``, ``users`` and ``reviews``; ``columns`` renames source columns to canonical ones.
Amazon review / metadata dumps (McAuley et al. 2014, also the 2018 layout) are recognised by
their columns and mapped with :data:`AMAZON_REVIEWS` / :data:`AMAZON_METADATA`, including the
old metadata files written as Python dict literals.  Reviews also give the interactions;
metadata ``related`` lists (``also_bought``, ``also_viewed``, ``bought_together``) give KG
triples between ``item:<id>`` entities (``product:<id>`` for products outside the item table),
the same entity convention as the KGAT and RecBole loaders.
"""

from __future__ import annotations

import ast
import csv
import io
import json
import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.json as pjson

from kgwb.data.loaders._io import (
    CONTROL_IN_ID,
    EMPTY_ID,
    MAX_JSON_DEPTH,
    NOT_NUMBER,
    WRONG_COLUMNS,
    Errors,
    Problem,
    Rows,
    TextFile,
    check_errors,
    decode,
    duplicated,
    emit,
    first_seen,
    has_control,
    is_empty,
    isin,
    json_depth,
    may_nest_deeper,
    read_lines,
    to_float,
)
from kgwb.data.schema import SPLITS, Dataset, LoadReport
from kgwb.errors import ConfigError, DataError, UnknownNameError

ROLES = ("users", "items", "reviews", "interactions")
REQUIRED = {
    "interactions": ("user_id", "item_id"),
    "reviews": ("user_id", "item_id"),
    "items": ("item_id",),
    "users": ("user_id",),
}

#: Amazon review dumps (``reviews_Beauty_5.json.gz``): source column -> canonical column
AMAZON_REVIEWS: dict[str, str] = {
    "reviewerID": "user_id",
    "asin": "item_id",
    "overall": "rating",
    "reviewText": "text",
    "summary": "summary",
    "unixReviewTime": "timestamp",
}
#: Amazon metadata dumps (``meta_Beauty.json.gz``); ``categories`` and ``related`` are expanded
#: into category/category_path and KG triples.  The 2018 names (``category``, ``also_buy``,
#: ``also_view``) are accepted too.
AMAZON_METADATA: dict[str, str] = {
    "asin": "item_id",
    "title": "title",
    "brand": "brand",
    "categories": "categories",
    "category": "categories",
    "description": "description",
    "price": "price",
    "related": "related",
    "also_buy": "also_bought",
    "also_view": "also_viewed",
}
RELATIONS = ("also_bought", "also_viewed", "bought_together")

TABLE_SUFFIXES = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".json": "jsonl",
    ".ndjson": "jsonl",
}
INVALID_JSON = "invalid JSON"
TOO_DEEP = "nested too deeply"
NOT_TIMESTAMP = "not a timestamp"
DUPLICATE_INTERACTION = "duplicate interaction"
#: seconds since 1970 that pandas can represent (1677-09-21 .. 2262-04-11)
TIMESTAMP_RANGE = (
    int(pd.Timestamp.min.ceil("s").timestamp()),
    int(pd.Timestamp.max.floor("s").timestamp()),
)
TIMESTAMP_EXPECTED = "seconds since 1970 or an ISO date, between 1677 and 2262"


def load_tables(
    source: str | Path | Mapping[str, str | Path] | None,
    *,
    errors: Errors = "raise",
    name: str | None = None,
    interactions: str | Path | None = None,
    items: str | Path | None = None,
    users: str | Path | None = None,
    reviews: str | Path | None = None,
    columns: Mapping[str, Any] | None = None,
) -> Dataset:
    """Load tables into a Dataset.

    ``source``: a file (its role is guessed from the Amazon presets, else ``interactions``), a
    folder (roles from file names: ``meta*``/``*item*`` items, ``*review*`` reviews, ``*user*``
    users, ``*interaction*``/``*rating*`` interactions) or a ``{role: file}`` dict; the keyword
    arguments add or override roles.  ``columns`` is ``{role: {source: canonical}}`` or one flat
    ``{source: canonical}`` for every role; it is applied on top of a matching Amazon preset.
    """
    check_errors(errors)
    files = _roles(source, interactions=interactions, items=items, users=users, reviews=reviews)
    report = LoadReport()
    read, sources = _read_roles(files, errors, report)
    tables: dict[str, pd.DataFrame] = {}
    kg_parts: dict[str, Any] = {}
    # users and items first, so that interactions and reviews can be checked against them
    for role in ROLES:
        if role not in read:
            continue
        rows, has_header = read[role]
        _rename(rows, _mapping(role, rows.df.columns, columns))
        _require(rows, role, has_header)
        tables[role], extra = _canonical(rows, role, tables)
        kg_parts.update(extra)
    items_df, users_df, inter_df = _complete_tables(tables)

    kg = entities = item_entities = None
    if kg_parts:
        kg, entities, item_entities = _knowledge_graph(items_df, kg_parts)
    first = next(iter(files.values()))
    return Dataset(
        name=name or _default_name(source, first),
        items=items_df,
        users=users_df,
        interactions=inter_df,
        reviews=tables.get("reviews"),
        kg=kg,
        entities=entities,
        item_entities=item_entities,
        meta={
            "format": "table",
            "source": sources,
        },
        report=report,
    )


def _read_roles(
    files: dict[str, Path], errors: Errors, report: LoadReport
) -> tuple[dict[str, tuple[Rows, bool]], dict[str, str]]:
    """Each file read, by role (``auto`` guessed from its columns): ``(rows, has_header)``,
    and the file of each role."""
    read: dict[str, tuple[Rows, bool]] = {}
    sources: dict[str, str] = {}
    for key, file in files.items():
        rows, has_header = _read_file(file, errors, report)
        role = _guess_role(rows.df.columns) if key == "auto" else key
        if role in read:
            raise DataError(
                f"a second file for the {role} table (the first is {read[role][0].file})",
                file=file,
                expected=f"one {role} file",
            )
        read[role] = (rows, has_header)
        sources[role] = str(file)
    return read, sources


def _complete_tables(
    tables: dict[str, pd.DataFrame],
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """``(items, users, interactions)``: interactions from the reviews when there is no
    interaction table, users and items from the ids seen when their tables are missing."""
    items_df = tables.get("items")
    users_df = tables.get("users")
    reviews_df = tables.get("reviews")
    inter_df = tables.get("interactions")
    if inter_df is None and reviews_df is not None:
        keep = [c for c in ("user_id", "item_id", "rating", "timestamp") if c in reviews_df]
        inter_df = reviews_df[keep].copy()
    if inter_df is None:
        inter_df = pd.DataFrame(
            {"user_id": pd.Series(dtype="str"), "item_id": pd.Series(dtype="str")}
        )
    activity = [df for df in (inter_df, reviews_df) if df is not None]
    if items_df is None:
        items_df = pd.DataFrame({"item_id": first_seen(df["item_id"] for df in activity)})
    if users_df is None:
        users_df = pd.DataFrame({"user_id": first_seen(df["user_id"] for df in activity)})
    return items_df, users_df, inter_df


# ----------------------------------------------------------------------------- the sources
def _roles(source: Any, **explicit: str | Path | None) -> dict[str, Path]:
    roles: dict[str, Path] = {}
    if isinstance(source, Mapping):
        for role, file in source.items():
            if role not in ROLES:
                raise UnknownNameError("table role", role, list(ROLES))
            roles[role] = Path(file)
    elif source is not None:
        p = Path(source)
        if not p.exists():
            raise DataError("no such file or folder", file=p, expected="a table file or folder")
        if p.is_dir():
            roles.update(_roles_in_folder(p))
        else:
            roles["auto"] = p
    for role, file in explicit.items():
        if file is not None:
            roles[role] = Path(file)
    if not roles:
        raise ConfigError(
            "nothing to load: give a source or one of interactions/items/users/reviews"
        )
    return roles


def _table_kind(path: Path) -> str | None:
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    return TABLE_SUFFIXES.get(suffixes[-1]) if suffixes else None


def _roles_in_folder(folder: Path) -> dict[str, Path]:
    candidates = sorted(p for p in folder.iterdir() if p.is_file() and _table_kind(p))
    if not candidates:
        raise DataError(
            "no table files in this folder",
            file=folder,
            expected="files ending in " + ", ".join(sorted(TABLE_SUFFIXES)),
        )
    if len(candidates) == 1:
        return {"auto": candidates[0]}
    roles: dict[str, Path] = {}
    for p in candidates:
        stem = p.name.lower()
        role = _role_from_name(stem)
        if role is None:
            raise DataError(
                "cannot tell which table this file holds",
                file=p,
                expected="a name containing interaction, rating, review, user, item or meta,"
                " or pass interactions=/items=/users=/reviews=",
            )
        if role in roles:
            raise DataError(
                f"two files for the {role} table: {roles[role].name} and {p.name}",
                file=folder,
                expected=f"one {role} file, or pass {role}= explicitly",
            )
        roles[role] = p
    return roles


def _role_from_name(stem: str) -> str | None:
    if stem.startswith("meta") or "item" in stem or "product" in stem:
        return "items"
    if "review" in stem:
        return "reviews"
    if "user" in stem:
        return "users"
    if "interaction" in stem or "rating" in stem or "inter" in stem:
        return "interactions"
    return None


#: columns that make a one-file source without a ``user_id`` column a catalog (items table)
CATALOG_COLUMNS = frozenset({"title", "brand", "category", "categories", "description", "price"})


def _guess_role(columns: pd.Index) -> str:
    cols = set(columns)
    if {"reviewerID", "asin"} <= cols:
        return "reviews"
    if "asin" in cols:
        return "items"
    if "item_id" in cols and "user_id" not in cols and cols & CATALOG_COLUMNS:
        return "items"  # a catalog alone: enough for `kgwb kg build`
    return "interactions"


def _mapping(role: str, present: pd.Index, columns: Mapping[str, Any] | None) -> dict[str, str]:
    cols = set(present)
    mapping: dict[str, str] = {}
    if role in ("reviews", "interactions") and {"reviewerID", "asin"} <= cols:
        mapping.update(AMAZON_REVIEWS)
    elif role == "items" and "asin" in cols:
        mapping.update(AMAZON_METADATA)
    if columns:
        if all(isinstance(v, Mapping) for v in columns.values()):
            mapping.update(columns.get(role, {}))
        else:
            mapping.update(columns)
    return {src: dst for src, dst in mapping.items() if src in cols and src != dst}


def _rename(rows: Rows, mapping: dict[str, str]) -> None:
    # a preset never overwrites a column that already has the canonical name
    existing = set(rows.df.columns)
    mapping = {s: d for s, d in mapping.items() if d not in existing or d in mapping}
    targets = list(mapping.values())
    clash = {d for d in targets if targets.count(d) > 1}
    for d in clash:  # e.g. both 'categories' and 'category' in one file: keep the first
        first = next(s for s in mapping if mapping[s] == d)
        mapping = {s: t for s, t in mapping.items() if t != d or s == first}
    rows.df = rows.df.rename(columns=mapping)


def _require(rows: Rows, role: str, has_header: bool) -> None:
    for column in REQUIRED[role]:
        if column not in rows.df.columns:
            example = repr({role: {"your_column": column}})
            raise DataError(
                f"missing required column {column!r} for the {role} table",
                file=rows.file,
                line=1 if has_header else None,
                expected=f"columns {', '.join(REQUIRED[role])}; map yours with columns={example}",
            )


def _default_name(source: Any, first: Path) -> str:
    if isinstance(source, (str, Path)) and Path(source).is_dir():
        return Path(source).resolve().name
    return first.name.split(".")[0]


# --------------------------------------------------------------------------- the file readers
def _read_file(file: Path, errors: Errors, report: LoadReport) -> tuple[Rows, bool]:
    """Read any supported table file into string/object columns; returns (rows, has_header)."""
    kind = _table_kind(file)
    if kind is None:
        raise DataError(
            "unknown table format",
            file=file,
            expected="a file ending in " + ", ".join(sorted(TABLE_SUFFIXES)) + " (optionally .gz)",
        )
    if kind == "parquet":
        return _read_parquet(file, errors, report), False
    if kind == "jsonl":
        return _read_jsonl(file, errors, report), False
    return _read_csv(file, "," if kind == "csv" else "\t", errors, report), True


def _read_parquet(file: Path, errors: Errors, report: LoadReport) -> Rows:
    what = "a Parquet table"
    if not file.exists():
        raise DataError("missing file", file=file, expected=what)
    try:
        df = pd.read_parquet(file)
    except Exception as e:  # pyarrow raises several types for a broken file
        raise DataError(f"cannot read Parquet: {e}", file=file, expected=what) from None
    if df.empty:
        raise DataError("empty file", file=file, expected=what + " with rows")
    report.files.append(str(file))
    report.read(len(df))
    return Rows(
        file,
        df.reset_index(drop=True),
        np.arange(1, len(df) + 1),
        errors=errors,
        report=report,
        row_kind="row",
    )


def _read_csv(file: Path, delimiter: str, errors: Errors, report: LoadReport) -> Rows:
    sep_name = "comma" if delimiter == "," else "tab"
    what = f"a {sep_name}-separated table with a header line"
    tf = TextFile.open(file, what=what)
    names = next(csv.reader([tf.first_line()], delimiter=delimiter))
    seen = set()
    for j, column in enumerate(names, start=1):
        if not column.strip() or column in seen:
            raise DataError(
                "empty column name" if not column.strip() else f"duplicate column {column!r}",
                file=file,
                line=1,
                column=j,
                expected="unique column names in the header",
            )
        seen.add(column)
    report.files.append(str(file))
    parsed = _read_csv_fast(tf, names, delimiter)
    if parsed is None:
        df, numbers, problems, n_rows = _read_csv_slow(tf, names, delimiter, errors)
    else:
        df, numbers = parsed
        problems, n_rows = [], len(df)
    if n_rows == 0:
        raise DataError("no data rows after the header", file=file, expected=what)
    report.read(n_rows)
    emit(problems, file, errors, report)
    return Rows(file, df, numbers, errors=errors, report=report)


def _read_csv_fast(
    tf: TextFile, names: list[str], delimiter: str
) -> tuple[pd.DataFrame, np.ndarray] | None:
    try:
        table = pcsv.read_csv(
            pa.BufferReader(tf.raw),
            read_options=pcsv.ReadOptions(column_names=names, skip_rows=1),
            parse_options=pcsv.ParseOptions(
                delimiter=delimiter, newlines_in_values=False, ignore_empty_lines=False
            ),
            convert_options=pcsv.ConvertOptions(
                column_types={n: pa.string() for n in names},
                strings_can_be_null=True,
                null_values=[""],
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    if table.num_rows != tf.physical_lines() - 1:
        return None  # quoted line breaks: rows are not lines
    df = table.to_pandas()
    if df.isna().all(axis=1).any():
        return None  # a blank line or a row of empty cells: the csv module tells them apart
    return df, np.arange(2, 2 + len(df), dtype=np.int64)


def _read_csv_slow(
    tf: TextFile, names: list[str], delimiter: str, errors: Errors
) -> tuple[pd.DataFrame, np.ndarray, list[Problem], int]:
    text, problems = decode(tf.raw, stop_at_first=errors == "raise")
    undecodable = {p.line for p in problems}
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    next(reader)
    records, numbers = [], []
    previous_end = reader.line_num
    n = len(names)
    expected = f"{n} columns: {', '.join(names)}"
    while True:
        start = previous_end + 1
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as e:
            problems.append(Problem(start, "malformed CSV", expected=expected, detail=str(e)))
            previous_end = reader.line_num
            continue
        previous_end = reader.line_num
        if not row or (len(row) == 1 and not row[0].strip()):
            continue  # a blank line (or an undecodable one, already a problem)
        if start in undecodable:
            continue
        if len(row) != n:
            problems.append(
                Problem(start, WRONG_COLUMNS, expected=expected, detail=f"found {len(row)}")
            )
            if errors == "raise":
                break
            continue
        records.append([v if v != "" else None for v in row])
        numbers.append(start)
    df = pd.DataFrame(records, columns=names, dtype="str")
    return df, np.asarray(numbers, dtype=np.int64), problems, len(records) + len(problems)


def _read_jsonl(file: Path, errors: Errors, report: LoadReport) -> Rows:
    what = "one JSON object per line"
    tf = TextFile.open(file, what=what)
    report.files.append(str(file))
    df = _read_jsonl_fast(tf)
    if df is not None:
        report.read(len(df))
        return Rows(file, df, np.arange(1, len(df) + 1), errors=errors, report=report)
    lines = read_lines(tf, errors=errors)
    problems = list(lines.problems)
    records: list[dict[str, Any]] = []
    numbers: list[int] = []
    for text, line in zip(lines.text.to_pylist(), lines.numbers.tolist(), strict=True):
        record, problem = _json_record(text, line, what)
        if problem is not None:
            problems.append(problem)
            if errors == "raise":
                break
            continue
        if not isinstance(record, dict):
            problems.append(
                Problem(line, "not a JSON object", expected=what, detail=type(record).__name__)
            )
            if errors == "raise":
                break
            continue
        records.append(record)
        numbers.append(line)
    report.read(lines.n_rows)
    emit(problems, file, errors, report)
    df = pd.DataFrame.from_records(records) if records else pd.DataFrame()
    return Rows(file, df, np.asarray(numbers, dtype=np.int64), errors=errors, report=report)


_NON_JSON_NUMBER = re.compile(rb"[:\[,]\s*-?(?:NaN|Infinity)\b")


def _reject_constant(name: str) -> Any:
    raise ConfigError(f"{name} is not valid JSON")


def _json_record(text: str, line: int, what: str) -> tuple[Any, Problem | None]:
    """One JSON (or Python-literal) line, or the problem that makes it unreadable."""
    try:
        record = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as e:
        record = _python_literal(text)
        if record is None and not may_nest_deeper(text.encode("utf-8", "replace")):
            return None, Problem(line, INVALID_JSON, column=e.colno, expected=what, detail=e.msg)
    except ValueError as e:  # NaN / Infinity
        return None, Problem(line, INVALID_JSON, expected=what, detail=str(e))
    except RecursionError:
        record = None
    if record is None or json_depth(record) > MAX_JSON_DEPTH:
        return None, Problem(
            line, TOO_DEEP, expected=f"JSON nested at most {MAX_JSON_DEPTH} levels deep"
        )
    return record, None


def _read_jsonl_fast(tf: TextFile) -> pd.DataFrame | None:
    """Whole-file Arrow parse of strict JSON lines; None when the line-by-line pass is needed
    (Python literals, bad lines, blank lines, types that change between lines)."""
    try:
        tf.raw.decode("utf-8")  # Arrow's JSON reader does not check, and fails later
    except UnicodeDecodeError:
        return None
    if may_nest_deeper(tf.raw):
        return None  # pyarrow's reader recurses per level: deep nesting can crash it
    if _NON_JSON_NUMBER.search(tf.raw):
        return None  # pyarrow reads NaN / Infinity, which JSON (and the slow path) does not
    try:
        table = pjson.read_json(pa.BufferReader(tf.raw))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    if table.num_rows != tf.physical_lines():
        return None  # blank lines: rows are no longer lines
    if any(pa.types.is_timestamp(f.type) or pa.types.is_date(f.type) for f in table.schema):
        return None  # Arrow turned ISO strings into dates; keep the text as written
    return table.to_pandas()


_PY_TOKEN = re.compile(r"""'[^'\\\n]*'|"[^"\\\n]*"|\bTrue\b|\bFalse\b|\bNone\b""")
_PY_CONSTANTS = {"True": "true", "False": "false", "None": "null"}


def _py_token_to_json(match: re.Match) -> str:
    token = match.group()
    if token[0] == "'":
        return '"' + token[1:-1].replace('"', '\\"') + '"'
    return token if token[0] == '"' else _PY_CONSTANTS[token]


def _python_literal(text: str) -> Any:
    """Old Amazon metadata lines are Python dict literals (single quotes); None if not one.

    ``ast.literal_eval`` parses about 3,000 such lines a second, so a line without backslashes
    is first rewritten to JSON (every quote there delimits a string) and parsed by ``json``; the
    rewrite is only trusted when ``json`` accepts it, else ``literal_eval`` decides.
    """
    if not text.lstrip().startswith("{") or may_nest_deeper(text.encode("utf-8", "replace")):
        return None
    if "\\" not in text:
        if '"' in text or "True" in text or "False" in text or "None" in text:
            candidate = _PY_TOKEN.sub(_py_token_to_json, text)
        else:
            candidate = text.replace("'", '"')
        try:
            return json.loads(candidate, parse_constant=_reject_constant)
        except (ValueError, RecursionError):
            pass
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None


# --------------------------------------------------------------------- canonical conversion
def _canonical(
    rows: Rows, role: str, tables: dict[str, pd.DataFrame]
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Check and convert one role's rows; returns the table and KG material (items only)."""
    df = rows.df
    _check_ids(rows, df)
    converted = _converted_columns(rows, df, role)
    _flag_duplicates(rows, df, role, converted)
    if role in ("interactions", "reviews"):
        for key, ref in (("item_id", "items"), ("user_id", "users")):
            if ref in tables and len(rows):
                rows.flag(
                    ~isin(df[key], tables[ref][key]),
                    f"unknown {key}",
                    column=key,
                    expected=f"an id present in the {ref} table",
                    values=df[key],
                )
    keep = rows.compact()
    for column, values in converted.items():
        rows.df[column] = values[keep].reset_index(drop=True)
    df = rows.finish()

    extra: dict[str, Any] = {}
    if role == "items":
        df, extra = _item_fields(df)
    return _flatten_nested(df), extra


def _check_ids(rows: Rows, df: pd.DataFrame) -> None:
    """User and item ids as strings; empty ones and ones with control characters flagged."""
    for column in [c for c in ("user_id", "item_id") if c in df.columns]:
        missing = df[column].isna().to_numpy(dtype=bool)  # JSON null is no id, not "None"
        df[column] = _id_strings(df[column])
        rows.flag(
            missing | is_empty(df[column]), EMPTY_ID, column=column, expected="a non-empty id"
        )
        rows.flag(
            has_control(df[column].fillna("")),
            CONTROL_IN_ID,
            column=column,
            expected="an id without NUL or control characters",
            values=df[column],
        )


def _converted_columns(rows: Rows, df: pd.DataFrame, role: str) -> dict[str, pd.Series]:
    """Ratings, timestamps, splits and prices parsed (unparseable ones flagged)."""
    converted: dict[str, pd.Series] = {}
    if "rating" in df.columns and role in ("interactions", "reviews"):
        parsed, bad = to_float(df["rating"])
        rows.flag(bad, NOT_NUMBER, column="rating", expected="a number", values=df["rating"])
        converted["rating"] = parsed
    if "timestamp" in df.columns and role in ("interactions", "reviews"):
        parsed, bad = _timestamps(df["timestamp"])
        rows.flag(
            bad,
            NOT_TIMESTAMP,
            column="timestamp",
            expected=TIMESTAMP_EXPECTED,
            values=df["timestamp"],
        )
        converted["timestamp"] = parsed
    if "split" in df.columns and role == "interactions":
        split = df["split"].astype("str")
        rows.flag(
            ~split.isin(SPLITS) & split.notna(),
            "unknown split",
            column="split",
            expected="train, valid or test",
            values=split,
        )
        converted["split"] = split
    if "price" in df.columns and role == "items":
        parsed, bad = _prices(df["price"])
        rows.flag(bad, NOT_NUMBER, column="price", expected="a price", values=df["price"])
        converted["price"] = parsed
    return converted


def _flag_duplicates(
    rows: Rows, df: pd.DataFrame, role: str, converted: dict[str, pd.Series]
) -> None:
    """A user or item listed twice; an interaction (user, item[, timestamp]) given twice."""
    if role in ("items", "users"):
        key = "item_id" if role == "items" else "user_id"
        rows.flag(
            duplicated(df[key]) & df[key].notna().to_numpy(),
            f"duplicate {key}",
            column=key,
            expected=f"each {role[:-1]} once",
            values=df[key],
        )
    if role in ("interactions", "reviews") and len(rows):
        key_columns = ["user_id", "item_id"] + (["timestamp"] if "timestamp" in converted else [])
        keys = pd.DataFrame({c: converted.get(c, df[c]) for c in key_columns})
        rows.flag(
            keys.duplicated(keep="first").to_numpy(dtype=bool) & ~rows.bad,
            DUPLICATE_INTERACTION,
            column="item_id",
            expected="each (user, item"
            + (", timestamp" if "timestamp" in key_columns else "")
            + ") once",
            values=df["item_id"],
            always_skip=True,
        )


def _id_strings(values: pd.Series) -> pd.Series:
    if pd.api.types.is_float_dtype(values):
        integral = values.dropna()
        if (integral == np.floor(integral)).all():
            return values.astype("Int64").astype("str")
    if values.dtype == object:
        values = values.map(
            lambda v: str(int(v)) if isinstance(v, float) and v.is_integer() else str(v),
            na_action="ignore",
        )
    return values.astype("str")


def _timestamps(values: pd.Series) -> tuple[pd.Series, np.ndarray]:
    """Seconds since 1970 (Int64) from numbers or ISO dates; also the mask of unparseable ones."""
    if pd.api.types.is_datetime64_any_dtype(values):
        return _epoch_seconds(values), np.zeros(len(values), dtype=bool)
    numeric, bad = to_float(values)
    out = np.floor(numeric.to_numpy(dtype="float64", na_value=np.nan))
    if bad.any():
        dates = _iso_dates(values[bad])
        parsed = dates.notna().to_numpy()
        out[bad] = _epoch_seconds(dates).astype("float64").to_numpy(na_value=np.nan)
        bad = bad.copy()
        bad[np.flatnonzero(bad)[parsed]] = False
    low, high = TIMESTAMP_RANGE
    outside = ~np.isnan(out) & ((out < low) | (out > high))
    out[outside | bad] = np.nan
    return pd.Series(out, index=values.index).astype("Int64"), bad | outside


def _iso_dates(values: pd.Series) -> pd.Series:
    """ISO dates as UTC datetimes, NaT where unreadable or beyond what pandas represents."""
    text = values.map(lambda v: v if isinstance(v, str) else None)
    try:
        return pd.to_datetime(text, errors="coerce", utc=True, format="ISO8601")
    except (ValueError, OverflowError, pd.errors.OutOfBoundsDatetime):
        return pd.Series(
            [_one_date(v) for v in text], index=values.index, dtype="datetime64[ns, UTC]"
        )


def _one_date(value: str | None) -> pd.Timestamp:
    try:
        return pd.to_datetime(value, errors="coerce", utc=True, format="ISO8601")
    except (ValueError, OverflowError, pd.errors.OutOfBoundsDatetime):
        return pd.NaT


def _epoch_seconds(dates: pd.Series) -> pd.Series:
    if dates.dt.tz is not None:
        dates = dates.dt.tz_convert("UTC").dt.tz_localize(None)
    # through datetime64[s]: dates parsed at second resolution may lie beyond the ns range
    arr = dates.to_numpy(dtype="datetime64[s]")
    seconds = pd.Series(arr.astype("int64"), index=dates.index, dtype="Int64")
    return seconds.mask(np.isnat(arr))


def _prices(values: pd.Series) -> tuple[pd.Series, np.ndarray]:
    if pd.api.types.is_numeric_dtype(values):
        return values.astype("float64"), np.zeros(len(values), dtype=bool)
    cleaned = values.map(
        lambda v: v.strip().lstrip("$").replace(",", "") if isinstance(v, str) else v,
        na_action="ignore",
    )
    return to_float(cleaned)


def _item_fields(df: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Expand Amazon ``categories`` and ``related`` into canonical columns and KG material."""
    if "categories" in df.columns:
        paths = df.pop("categories").map(_category_path, na_action="ignore")
        df["category"] = paths.map(lambda p: p[-1] if p else None, na_action="ignore").astype("str")
        df["category_path"] = paths.map(
            lambda p: " > ".join(p) if p else None, na_action="ignore"
        ).astype("str")
    if "description" in df.columns and df["description"].dtype == object:
        df["description"] = df["description"].map(
            lambda v: "\n".join(map(str, v)) if isinstance(v, (list, tuple, np.ndarray)) else v,
            na_action="ignore",
        )
    related: dict[str, pd.Series] = {}
    if "related" in df.columns:
        nested = df.pop("related").map(_parse_nested, na_action="ignore")
        for relation in RELATIONS:
            related[relation] = nested.map(
                lambda d, r=relation: d.get(r) if isinstance(d, dict) else None,
                na_action="ignore",
            )
    for relation in RELATIONS:
        if relation in df.columns:
            related[relation] = df.pop(relation)
    if not related:
        return df, {}
    triples = []
    for relation, lists in related.items():
        tails = lists.map(_as_list, na_action="ignore").explode().dropna()
        triples.append(
            pd.DataFrame(
                {
                    "item_id": df["item_id"].to_numpy()[tails.index.to_numpy()],
                    "relation": relation,
                    "other": tails.astype("str").to_numpy(),
                }
            )
        )
    return df, {"related": pd.concat(triples, ignore_index=True)}


def _parse_nested(value: Any) -> dict | None:
    if isinstance(value, dict):
        return value
    if isinstance(value, str) and value.strip().startswith("{"):
        parsed = _json_cell(value)
        return parsed if parsed is not None else _python_literal(value)
    return None


def _json_cell(text: str) -> Any:
    """A JSON value held in a cell; None when it is not JSON or nests too deeply."""
    if may_nest_deeper(text.encode("utf-8", "replace")):
        return None
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        return None


def _as_list(value: Any) -> list | None:
    if isinstance(value, (list, tuple, np.ndarray)):
        return [str(v) for v in value]
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            parsed = _as_nested_list(text)
            return [str(v) for v in parsed] if isinstance(parsed, list) else None
        return [text] if text else None
    return None


def _category_path(value: Any) -> list[str] | None:
    """Amazon 2014 ``categories`` (list of paths: the first is used), 2018 ``category`` (one
    path), a JSON list in a CSV cell or a ``"A > B"`` string -> the path as a list."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            parsed = _as_nested_list(text)
            if parsed is not None:
                return _category_path(parsed)
        parts = [p.strip() for p in text.split(">")]
        return [p for p in parts if p] or None
    if isinstance(value, (list, tuple, np.ndarray)):
        seq = list(value)
        if seq and isinstance(seq[0], (list, tuple, np.ndarray)):
            seq = list(seq[0])
        path = [str(v).strip() for v in seq if str(v).strip()]
        return path or None
    if isinstance(value, float) and math.isnan(value):
        return None
    return [str(value)]


def _as_nested_list(text: str) -> Any:
    parsed = _json_cell(text)
    if parsed is not None:
        return parsed
    parsed = _python_literal("{'v': " + text + "}")
    return parsed["v"] if parsed else None


def _flatten_nested(df: pd.DataFrame) -> pd.DataFrame:
    """Columns holding lists or dicts (e.g. Amazon ``salesRank``, ``helpful``) become JSON text,
    so every table stays a flat, Parquet-friendly frame."""
    for column in df.columns:
        if df[column].dtype != object:
            continue
        kind = pd.api.types.infer_dtype(df[column], skipna=True)
        if kind in ("string", "empty"):
            df[column] = df[column].astype("str")
            continue
        if kind not in ("mixed", "unknown-array"):
            continue
        df[column] = df[column].map(_to_json_text, na_action="ignore")
        if pd.api.types.infer_dtype(df[column], skipna=True) == "string":
            df[column] = df[column].astype("str")
    return df


def _to_json_text(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value, default=_json_default)
    return value


def _json_default(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return str(value)


def _knowledge_graph(
    items: pd.DataFrame, parts: dict[str, Any]
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    related = parts["related"]
    item_ids = items["item_id"].astype("str")
    other_is_item = isin(related["other"], item_ids)
    tail = np.where(other_is_item, "item:", "product:").astype(object) + related["other"].to_numpy(
        dtype=object
    )
    kg = pd.DataFrame(
        {
            "head": ("item:" + related["item_id"]).astype("str"),
            "relation": related["relation"].astype("str"),
            "tail": pd.Series(tail, dtype="str"),
        }
    )
    products = first_seen([related["other"][~other_is_item]])
    entities = pd.DataFrame(
        {
            "entity_id": pd.concat(["item:" + item_ids, "product:" + products], ignore_index=True),
            "type": ["item"] * len(item_ids) + ["product"] * len(products),
            "name": pd.concat([item_ids, products], ignore_index=True),
        }
    ).astype("str")
    item_entities = pd.DataFrame({"item_id": item_ids, "entity_id": ("item:" + item_ids)})
    return kg, entities, item_entities
