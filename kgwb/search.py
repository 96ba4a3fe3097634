"""Semantic product search: item texts embedded once, queries ranked by cosine similarity,
optionally restricted to the items that knowledge-graph filters allow.

:meth:`SearchIndex.build` embeds each item's text columns (joined) with
:func:`kgwb.text.embed.embed_texts` into unit vectors; a query is embedded the same way and
ranked with one matrix-vector product plus ``argpartition`` (exact search: at 100k items x 384
dimensions that is a few milliseconds on one CPU core).  :meth:`SearchIndex.save` writes a folder
with ``vectors.npy`` (float32), ``items.parquet`` (item_id, title) and ``index.json`` (model,
text columns, counts).

Filters are answered by the graph store (:class:`kgwb.kg.store.GraphStore`), values passed as
query parameters only.  ``{"brand": "Acme", "category": "Shampoo", "has_color": "red"}`` means
items ``produced_by`` a brand named (or with node id) ``Acme``, in category ``Shampoo`` or any of
its subcategories, and with a ``has_color`` edge to the value ``red``; a list of values means any
of them; several filters must all hold.  Any other key is taken as a relation name (``color`` is
read as ``has_color``).  Names are compared case-insensitively.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kgwb.errors import ConfigError, DataError, KgwbError

VECTORS_FILE = "vectors.npy"
ITEMS_FILE = "items.parquet"
META_FILE = "index.json"
ITEM_PREFIX = "item:"

#: filter key -> KG relation from the item
FILTER_RELATIONS = {"brand": "produced_by", "category": "belongs_to"}
#: how deep a category filter follows ``subcategory_of`` from an item's leaf category
CATEGORY_DEPTH = 8


def _normalise(text: str) -> str:
    from kgwb.kg.catalog import normalise_value

    return normalise_value(text)


def filter_relation(key: str) -> str:
    """The KG relation a filter key names: ``brand`` → ``produced_by``, ``color`` → ``has_color``."""
    if key in FILTER_RELATIONS:
        return FILTER_RELATIONS[key]
    if key.startswith("has_") or key in ("also_bought", "also_viewed", "interacted"):
        return key
    from kgwb.kg.catalog import relation_for

    return relation_for(key)


def allowed_items(
    store: Any, filters: Mapping[str, Any], *, min_confidence: float = 0.0
) -> set[str]:
    """Item ids (without the ``item:`` prefix) that satisfy every filter, from the graph store."""
    from kgwb.kg.store import EDGE_TABLE, NODE_TABLE

    allowed: set[str] | None = None
    for key, wanted in filters.items():
        values = [wanted] if isinstance(wanted, str) else list(wanted)
        if not values:
            raise DataError(f"filter {key!r} has no values", expected="a value or a list of them")
        relation = filter_relation(key)
        params = {
            "relation": relation,
            "names": [_normalise(v) for v in values],
            "ids": [str(v) for v in values],
            "min_confidence": float(min_confidence),
        }
        match_value = "(list_contains($names, lower(v.name)) OR list_contains($ids, v.id))"
        base = (
            f"MATCH (i:{NODE_TABLE})-[e:{EDGE_TABLE}]->(v:{NODE_TABLE})"
            " WHERE e.relation = $relation AND e.confidence >= $min_confidence"
            " AND i.type = 'item'"
        )
        frames = [store.query(f"{base} AND {match_value} RETURN DISTINCT i.id AS item", params)]
        if relation == "belongs_to":
            # the named category may be an ancestor of the item's leaf category
            frames.append(
                store.query(
                    f"MATCH (i:{NODE_TABLE})-[e:{EDGE_TABLE}]->(c:{NODE_TABLE})"
                    f"-[s:{EDGE_TABLE}*1..{CATEGORY_DEPTH} (r, n | WHERE r.relation ="
                    " 'subcategory_of')]->(v:Node)"
                    " WHERE e.relation = $relation AND e.confidence >= $min_confidence"
                    f" AND i.type = 'item' AND {match_value} RETURN DISTINCT i.id AS item",
                    params,
                )
            )
        found = set()
        for f in frames:
            found.update(str(x) for x in f["item"])
        found = {x.removeprefix(ITEM_PREFIX) for x in found}
        allowed = found if allowed is None else allowed & found
    return allowed if allowed is not None else set()


def _open_store(store: Any):
    """``store`` as an open GraphStore (a path is opened read-only) and whether we opened it."""
    if store is None:
        return None, False
    if hasattr(store, "query"):
        return store, False
    from kgwb.kg.store import GraphStore, default_store_path, is_store

    p = Path(store)
    if not is_store(p) and is_store(default_store_path(p)):
        p = default_store_path(p)
    return GraphStore.open(p), True


@dataclass
class SearchIndex:
    """Unit vectors of item texts, row-aligned with ``item_ids`` and ``titles``."""

    item_ids: np.ndarray
    titles: np.ndarray
    vectors: np.ndarray
    model: str | None = None
    text_columns: tuple[str, ...] = ("title", "description")
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.item_ids = np.asarray(self.item_ids, dtype=object)
        self.titles = np.asarray(self.titles, dtype=object)
        self.vectors = np.ascontiguousarray(self.vectors, dtype=np.float32)
        if self.vectors.ndim != 2 or len(self.vectors) != len(self.item_ids):
            raise ConfigError(
                f"vectors {self.vectors.shape} do not match {len(self.item_ids)} item ids"
            )
        self._row_of = pd.Index(self.item_ids)

    def __len__(self) -> int:
        return len(self.item_ids)

    # --------------------------------------------------------------------- build
    @classmethod
    def build(
        cls,
        items_df: pd.DataFrame,
        *,
        text_columns: Sequence[str] = ("title", "description"),
        model: str | None = None,
        batch_size: int = 128,
        progress: bool = False,
        engine: str = "local",
        address: str | None = None,
        workers: int | None = None,
    ) -> SearchIndex:
        """Embed ``items_df``'s ``text_columns`` (those present, joined with ``". "``).

        ``items_df`` needs an ``item_id`` column; ``title`` (shown in results) defaults to the
        first text column.  ``engine="ray"`` embeds on Ray Data actors (a cluster at
        ``address``, else a local Ray; ``workers`` actors): the same vectors as in process
        (:func:`kgwb.text.embed.embed_texts`).
        """
        from kgwb.text.embed import embed_texts

        if "item_id" not in items_df.columns:
            raise DataError("items table has no item_id column", column="item_id")
        cols = [c for c in text_columns if c in items_df.columns]
        if not cols:
            raise DataError(
                f"items table has none of the text columns {list(text_columns)}",
                expected=f"columns among {list(items_df.columns)}",
            )
        items = items_df.drop_duplicates("item_id")
        parts = [items[c].astype("string").fillna("") for c in cols]
        text = parts[0]
        for p in parts[1:]:
            text = text.str.cat(p, sep=". ")
        text = text.str.strip(" .")
        t0 = time.perf_counter()
        vectors = embed_texts(
            text.tolist(),
            model=model,
            batch_size=batch_size,
            progress=progress,
            engine=engine,
            address=address,
            workers=workers,
        )
        title_col = "title" if "title" in items.columns else cols[0]
        return cls(
            item_ids=items["item_id"].astype(str).to_numpy(dtype=object),
            titles=items[title_col].astype("string").fillna("").to_numpy(dtype=object),
            vectors=vectors,
            model=model,
            text_columns=tuple(cols),
            meta={"build_seconds": round(time.perf_counter() - t0, 3), "engine": engine},
        )

    # ---------------------------------------------------------------- save, load
    def save(self, path: str | Path, *, overwrite: bool = True) -> Path:
        """Write the vectors, the items and ``index.json`` (last); an earlier index there is
        replaced as a whole once the new one is complete."""
        from kgwb.atomic import output_dir, write_json, write_with

        final = Path(path)
        with output_dir(
            final, kind="search index", overwrite=overwrite, manifests=(META_FILE,)
        ) as out:
            self._save_into(out, write_json, write_with)
        return final

    def _write_vectors(self, path: Path) -> None:
        with open(path, "wb") as f:  # a file object: np.save would add ".npy" to a temp name
            np.save(f, self.vectors, allow_pickle=False)

    def _save_into(self, out: Path, write_json, write_with) -> None:
        write_with(out / VECTORS_FILE, self._write_vectors)
        items = pd.DataFrame(
            {
                "item_id": pd.array(self.item_ids, dtype="string"),
                "title": pd.array(self.titles, dtype="string"),
            }
        )
        write_with(out / ITEMS_FILE, lambda p: items.to_parquet(p, index=False))
        meta = {
            "items": len(self),
            "dim": int(self.vectors.shape[1]),
            "model": self.model,
            "text_columns": list(self.text_columns),
            **self.meta,
        }
        write_json(out / META_FILE, meta)

    @classmethod
    def load(cls, path: str | Path) -> SearchIndex:
        src = Path(path)
        for name in (VECTORS_FILE, ITEMS_FILE, META_FILE):
            if not (src / name).is_file():
                raise KgwbError(f"{src}: not a saved search index (no {name})")
        meta = json.loads((src / META_FILE).read_text())
        items = pd.read_parquet(src / ITEMS_FILE)
        vectors = np.load(src / VECTORS_FILE)
        known = {"items", "dim", "model", "text_columns"}
        return cls(
            item_ids=items["item_id"].astype(str).to_numpy(dtype=object),
            titles=items["title"].astype("string").fillna("").to_numpy(dtype=object),
            vectors=vectors,
            model=meta.get("model"),
            text_columns=tuple(meta.get("text_columns", ())),
            meta={k: v for k, v in meta.items() if k not in known},
        )

    # -------------------------------------------------------------------- search
    def embed_query(self, query: str) -> np.ndarray:
        """The query's unit vector.  One short text is encoded on one thread: splitting a few
        tokens across threads costs more than it saves, and far more on a busy CPU (measured
        22 ms on one thread against 300 ms on two, with two cores shared)."""
        import torch

        from kgwb.text.embed import embed_texts

        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            return embed_texts([query], model=self.model)[0]
        finally:
            torch.set_num_threads(threads)

    def rows_of(self, item_ids: Iterable[str]) -> np.ndarray:
        """Row numbers of the ``item_ids`` the index holds (others are ignored)."""
        rows = self._row_of.get_indexer(list(item_ids))
        return np.sort(rows[rows >= 0])

    def search_vector(
        self, vector: np.ndarray, *, k: int = 10, rows: np.ndarray | None = None
    ) -> pd.DataFrame:
        """Top-``k`` items by cosine similarity to the unit ``vector``, among ``rows`` if given."""
        vecs = self.vectors if rows is None else self.vectors[rows]
        if len(vecs) == 0 or k <= 0:
            return pd.DataFrame(
                {
                    "item_id": pd.Series(dtype="string"),
                    "title": pd.Series(dtype="string"),
                    "score": pd.Series(dtype="float64"),
                }
            )
        scores = vecs @ np.asarray(vector, dtype=np.float32)
        k = min(int(k), len(scores))
        top = np.argpartition(-scores, k - 1)[:k] if k < len(scores) else np.arange(len(scores))
        # ties broken by row so results are deterministic
        top = top[np.lexsort((top, -scores[top]))]
        picked = top if rows is None else rows[top]
        return pd.DataFrame(
            {
                "item_id": pd.array(self.item_ids[picked], dtype="string"),
                "title": pd.array(self.titles[picked], dtype="string"),
                "score": scores[top].astype(np.float64),
            }
        )

    def search(
        self,
        query: str,
        *,
        k: int = 10,
        filters: Mapping[str, Any] | None = None,
        store: Any = None,
        min_confidence: float = 0.0,
    ) -> pd.DataFrame:
        """The ``k`` items most similar to ``query`` (item_id, title, score), best first.

        ``filters`` (see the module docstring) need ``store``: an open
        :class:`~kgwb.kg.store.GraphStore` or the path of one (or of the KG folder holding it).
        ``min_confidence`` drops extracted edges below it when filtering.
        """
        rows = None
        if filters:
            if store is None:
                raise KgwbError(
                    "search filters are answered by the graph store: pass store= (a GraphStore or"
                    " the folder of a built KG)"
                )
            opened, close = _open_store(store)
            try:
                allowed = allowed_items(opened, filters, min_confidence=min_confidence)
            finally:
                if close:
                    opened.close()
            rows = self.rows_of(allowed)
        return self.search_vector(self.embed_query(query), k=k, rows=rows)


def kg_items(kg: Any) -> pd.DataFrame:
    """The item nodes of a KG as an items table (item_id without prefix, title = node name)."""
    items = kg.nodes[kg.nodes["type"] == "item"]
    return pd.DataFrame(
        {
            "item_id": items["node_id"].astype(str).str.removeprefix(ITEM_PREFIX),
            "title": items["name"].astype("string").fillna(""),
        }
    )


__all__ = [
    "FILTER_RELATIONS",
    "SearchIndex",
    "allowed_items",
    "filter_relation",
    "kg_items",
]
