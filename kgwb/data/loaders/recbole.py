"""Loader for RecBole atomic files (tab-separated, typed header ``field:type``).

A folder holds ``NAME.inter`` or the pre-split ``NAME.train.inter`` / ``NAME.valid.inter``
(optional) / ``NAME.test.inter``, and optionally ``NAME.item``, ``NAME.user``, ``NAME.kg`` and
``NAME.link``.  Header types are ``token``, ``token_seq``, ``float`` and ``float_seq``.

Mapping to the canonical schema: ``user_id``/``item_id``/``rating``/``timestamp`` keep their
names; ``head_id``/``relation_id``/``tail_id`` become ``head``/``relation``/``tail``; ``.link``
gives ``item_entities``; ``.item`` keeps every column, and its ``categories`` token sequence
becomes ``category`` (the last token) and ``category_path`` (tokens joined with ``" > "``),
underscores read as spaces (names separated by commas or ``|``, as RecSysDatasets' Amazon
files write them, are split there instead).  Entity types come from ``.link`` (``item``) or from an id prefix
such as ``brand:`` (otherwise ``entity``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from kgwb.data.loaders._io import (
    EMPTY_ID,
    NOT_NUMBER,
    Errors,
    Rows,
    TextFile,
    check_errors,
    dataset_name,
    duplicated,
    first_seen,
    flag_bad_ids,
    is_empty,
    isin,
    read_delimited,
    to_float,
    to_numpy_bool,
    unescape_html,
)
from kgwb.data.schema import Dataset, LoadReport
from kgwb.errors import DataError

FIELD_TYPES = ("token", "token_seq", "float", "float_seq")
SUFFIXES = ("inter", "item", "user", "kg", "link")
SPLIT_PARTS = ("train", "valid", "test")
KG_COLUMNS = {"head_id": "head", "relation_id": "relation", "tail_id": "tail"}
REQUIRED = {
    "inter": ("user_id", "item_id"),
    "item": ("item_id",),
    "user": ("user_id",),
    "kg": tuple(KG_COLUMNS),
    "link": ("item_id", "entity_id"),
}
_TYPE_PREFIX = r"(?s)^(?P<type>[A-Za-z][A-Za-z0-9_]*):(?P<name>.*)$"


def load_recbole(path: str | Path, *, errors: Errors = "raise", name: str | None = None) -> Dataset:
    """Load a folder of RecBole atomic files (or one of its files); see the module docstring."""
    check_errors(errors)
    root, token = _locate(Path(path), name)
    report = LoadReport()

    def file(suffix: str, part: str | None = None) -> Path:
        return root / (f"{token}.{part}.{suffix}" if part else f"{token}.{suffix}")

    items_given = file("item").exists()
    users_given = file("user").exists()
    items = _read_items(file("item"), errors, report) if items_given else None
    users = _read_users(file("user"), errors, report) if users_given else None

    split_files = [(part, file("inter", part)) for part in SPLIT_PARTS]
    if any(p.exists() for _, p in split_files):
        inter_files = [(part, p) for part, p in split_files if part != "valid" or p.exists()]
    elif file("inter").exists() or not items_given:
        inter_files = [(None, file("inter"))]
    else:  # a catalog alone (.item, maybe .kg/.link): enough for `kgwb kg build`
        inter_files = []
    parts = []
    for part, inter_file in inter_files:
        df = _read_inter(inter_file, items, users, errors, report)
        if part is not None:
            df["split"] = pd.Series(np.full(len(df), part), dtype="str")
        parts.append(df)
    interactions = (
        pd.concat(parts, ignore_index=True)
        if parts
        else pd.DataFrame({"user_id": pd.Series(dtype="str"), "item_id": pd.Series(dtype="str")})
    )

    link = _read_link(file("link"), items, errors, report) if file("link").exists() else None
    kg = _read_kg(file("kg"), errors, report) if file("kg").exists() else None

    if items is None:
        seen = [interactions["item_id"]] + ([link["item_id"]] if link is not None else [])
        items = pd.DataFrame({"item_id": first_seen(seen)})
    if users is None:
        users = pd.DataFrame({"user_id": first_seen([interactions["user_id"]])})
    entities = _entities(kg, link) if kg is not None or link is not None else None

    return Dataset(
        name=name or dataset_name(root, "recbole"),
        items=items,
        users=users,
        interactions=interactions,
        kg=kg,
        entities=entities,
        item_entities=link,
        meta={"format": "recbole", "source": str(root), "token": token},
        report=report,
    )


# ----------------------------------------------------------------------------- the files
def _locate(path: Path, name: str | None) -> tuple[Path, str]:
    """The folder and the dataset token (file-name prefix) to read."""
    if not path.exists():
        raise DataError("no such file or folder", file=path, expected="a RecBole folder")
    if path.is_file():
        root, tokens = path.parent, {_token_of(path)} - {None}
    else:
        root = path
        tokens = {_token_of(p) for p in path.iterdir() if p.is_file()} - {None}
    if not tokens:
        raise DataError(
            "no RecBole atomic files here",
            file=path,
            expected="NAME.inter or NAME.train.inter / NAME.test.inter (plus .item .user .kg .link)",
        )
    if len(tokens) == 1:
        return root, tokens.pop()
    for candidate in (name, root.name, dataset_name(root, "recbole")):
        if candidate in tokens:
            return root, candidate
    raise DataError(
        "several RecBole datasets in this folder",
        file=root,
        expected=f"name= one of {', '.join(sorted(t for t in tokens if t))}",
    )


def _token_of(path: Path) -> str | None:
    parts = path.name.split(".")
    if len(parts) < 2 or parts[-1] not in SUFFIXES:
        return None
    if parts[-1] == "inter" and len(parts) >= 3 and parts[-2] in SPLIT_PARTS:
        return ".".join(parts[:-2])
    return ".".join(parts[:-1])


def _read_atomic(file: Path, kind: str, errors: Errors, report: LoadReport) -> tuple[Rows, dict]:
    """Parse one atomic file: check the typed header, split the rows, parse float columns."""
    what = f"a tab-separated RecBole .{kind} file with a typed header"
    tf = TextFile.open(file, what=what)
    names: list[str] = []
    types: dict[str, str] = {}
    for j, field in enumerate(tf.first_line().split("\t"), start=1):
        field_name, sep, field_type = field.partition(":")
        if not sep or not field_name:
            raise DataError(
                f"malformed header field {field!r}",
                file=file,
                line=1,
                column=j,
                expected="name:type, e.g. item_id:token",
            )
        if field_type not in FIELD_TYPES:
            raise DataError(
                f"unknown typed header {field!r}",
                file=file,
                line=1,
                column=field_name,
                expected=f"a type among {', '.join(FIELD_TYPES)}",
            )
        if field_name in types:
            raise DataError(
                f"duplicate column {field_name!r}",
                file=file,
                line=1,
                column=j,
                expected="unique names",
            )
        names.append(field_name)
        types[field_name] = field_type
    for required in REQUIRED[kind]:
        if required not in types:
            raise DataError(
                f"missing required column {required!r}",
                file=file,
                line=1,
                expected="a header with " + ", ".join(f"{c}:token" for c in REQUIRED[kind]),
            )
    rows = read_delimited(
        tf, names=names, delimiter="\t", skip=1, errors=errors, report=report, what=what
    )
    for column in REQUIRED[kind]:
        rows.flag(is_empty(rows.df[column]), EMPTY_ID, column=column, expected="a non-empty token")
    for column in (*REQUIRED[kind], *(c for c in ("entity_id",) if c in types)):
        flag_bad_ids(rows, column)
    floats = {}
    for column, kind_ in types.items():
        if kind_ == "float" or (column == "timestamp" and kind == "inter"):
            parsed, bad = to_float(rows.df[column])
            rows.flag(
                bad, NOT_NUMBER, column=column, expected="a finite float", values=rows.df[column]
            )
            floats[column] = parsed
    if "timestamp" in floats and kind == "inter":
        from kgwb.data.loaders.table import TIMESTAMP_RANGE

        low, high = TIMESTAMP_RANGE
        seconds = np.floor(floats["timestamp"].to_numpy(dtype="float64", na_value=np.nan))
        rows.flag(
            (seconds < low) | (seconds > high),
            "timestamp out of range",
            column="timestamp",
            expected="seconds since 1970 between 1677 and 2262",
            values=rows.df["timestamp"],
        )
    keep = rows.compact()
    for column, parsed in floats.items():
        rows.df[column] = parsed[keep].reset_index(drop=True)
    return rows, types


def _read_items(file: Path, errors: Errors, report: LoadReport) -> pd.DataFrame:
    rows, types = _read_atomic(file, "item", errors, report)
    rows.flag(
        duplicated(rows.df["item_id"]),
        "duplicate item_id",
        column="item_id",
        expected="each item once",
        values=rows.df["item_id"],
    )
    df = rows.finish()
    _empty_to_missing(df, types)
    for column, field_type in types.items():  # titles, brands, categories: display text
        if field_type in ("token", "token_seq") and not column.endswith("_id") and column in df:
            df[column] = unescape_html(df[column])
    if "categories" in df.columns:
        path = df.pop("categories").map(_category_tokens, na_action="ignore")
        df["category"] = path.map(lambda p: p[-1], na_action="ignore").astype("str")
        df["category_path"] = path.map(" > ".join, na_action="ignore").astype("str")
    return df


def _category_tokens(value: str) -> list[str] | None:
    """A ``categories`` token sequence as category names, most general first: space-separated
    tokens with underscores for spaces (RecBole's separator), or, where the value holds a ``|``
    or a comma and a space, names separated by those (RecSysDatasets' Amazon files write
    ``'Sports & Outdoors', 'Cycling'``); quotes around a name are dropped."""
    value = str(value).strip()
    if "|" in value or ", " in value:  # (a comma inside a token is part of the name: `A,_B`)
        parts = value.replace("|", ", ").split(", ")
    else:
        parts = [token.replace("_", " ") for token in value.split()]
    names = [p.strip().strip("'\"[]").strip() for p in parts]
    names = [n for n in names if n]
    return names or None


def _empty_to_missing(df: pd.DataFrame, types: dict[str, str]) -> None:
    """RecBole writes a missing feature as an empty field; make it a missing value."""
    for column, field_type in types.items():
        if field_type in ("token", "token_seq") and not column.endswith("_id"):
            values = df[column]
            df[column] = values.where(values.str.strip() != "")


def _read_users(file: Path, errors: Errors, report: LoadReport) -> pd.DataFrame:
    rows, types = _read_atomic(file, "user", errors, report)
    rows.flag(
        duplicated(rows.df["user_id"]),
        "duplicate user_id",
        column="user_id",
        expected="each user once",
        values=rows.df["user_id"],
    )
    df = rows.finish()
    _empty_to_missing(df, types)
    return df


def _read_inter(
    file: Path,
    items: pd.DataFrame | None,
    users: pd.DataFrame | None,
    errors: Errors,
    report: LoadReport,
) -> pd.DataFrame:
    rows, _ = _read_atomic(file, "inter", errors, report)
    key = [c for c in ("user_id", "item_id", "timestamp") if c in rows.df.columns]
    rows.flag(
        rows.df.duplicated(subset=key, keep="first").to_numpy(dtype=bool),
        "duplicate interaction",
        column="item_id",
        expected=f"each ({', '.join(key)}) once",
        values=rows.df["item_id"],
        always_skip=True,
    )
    _flag_unknown(rows, "item_id", items, ".item")
    _flag_unknown(rows, "user_id", users, ".user")
    df = rows.finish()
    if "timestamp" in df.columns:
        df["timestamp"] = pd.Series(
            np.floor(df["timestamp"].to_numpy(dtype="float64", na_value=np.nan))
        ).astype("Int64")
    return df


def _read_link(
    file: Path, items: pd.DataFrame | None, errors: Errors, report: LoadReport
) -> pd.DataFrame:
    rows, _ = _read_atomic(file, "link", errors, report)
    rows.flag(
        duplicated(rows.df["item_id"]),
        "duplicate item_id",
        column="item_id",
        expected="one entity per item",
        values=rows.df["item_id"],
    )
    _flag_unknown(rows, "item_id", items, ".item")
    return rows.finish()


def _read_kg(file: Path, errors: Errors, report: LoadReport) -> pd.DataFrame:
    rows, _ = _read_atomic(file, "kg", errors, report)
    df = rows.finish().rename(columns=KG_COLUMNS)
    return df[
        ["head", "relation", "tail"] + [c for c in df.columns if c not in KG_COLUMNS.values()]
    ]


def _flag_unknown(rows: Rows, column: str, table: pd.DataFrame | None, suffix: str) -> None:
    if table is None or not len(rows):
        return
    rows.flag(
        ~isin(rows.df[column], table[column]),
        f"unknown {column}",
        column=column,
        expected=f"an id listed in the {suffix} file",
        values=rows.df[column],
    )


def _entities(kg: pd.DataFrame | None, link: pd.DataFrame | None) -> pd.DataFrame:
    columns = []
    if link is not None:
        columns.append(link["entity_id"])
    if kg is not None:
        columns += [kg["head"], kg["tail"]]
    ids = first_seen(columns)
    found = pc.extract_regex(pa.array(ids, pa.string()), _TYPE_PREFIX)
    prefixed = to_numpy_bool(pc.is_valid(found))
    types = np.where(
        prefixed, pc.struct_field(found, "type").to_numpy(zero_copy_only=False), "entity"
    )
    names = np.where(prefixed, pc.struct_field(found, "name").to_numpy(zero_copy_only=False), ids)
    if link is not None:
        types[isin(ids, link["entity_id"])] = "item"
    return pd.DataFrame(
        {
            "entity_id": ids,
            "type": pd.Series(types, dtype="str"),
            "name": unescape_html(pd.Series(names, dtype="str")),
        }
    )
