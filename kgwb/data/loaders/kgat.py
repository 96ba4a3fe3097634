"""Loader for the KGAT / KGIN text format (one folder of whitespace-separated integer files).

Files: ``train.txt`` and ``test.txt`` (required), ``valid.txt`` (optional) — each line
``user item item ...`` (a user with no items is allowed); ``kg_final.txt`` (required, ``h r t``);
optional name maps ``user_list.txt`` / ``item_list.txt`` / ``relation_list.txt`` (header, then
``org_id remap_id``) and ``entity_list.txt`` (header, ``org_id remap_id [type]``, tab-separated
when names contain spaces).  Entity ids ``0 .. n_items-1`` are the items themselves.

Canonical ids: where a name map exists its ``org_id`` is the id (users, items, relation names);
otherwise the integer as a string.  Entity ids are ``type:org_id`` when ``entity_list.txt``
has a type column — org ids alone are not unique there (a brand and a category may share a
name) — which is also the convention of the RecBole export of the same data; without types they
are the ``org_id``, and without an entity list the integer.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from kgwb.data.loaders._io import (
    CONTROL_IN_ID,
    EMPTY_ID,
    NOT_INTEGER,
    Errors,
    Rows,
    TextFile,
    check_errors,
    dataset_name,
    duplicated,
    emit,
    has_control,
    is_empty,
    is_uint,
    read_delimited,
    read_lines,
    to_int,
    unescape_html,
)
from kgwb.data.schema import Dataset, LoadReport
from kgwb.errors import DataError

SPLIT_FILES = (("train", True), ("valid", False), ("test", True))
INTEGER_ID = "a non-negative integer id"


@dataclass
class IdMap:
    """One KGAT name map: the org id (and type) of every remap id, in file order."""

    remap: np.ndarray
    org: pd.Series
    type: pd.Series | None = None

    def position(self, ids: np.ndarray) -> np.ndarray:
        """Row of each remap id in this map, -1 where unknown."""
        found = pc.index_in(pa.array(ids, pa.int64()), value_set=pa.array(self.remap, pa.int64()))
        return np.asarray(pc.fill_null(found, -1).to_numpy(zero_copy_only=False), dtype=np.int64)

    def names(self, ids: np.ndarray, canonical: pd.Series | None = None) -> pd.Series:
        """Canonical string id of each (known) remap id."""
        source = self.org if canonical is None else canonical
        arr = pa.array(source, pa.string())
        return arr.take(pa.array(self.position(ids))).to_pandas()


def load_kgat(path: str | Path, *, errors: Errors = "raise", name: str | None = None) -> Dataset:
    """Load a KGAT/KGIN folder; see the module docstring for the files and the ids."""
    check_errors(errors)
    root = Path(path)
    if not root.exists():
        raise DataError("no such folder", file=root, expected="a KGAT folder")
    if not root.is_dir():
        raise DataError(
            "not a folder",
            file=root,
            expected="a KGAT folder with train.txt, test.txt, kg_final.txt",
        )
    report = LoadReport()

    maps: dict[str, IdMap] = {}
    for kind in ("user", "item", "relation", "entity"):
        file = root / f"{kind}_list.txt"
        if file.exists():
            maps[kind] = _read_list(file, kind, errors, report)
    user_map, item_map = maps.get("user"), maps.get("item")

    split_rows = []
    for split, required in SPLIT_FILES:
        file = root / f"{split}.txt"
        if not required and not file.exists():
            continue
        users, pairs = _read_interactions(file, user_map, item_map, errors, report)
        split_rows.append((split, users, pairs))

    triples = _read_kg(
        root / "kg_final.txt", maps.get("relation"), maps.get("entity"), errors, report
    )
    users, items, item_remaps = _users_and_items(split_rows, user_map, item_map)
    n_items = int(item_remaps.max()) + 1 if len(item_remaps) else 0
    entities, item_entities, kg = _kg_tables(maps, triples, items, item_remaps, n_items)
    return Dataset(
        name=name or dataset_name(root, "kgat"),
        items=items,
        users=users,
        interactions=_interactions(split_rows, user_map, item_map),
        kg=kg,
        entities=entities,
        item_entities=item_entities,
        meta={
            "format": "kgat",
            "source": str(root),
            "name_maps": sorted(maps),
            "n_items_kgat": n_items,
        },
        report=report,
    )


def _users_and_items(
    split_rows: list, user_map: IdMap | None, item_map: IdMap | None
) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray]:
    """The users and items tables (from the name maps, else the ids seen in the splits) and
    the items' remap ids."""
    seen_users = np.concatenate([u for _, u, _ in split_rows]) if split_rows else np.array([])
    seen_items = np.concatenate([p[:, 1] for _, _, p in split_rows])
    if user_map is not None:
        users = pd.DataFrame({"user_id": user_map.org})
    else:
        users = pd.DataFrame({"user_id": _int_names(np.unique(seen_users))})
    if item_map is not None:
        item_remaps = item_map.remap
        items = pd.DataFrame({"item_id": item_map.org})
    else:
        item_remaps = np.unique(seen_items)
        items = pd.DataFrame({"item_id": _int_names(item_remaps)})
    return users, items, item_remaps


def _interactions(split_rows: list, user_map: IdMap | None, item_map: IdMap | None) -> pd.DataFrame:
    parts = []
    for split, _, pairs in split_rows:
        u, i = pairs[:, 0], pairs[:, 1]
        parts.append(
            pd.DataFrame(
                {
                    "user_id": user_map.names(u) if user_map is not None else _int_names(u),
                    "item_id": item_map.names(i) if item_map is not None else _int_names(i),
                    "split": pd.Series(np.full(len(u), split), dtype="str"),
                }
            )
        )
    return pd.concat(parts, ignore_index=True)


def _kg_tables(
    maps: dict[str, IdMap],
    triples: tuple,
    items: pd.DataFrame,
    item_remaps: np.ndarray,
    n_items: int,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """``(entities, item_entities, kg)``, named through ``entity_list.txt`` when there is one."""
    heads, relations, tails = triples
    entity_map, relation_map = maps.get("entity"), maps.get("relation")
    if entity_map is not None:
        entities, item_entities, entity_ids = _mapped_entities(
            entity_map, items, item_remaps, n_items
        )
        head_ids, tail_ids = (
            entity_map.names(heads, entity_ids),
            entity_map.names(tails, entity_ids),
        )
    else:
        entities, item_entities = _numbered_entities(heads, tails, items, item_remaps, n_items)
        head_ids, tail_ids = _int_names(heads), _int_names(tails)
    relation_ids = (
        relation_map.names(relations) if relation_map is not None else _int_names(relations)
    )
    kg = pd.DataFrame({"head": head_ids, "relation": relation_ids, "tail": tail_ids})
    return entities, item_entities, kg


def _mapped_entities(
    entity_map: IdMap, items: pd.DataFrame, item_remaps: np.ndarray, n_items: int
) -> tuple[pd.DataFrame, pd.DataFrame, pd.Series]:
    entity_ids = _entity_ids(entity_map)
    if entity_map.type is not None:
        types = entity_map.type
    else:
        types = pd.Series(np.where(entity_map.remap < n_items, "item", "entity"), dtype="str")
    entities = pd.DataFrame(
        {
            "entity_id": entity_ids,
            "type": types.reset_index(drop=True),
            "name": unescape_html(entity_map.org.reset_index(drop=True)),
        }
    )
    item_pos = entity_map.position(item_remaps)
    has_entity = item_pos >= 0
    item_entities = pd.DataFrame(
        {
            "item_id": items["item_id"][has_entity].reset_index(drop=True),
            "entity_id": entity_ids.iloc[item_pos[has_entity]].reset_index(drop=True),
        }
    )
    return entities, item_entities, entity_ids


def _numbered_entities(
    heads: np.ndarray, tails: np.ndarray, items: pd.DataFrame, item_remaps: np.ndarray, n_items: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Entities named by their remap ids (items by their item id) when there is no entity list."""
    ent = np.unique(np.concatenate([heads, tails, item_remaps]))
    entity_ids = _int_names(ent)
    is_item = ent < n_items
    names = entity_ids.copy()
    item_row = pd.Series(np.arange(len(item_remaps)), index=item_remaps)
    known_item = is_item & np.isin(ent, item_remaps)
    names[known_item] = items["item_id"].iloc[item_row[ent[known_item]].to_numpy()].to_numpy()
    entities = pd.DataFrame(
        {
            "entity_id": entity_ids,
            "type": pd.Series(np.where(is_item, "item", "entity"), dtype="str"),
            "name": names,
        }
    )
    item_entities = pd.DataFrame(
        {"item_id": items["item_id"], "entity_id": _int_names(item_remaps)}
    )
    return entities, item_entities


# ------------------------------------------------------------------------------ the readers
def _read_list(file: Path, kind: str, errors: Errors, report: LoadReport) -> IdMap:
    """``<kind>_list.txt``: a header naming ``org_id`` and ``remap_id`` (entity: maybe ``type``)."""
    what = f"a header line then 'org_id remap_id' rows ({kind} name map)"
    tf = TextFile.open(file, what=what)
    header = tf.first_line()
    delimiter = "\t" if "\t" in header else None
    names = header.split("\t") if delimiter else header.split()
    for required in ("org_id", "remap_id"):
        if required not in names:
            raise DataError(
                f"missing required column {required!r}",
                file=file,
                line=1,
                expected="a header naming org_id and remap_id",
            )
    rows = read_delimited(
        tf, names=names, delimiter=delimiter, skip=1, errors=errors, report=report, what=what
    )
    df = rows.df
    rows.flag(
        ~is_uint(df["remap_id"]),
        NOT_INTEGER,
        column="remap_id",
        expected=INTEGER_ID,
        values=df["remap_id"],
    )
    has_type = kind == "entity" and "type" in names
    if has_type:
        # the type makes the id non-empty: the real amazon-beauty list has a brand named ""
        rows.flag(is_empty(df["type"]), "empty type", column="type", expected="an entity type")
    else:
        rows.flag(is_empty(df["org_id"]), EMPTY_ID, column="org_id", expected="a non-empty id")
    rows.flag(
        has_control(df["org_id"]),
        CONTROL_IN_ID,
        column="org_id",
        expected="an id without NUL or control characters",
        values=df["org_id"],
    )
    rows.compact()
    df = rows.df
    rows.flag(
        duplicated(df["remap_id"].astype("int64")),
        "duplicate remap_id",
        column="remap_id",
        expected="unique remap ids",
        values=df["remap_id"],
    )
    key = df["type"] + ":" + df["org_id"] if has_type else df["org_id"]
    rows.flag(
        duplicated(key),
        f"duplicate {kind}",
        column="org_id",
        expected=f"unique {kind} org ids" + (" per type" if has_type else ""),
        values=df["org_id"],
    )
    df = rows.finish()
    return IdMap(
        remap=to_int(df["remap_id"]),
        org=df["org_id"].astype("str"),
        type=df["type"].astype("str") if has_type else None,
    )


def _read_interactions(
    file: Path, user_map: IdMap | None, item_map: IdMap | None, errors: Errors, report: LoadReport
) -> tuple[np.ndarray, np.ndarray]:
    """``user item item ...`` lines; returns the user of each kept line and (user, item) pairs."""
    what = "lines 'user item item ...' of integer ids"
    tf = TextFile.open(file, what=what)
    report.files.append(str(file))
    lines = read_lines(tf, errors=errors)
    report.read(lines.n_rows)
    emit(lines.problems, file, errors, report)
    tokens = pc.utf8_split_whitespace(pc.utf8_trim_whitespace(lines.text))
    counts = pc.list_value_length(tokens).to_numpy(zero_copy_only=False).astype(np.int64)
    flat = pc.list_flatten(tokens)
    n = len(counts)
    owner = np.repeat(np.arange(n), counts)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]]) if n else np.zeros(0, np.int64)
    position = np.arange(len(flat)) - starts[owner] + 1  # 1-based field number

    rows = Rows(
        file,
        pd.DataFrame({"user": flat.take(pa.array(starts)).to_pandas()}),
        lines.numbers,
        errors=errors,
        report=report,
    )

    def flag_tokens(bad: np.ndarray, reason: str, expected: str) -> None:
        first_bad, where = np.unique(owner[bad], return_index=True)
        mask = np.zeros(n, dtype=bool)
        mask[first_bad] = True
        column = np.zeros(n, dtype=np.int64)
        column[first_bad] = position[bad][where]
        values = np.empty(n, dtype=object)
        values[first_bad] = np.asarray(flat.filter(pa.array(bad)).to_pylist(), dtype=object)[where]
        rows.flag(mask, reason, column=column, expected=expected, values=values)

    ok = is_uint(flat)
    flag_tokens(~ok, NOT_INTEGER, INTEGER_ID)
    ids = np.zeros(len(flat), dtype=np.int64)
    ids[ok] = to_int(flat.filter(pa.array(ok)))
    is_user = position == 1
    if user_map is not None:
        flag_tokens(
            ok & is_user & (user_map.position(ids) < 0),
            "unknown user",
            "a remap_id of user_list.txt",
        )
    if item_map is not None:
        flag_tokens(
            ok & ~is_user & (item_map.position(ids) < 0),
            "unknown item",
            "a remap_id of item_list.txt",
        )
    # a user's second line in one file is a rejected row (never merged into the first); an
    # item repeated on one line is dropped and counted in report.duplicates_dropped
    user_of_line = np.where(rows.bad, -1 - np.arange(n), 0)
    user_of_line[~rows.bad] = ids[starts[~rows.bad]] if n else 0
    rows.flag(
        pd.Series(user_of_line).duplicated(keep="first").to_numpy(),
        "duplicate user line",
        column=np.ones(n, dtype=np.int64),
        expected="one line per user in a file",
        values=user_of_line,
    )
    item_keys = pd.DataFrame({"line": owner, "item": np.where(is_user, -1, ids)})
    repeated = item_keys.duplicated(keep="first").to_numpy() & ~is_user
    keep_line = rows.compact()
    rows.finish()
    keep = keep_line[owner]
    report.duplicates_dropped += int((keep & repeated).sum())
    keep &= ~repeated
    users = ids[keep & is_user]
    kept_owner = owner[keep & ~is_user]
    line_user = np.zeros(n, dtype=np.int64)
    line_user[owner[is_user]] = ids[is_user]
    pairs = np.column_stack([line_user[kept_owner], ids[keep & ~is_user]])
    return users, pairs


def _read_kg(
    file: Path,
    relation_map: IdMap | None,
    entity_map: IdMap | None,
    errors: Errors,
    report: LoadReport,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    what = "lines 'head relation tail' of integer ids"
    tf = TextFile.open(file, what=what)
    names = ("head", "relation", "tail")
    rows = read_delimited(
        tf, names=names, delimiter=None, skip=0, errors=errors, report=report, what=what
    )
    df = rows.df
    for column in names:
        rows.flag(
            ~is_uint(df[column]), NOT_INTEGER, column=column, expected=INTEGER_ID, values=df[column]
        )
    rows.compact()
    ints = {c: to_int(rows.df[c]) for c in names}
    if entity_map is not None:
        for column in ("head", "tail"):
            rows.flag(
                entity_map.position(ints[column]) < 0,
                "unknown entity",
                column=column,
                expected="a remap_id of entity_list.txt",
                values=ints[column],
            )
    if relation_map is not None:
        rows.flag(
            relation_map.position(ints["relation"]) < 0,
            "unknown relation",
            column="relation",
            expected="a remap_id of relation_list.txt",
            values=ints["relation"],
        )
    keep = rows.compact()
    rows.finish()
    return ints["head"][keep], ints["relation"][keep], ints["tail"][keep]


def _entity_ids(entity_map: IdMap) -> pd.Series:
    if entity_map.type is None:
        return entity_map.org.reset_index(drop=True)
    return (entity_map.type + ":" + entity_map.org).astype("str").reset_index(drop=True)


def _int_names(ids: np.ndarray) -> pd.Series:
    return pc.cast(pa.array(np.asarray(ids, dtype=np.int64)), pa.string()).to_pandas()
