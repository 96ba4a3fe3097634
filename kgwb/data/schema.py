"""The canonical data model: one :class:`Dataset` that every loader and the sample generator return.

Tables are pandas DataFrames (Arrow-backed strings where pandas offers them) and a dataset saves
to / loads from a folder of Parquet files plus ``dataset.json`` (name, metadata, load report).

Schema (``*`` = required column; every id is a string, so KGAT integer ids, Amazon ASINs and
RecBole tokens share one type):

``items``         * item_id, title, description, brand, category (leaf), category_path
                  (``"Beauty > Hair Care > Shampoo"``), price (float)
``users``         * user_id, plus any user features
``interactions``  * user_id, * item_id, timestamp (Int64 seconds since epoch), rating (float),
                  split (``train`` / ``valid`` / ``test`` when the source fixes a split)
``reviews``       * user_id, * item_id, rating, text, summary, timestamp        (optional)
``item_attributes`` * item_id, * attribute, * value — structured catalog attributes (optional)
``kg``            * head, * relation, * tail — entity ids; items appear as entities through
                  ``item_entities``                                              (optional)
``entities``      * entity_id, * type (item/brand/category/...), name           (optional)
``item_entities`` * item_id, * entity_id — which KG entity is which item         (optional)
``truth``         named ground-truth tables (the sample generator's exact answers), e.g.
                  ``attribute_spans`` and ``entity_variants``; never used as model input.

Every table is optional except ``items``, ``users`` and ``interactions`` (which may be empty for
a pure-KG or pure-text source such as OA-Mine).
"""

from __future__ import annotations

import json
import platform
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from kgwb.errors import ConfigError, DataError

SPLITS = ("train", "valid", "test")

REQUIRED_COLUMNS: dict[str, tuple[str, ...]] = {
    "items": ("item_id",),
    "users": ("user_id",),
    "interactions": ("user_id", "item_id"),
    "reviews": ("user_id", "item_id"),
    "item_attributes": ("item_id", "attribute", "value"),
    "kg": ("head", "relation", "tail"),
    "entities": ("entity_id", "type"),
    "item_entities": ("item_id", "entity_id"),
}
OPTIONAL_TABLES = ("reviews", "item_attributes", "kg", "entities", "item_entities")
ID_COLUMNS = ("item_id", "user_id", "entity_id", "head", "tail", "relation")
DATASET_MANIFEST = "dataset.json"


@dataclass
class RejectedRow:
    """One row a loader skipped under ``errors="skip"``."""

    file: str
    line: int
    reason: str


@dataclass
class LoadReport:
    """What a loader read, kept and rejected, so that ``loaded + rejected == read`` can be checked.

    ``rows_read`` / ``rows_loaded`` count data rows (headers excluded) over all files read.
    ``rejected`` keeps the first ``max_examples`` rejected rows in full and counts all of them
    by reason in ``rejected_by_reason``.
    """

    rows_read: int = 0
    rows_loaded: int = 0
    rejected_count: int = 0
    rejected_by_reason: Counter = field(default_factory=Counter)
    rejected: list[RejectedRow] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    max_examples: int = 50
    #: repeats dropped inside a loaded row (an item twice on one KGAT line); a repeated *row*
    #: is a rejected row instead, counted under its ``duplicate ...`` reason
    duplicates_dropped: int = 0

    def read(self, n: int = 1) -> None:
        self.rows_read += n

    def loaded(self, n: int = 1) -> None:
        self.rows_loaded += n

    def reject(self, file: str | Path, line: int, reason: str) -> None:
        self.rejected_count += 1
        self.rejected_by_reason[reason] += 1
        if len(self.rejected) < self.max_examples:
            self.rejected.append(RejectedRow(str(file), int(line), reason))

    def merge(self, other: LoadReport) -> None:
        self.rows_read += other.rows_read
        self.rows_loaded += other.rows_loaded
        self.rejected_count += other.rejected_count
        self.rejected_by_reason.update(other.rejected_by_reason)
        self.duplicates_dropped += other.duplicates_dropped
        room = self.max_examples - len(self.rejected)
        self.rejected.extend(other.rejected[: max(room, 0)])
        self.files.extend(f for f in other.files if f not in self.files)

    @property
    def balanced(self) -> bool:
        return self.rows_loaded + self.rejected_count == self.rows_read

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows_read": self.rows_read,
            "rows_loaded": self.rows_loaded,
            "rejected": self.rejected_count,
            "rejected_by_reason": dict(sorted(self.rejected_by_reason.items())),
            "duplicates_dropped": self.duplicates_dropped,
            "examples": [r.__dict__ for r in self.rejected],
            "files": list(self.files),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LoadReport:
        rep = cls(
            rows_read=int(d.get("rows_read", 0)),
            rows_loaded=int(d.get("rows_loaded", 0)),
            rejected_count=int(d.get("rejected", 0)),
            rejected_by_reason=Counter(d.get("rejected_by_reason", {})),
            files=list(d.get("files", [])),
            duplicates_dropped=int(d.get("duplicates_dropped", 0)),
        )
        rep.rejected = [RejectedRow(**r) for r in d.get("examples", [])]
        return rep


def _empty(columns: tuple[str, ...]) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype="string") for c in columns})


@dataclass
class Dataset:
    """An e-commerce dataset in kgwb's canonical form (see the module docstring for the schema)."""

    name: str
    items: pd.DataFrame = field(default_factory=lambda: _empty(("item_id",)))
    users: pd.DataFrame = field(default_factory=lambda: _empty(("user_id",)))
    interactions: pd.DataFrame = field(default_factory=lambda: _empty(("user_id", "item_id")))
    reviews: pd.DataFrame | None = None
    item_attributes: pd.DataFrame | None = None
    kg: pd.DataFrame | None = None
    entities: pd.DataFrame | None = None
    item_entities: pd.DataFrame | None = None
    truth: dict[str, pd.DataFrame] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    report: LoadReport = field(default_factory=LoadReport)

    # ----------------------------------------------------------------- views
    def tables(self) -> dict[str, pd.DataFrame]:
        """The non-empty canonical tables by name (ground truth excluded)."""
        out = {"items": self.items, "users": self.users, "interactions": self.interactions}
        for name in OPTIONAL_TABLES:
            df = getattr(self, name)
            if df is not None:
                out[name] = df
        return out

    @property
    def has_split(self) -> bool:
        return "split" in self.interactions.columns and self.interactions["split"].notna().any()

    def split(self, name: str) -> pd.DataFrame:
        """Interactions of one predefined split (``train``/``valid``/``test``)."""
        if name not in SPLITS:
            raise ConfigError(f"unknown split {name!r}; choose one of {', '.join(SPLITS)}")
        if not self.has_split:
            raise ConfigError(f"dataset {self.name!r} has no predefined split")
        return self.interactions[self.interactions["split"] == name]

    def summary(self) -> dict[str, Any]:
        """Counts as one JSON-able dict (the ``kgwb data summary`` output)."""
        inter = self.interactions
        if self.has_split:
            per_split = {s: int((inter["split"] == s).sum()) for s in SPLITS}
        else:
            per_split = {"all": len(inter)}
        kg = self.kg
        if kg is not None and len(kg):
            if self.entities is not None and len(self.entities):
                n_entities = len(self.entities)
            else:
                n_entities = int(pd.concat([kg["head"], kg["tail"]]).nunique())
            per_relation = kg["relation"].value_counts().sort_index()
            kg_stats = {
                "entities": n_entities,
                "relations": int(kg["relation"].nunique()),
                "triples": len(kg),
                "triples_per_relation": {str(k): int(v) for k, v in per_relation.items()},
            }
        else:
            kg_stats = {"entities": 0, "relations": 0, "triples": 0, "triples_per_relation": {}}
        out: dict[str, Any] = {
            "name": self.name,
            "users": len(self.users),
            "items": len(self.items),
            "interactions": per_split,
            "interactions_total": len(inter),
            "reviews": 0 if self.reviews is None else len(self.reviews),
            "item_attributes": 0 if self.item_attributes is None else len(self.item_attributes),
            **kg_stats,
            "load": self.report.to_dict(),
        }
        return out

    # ------------------------------------------------------------ validation
    def validate(self) -> None:
        """Check required columns, unique ids and that interactions point at known users/items.

        Loaders already reject bad rows with file/line context; this is the last line of defence
        for hand-built datasets, so its messages name the table and the first offending row.
        """
        for name, df in self.tables().items():
            missing = [c for c in REQUIRED_COLUMNS[name] if c not in df.columns]
            if missing:
                raise DataError(
                    f"table {name!r} lacks required column(s) {missing}",
                    expected=f"columns {list(REQUIRED_COLUMNS[name])}",
                )
        for name, key in (("items", "item_id"), ("users", "user_id"), ("entities", "entity_id")):
            df = getattr(self, name)
            if df is None:
                continue
            dup = df[key].duplicated(keep="first")
            if dup.any():
                row = int(dup.to_numpy().nonzero()[0][0])
                raise DataError(
                    f"duplicate {key} {df[key].iloc[row]!r} in table {name!r}",
                    line=row + 1,
                    row_kind="row",
                    column=key,
                    expected="unique ids",
                )
        for table, key, ref in (
            ("interactions", "item_id", self.items),
            ("interactions", "user_id", self.users),
            ("reviews", "item_id", self.items),
        ):
            df = getattr(self, table)
            if df is None or not len(df) or not len(ref):
                continue
            unknown = ~df[key].isin(ref[key])
            if unknown.any():
                row = int(unknown.to_numpy().nonzero()[0][0])
                raise DataError(
                    f"{table} row refers to unknown {key} {df[key].iloc[row]!r}",
                    line=row + 1,
                    row_kind="row",
                    column=key,
                    expected=f"an id present in the {key.split('_')[0]}s table",
                )
        if self.has_split:
            bad = ~self.interactions["split"].isin(SPLITS)
            if bad.any():
                row = int(bad.to_numpy().nonzero()[0][0])
                raise DataError(
                    f"unknown split value {self.interactions['split'].iloc[row]!r}",
                    line=row + 1,
                    row_kind="row",
                    column="split",
                    expected="train, valid or test",
                )

    # -------------------------------------------------------------- storage
    def save(self, directory: str | Path, *, overwrite: bool = True) -> Path:
        """Write every table as Parquet plus ``dataset.json`` (last); returns the folder.

        An earlier dataset in ``directory`` is replaced as a whole once the new one is complete
        (see :mod:`kgwb.atomic`), or kept with an :class:`~kgwb.errors.OutputError` when
        ``overwrite`` is false.
        """
        from kgwb.atomic import output_dir, write_json, write_with

        final = Path(directory)
        with output_dir(
            final, kind="dataset", overwrite=overwrite, manifests=(DATASET_MANIFEST,)
        ) as out:
            written = []
            for name, df in self.tables().items():
                write_with(out / f"{name}.parquet", lambda p, df=df: df.to_parquet(p, index=False))
                written.append(name)
            for name, df in self.truth.items():
                write_with(
                    out / "truth" / f"{name}.parquet",
                    lambda p, df=df: df.to_parquet(p, index=False),
                )
            manifest = {
                "name": self.name,
                "tables": written,
                "truth": sorted(self.truth),
                "meta": self.meta,
                "report": self.report.to_dict(),
                "kgwb_version": _version(),
                "python": platform.python_version(),
                "pandas": pd.__version__,
            }
            write_json(out / DATASET_MANIFEST, manifest)
        return final

    @classmethod
    def load(cls, directory: str | Path) -> Dataset:
        """Read a folder written by :meth:`save`."""
        src = Path(directory)
        manifest_path = src / "dataset.json"
        if not manifest_path.is_file():
            raise DataError("not a saved kgwb dataset (no dataset.json)", file=src)
        try:
            manifest = json.loads(manifest_path.read_text())
        except json.JSONDecodeError as e:
            raise DataError(e.msg, file=manifest_path, line=e.lineno, column=e.colno) from None
        if not isinstance(manifest, dict) or not {"name", "tables", "truth"} <= set(manifest):
            raise DataError(
                "not a saved kgwb dataset manifest",
                file=manifest_path,
                expected="a JSON object with name, tables and truth",
            )
        tables = {name: _read_table(src / f"{name}.parquet") for name in manifest["tables"]}
        truth = {name: _read_table(src / "truth" / f"{name}.parquet") for name in manifest["truth"]}
        return cls(
            name=manifest["name"],
            truth=truth,
            meta=manifest.get("meta", {}),
            report=LoadReport.from_dict(manifest.get("report", {})),
            **tables,
        )


def _read_table(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise DataError("missing table of a saved dataset", file=path, expected="a Parquet file")
    try:
        return pd.read_parquet(path)
    except Exception as e:  # pyarrow raises several types for a broken file
        raise DataError(f"cannot read Parquet: {e}", file=path, expected="a Parquet file") from None


def _version() -> str:
    from kgwb import __version__

    return __version__
