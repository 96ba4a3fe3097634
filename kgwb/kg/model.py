"""The knowledge-graph model: typed nodes and typed edges with source, confidence and provenance.

``nodes``  node_id* (``"<type>:<key>"``, e.g. ``item:B00X``, ``brand:conair``,
           ``category:beauty/hair_care``, ``value:color=red``, ``user:A1``), type*, name
``edges``  head*, relation*, tail*, source* (``catalog`` | ``interaction`` | ``extracted`` |
           ``dataset`` — triples a dataset already carried), confidence* (float in [0, 1]),
           and provenance, set for extracted edges: item_id, field (``title``/``description``),
           start, end (character span), text (the surface span), extractor (name@version)

Saved as ``nodes.parquet`` + ``edges.parquet`` + ``kg.json`` and reloaded identically.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from kgwb.errors import DataError

NODE_COLUMNS = ("node_id", "type", "name")
EDGE_COLUMNS = ("head", "relation", "tail", "source", "confidence")
PROVENANCE_COLUMNS = ("item_id", "field", "start", "end", "text", "extractor")
SOURCES = ("catalog", "interaction", "extracted", "dataset")

_EDGE_DTYPES = {
    "head": "string",
    "relation": "string",
    "tail": "string",
    "source": "string",
    "confidence": "float64",
    "item_id": "string",
    "field": "string",
    "start": "Int64",
    "end": "Int64",
    "text": "string",
    "extractor": "string",
}


def node_id(node_type: str, key: str) -> str:
    """The id of a node of ``node_type`` whose key is ``key``."""
    return f"{node_type}:{key}"


def empty_edges() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=t) for c, t in _EDGE_DTYPES.items()})


def normalise_edges(edges: pd.DataFrame) -> pd.DataFrame:
    """Give an edge table every column with its dtype (provenance columns null when absent)."""
    out = edges.copy()
    for col, dtype in _EDGE_DTYPES.items():
        if col not in out.columns:
            out[col] = pd.Series(pd.NA, index=out.index, dtype=dtype)
        else:
            out[col] = out[col].astype(dtype)
    return out[list(_EDGE_DTYPES) + [c for c in out.columns if c not in _EDGE_DTYPES]]


@dataclass
class KnowledgeGraph:
    """A product knowledge graph (see the module docstring for the schema)."""

    nodes: pd.DataFrame
    edges: pd.DataFrame
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.edges = normalise_edges(self.edges)
        for col in NODE_COLUMNS:
            if col not in self.nodes.columns:
                raise DataError(f"nodes table lacks column {col!r}", expected=str(NODE_COLUMNS))
        self.nodes = self.nodes.astype({c: "string" for c in NODE_COLUMNS})

    # ------------------------------------------------------------------ checks
    def validate(self) -> None:
        """Every edge end is a node, node ids are unique, sources and confidences are valid."""
        dup = self.nodes["node_id"].duplicated()
        if dup.any():
            i = int(dup.to_numpy().nonzero()[0][0])
            raise DataError(
                f"duplicate node id {self.nodes['node_id'].iloc[i]!r}", line=i + 1, row_kind="row"
            )
        known = pd.Index(self.nodes["node_id"])
        for end in ("head", "tail"):
            missing = ~self.edges[end].isin(known)
            if missing.any():
                i = int(missing.to_numpy().nonzero()[0][0])
                raise DataError(
                    f"edge {end} {self.edges[end].iloc[i]!r} is not a node",
                    line=i + 1,
                    row_kind="edge row",
                    column=end,
                )
        bad = ~self.edges["source"].isin(SOURCES)
        if bad.any():
            i = int(bad.to_numpy().nonzero()[0][0])
            raise DataError(
                f"unknown edge source {self.edges['source'].iloc[i]!r}",
                line=i + 1,
                row_kind="edge row",
                column="source",
                expected=", ".join(SOURCES),
            )
        conf = self.edges["confidence"]
        if ((conf < 0) | (conf > 1) | conf.isna()).any():
            raise DataError("edge confidence outside [0, 1]", column="confidence")

    # ----------------------------------------------------------------- storage
    def save(self, directory: str | Path, *, overwrite: bool = True) -> Path:
        """Write ``nodes.parquet``, ``edges.parquet`` and ``kg.json`` (last) into ``directory``.

        An earlier KG there (with its store) is replaced as a whole once the new one is complete,
        or kept with an :class:`~kgwb.errors.OutputError` when ``overwrite`` is false.
        """
        from kgwb.atomic import output_dir, write_json, write_with

        final = Path(directory)
        with output_dir(
            final, kind="knowledge graph", overwrite=overwrite, manifests=("kg.json",)
        ) as out:
            write_with(out / "nodes.parquet", lambda p: self.nodes.to_parquet(p, index=False))
            write_with(out / "edges.parquet", lambda p: self.edges.to_parquet(p, index=False))
            write_json(out / "kg.json", {"meta": self.meta})
        return final

    @classmethod
    def load(cls, directory: str | Path) -> KnowledgeGraph:
        src = Path(directory)
        if not (src / "kg.json").is_file():
            raise DataError("not a saved kgwb knowledge graph (no kg.json)", file=src)
        try:
            meta = json.loads((src / "kg.json").read_text()).get("meta", {})
        except (json.JSONDecodeError, AttributeError) as e:
            raise DataError(f"damaged kg.json: {e}", file=src / "kg.json") from None
        tables = {}
        for name in ("nodes", "edges"):
            path = src / f"{name}.parquet"
            try:
                tables[name] = pd.read_parquet(path)
            except Exception as e:  # missing or damaged: pyarrow raises several types
                raise DataError(f"cannot read the saved KG: {e}", file=path) from None
        return cls(nodes=tables["nodes"], edges=tables["edges"], meta=meta)

    # ------------------------------------------------------------------ views
    def node_types(self) -> pd.Series:
        return self.nodes["type"].value_counts().sort_index()

    def edge_types(self) -> pd.DataFrame:
        """Edge counts per (relation, source)."""
        return (
            self.edges.groupby(["relation", "source"], observed=True)
            .size()
            .rename("edges")
            .reset_index()
            .sort_values(["relation", "source"], kind="stable")
            .reset_index(drop=True)
        )

    def triples(self, *, sources: tuple[str, ...] | None = None) -> pd.DataFrame:
        """(head, relation, tail) of the edges, optionally only from some sources, deduplicated."""
        e = self.edges if sources is None else self.edges[self.edges["source"].isin(sources)]
        return e[["head", "relation", "tail"]].drop_duplicates().reset_index(drop=True)
