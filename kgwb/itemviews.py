"""Item views the notebooks show, whatever the catalog holds.

Real catalogs differ: amazon-beauty has brands and categories but no titles, amazon-scientific
has titles and descriptions, a KGAT folder may have nothing but ids.  The functions here give
each notebook cell one call that works on all of them: where a view needs item text the catalog
lacks, it returns a :class:`Skipped` note ("semantic search skipped: the catalog has no item
text") instead of raising, and the notebook shows that line.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from kgwb.data.schema import Dataset
from kgwb.kg.build import item_text_fields

__all__ = [
    "TEXT_FIELDS",
    "Skipped",
    "item_labels",
    "item_map",
    "search_index",
    "search_items",
    "top_value_filter",
    "with_item_labels",
]

TEXT_FIELDS = ("title", "description")


@dataclass(frozen=True)
class Skipped:
    """A view that did not run, and why; falsy, and shown as its message."""

    message: str

    def __bool__(self) -> bool:
        return False

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return self.message


def no_text(dataset: Dataset, view: str, fields: tuple[str, ...] = TEXT_FIELDS) -> Skipped | None:
    """A :class:`Skipped` note for ``view`` when the items have none of ``fields`` as text."""
    if item_text_fields(dataset.items, fields):
        return None
    return Skipped(f"{view} skipped: the catalog has no item text ({' or '.join(fields)})")


def item_labels(dataset: Dataset, columns: tuple[str, ...] = ("title", "brand", "category")):
    """One row per item: ``item_id`` and those of ``columns`` the catalog has; ``title`` is
    always there (the item id where the catalog has no title)."""
    items = dataset.items.drop_duplicates("item_id")
    out = items[["item_id"] + [c for c in columns if c in items.columns]].copy()
    out["item_id"] = out["item_id"].astype(str)
    if "title" in columns:
        title = (
            out["title"].astype("string") if "title" in out else pd.Series(pd.NA, index=out.index)
        )
        title = title.where(title.fillna("").str.strip() != "", out["item_id"])
        out["title"] = title.astype("string")
    return out.reset_index(drop=True)


def with_item_labels(frame: pd.DataFrame, dataset: Dataset) -> pd.DataFrame:
    """``frame`` (with an ``item_id`` column) and each item's title, as :func:`item_labels`."""
    labels = item_labels(dataset, ("title",))
    return frame.astype({"item_id": str}).merge(labels, on="item_id", how="left")


def item_map(dataset: Dataset, *, color: str = "category", model: str | None = None):
    """The items' text embeddings on a PCA map (a plotly figure), or a :class:`Skipped` note
    when the catalog has no item text."""
    skipped = no_text(dataset, "item embedding map")
    if skipped is not None:
        return skipped
    from kgwb.text.embed import embed_texts
    from kgwb.viz import plots

    labels = item_labels(dataset)
    fields = item_text_fields(dataset.items, TEXT_FIELDS)
    items = dataset.items.drop_duplicates("item_id")
    text = items[fields[0]].astype("string").fillna("")
    if fields[0] != "title":
        text = text.str.slice(0, 300)  # a description's opening says what the item is
    vectors = embed_texts(text.tolist(), model=model)
    return plots.embedding_map(vectors, labels, color=color)


def search_index(dataset: Dataset, *, model: str | None = None):
    """A :class:`~kgwb.search.SearchIndex` over the items' title and description, or a
    :class:`Skipped` note when the catalog has no item text."""
    skipped = no_text(dataset, "semantic search")
    if skipped is not None:
        return skipped
    from kgwb.search import SearchIndex

    fields = item_text_fields(dataset.items, TEXT_FIELDS)
    return SearchIndex.build(dataset.items, text_columns=fields, model=model)


def top_value_filter(dataset: Dataset, column: str = "brand"):
    """``{column: its most common value}`` as a search filter, or a :class:`Skipped` note when
    the catalog has no such column."""
    if column in dataset.items.columns:
        values = dataset.items[column].dropna().astype(str)
        values = values[values.str.strip() != ""]
        if len(values):
            return {column: values.value_counts().index[0]}
    return Skipped(f"{column} filter skipped: the catalog has no {column}")


def search_items(index: Any, query: str, *, k: int = 10, filters: Any = None, store: Any = None):
    """``index.search(query, ...)``; a :class:`Skipped` index or filter is passed through."""
    if isinstance(index, Skipped):
        return index
    if isinstance(filters, Skipped):
        return filters
    return index.search(query, k=k, filters=filters or None, store=store)
