"""Notebook item views on catalogs with and without text: a Skipped note instead of a crash."""

from __future__ import annotations

import pandas as pd

from kgwb.data.schema import Dataset
from kgwb.itemviews import (
    Skipped,
    item_labels,
    item_map,
    search_index,
    search_items,
    top_value_filter,
    with_item_labels,
)


def _dataset(**columns) -> Dataset:
    items = pd.DataFrame({"item_id": ["a", "b", "c"], **columns})
    return Dataset(name="t", items=items)


def test_without_text_the_views_say_skipped():
    ds = _dataset(brand=["X", None, "X"], category=["c1", "c2", "c1"])
    index = search_index(ds)
    assert isinstance(index, Skipped) and not index
    assert (
        str(index) == "semantic search skipped: the catalog has no item text (title or description)"
    )
    assert search_items(index, "anything", k=3) is index
    shown = item_map(ds)
    assert isinstance(shown, Skipped) and "item embedding map skipped" in repr(shown)
    assert top_value_filter(ds, "brand") == {"brand": "X"}


def test_blank_titles_count_as_no_text():
    ds = _dataset(title=["", None, "  "])
    assert isinstance(search_index(ds), Skipped)


def test_item_labels_fall_back_to_the_item_id():
    ds = _dataset(title=["Red pen", None, ""], brand=["X", "Y", None])
    labels = item_labels(ds)
    assert labels["title"].tolist() == ["Red pen", "b", "c"]
    assert labels.columns.tolist() == ["item_id", "title", "brand"]
    bare = _dataset()
    assert item_labels(bare)["title"].tolist() == ["a", "b", "c"]
    recs = pd.DataFrame({"user_id": ["u", "u"], "item_id": ["c", "a"], "score": [2.0, 1.0]})
    assert with_item_labels(recs, bare)["title"].tolist() == ["c", "a"]


def test_brand_filter_skipped_without_brands():
    filt = top_value_filter(_dataset(title=["x", "y", "z"]), "brand")
    assert isinstance(filt, Skipped) and str(filt) == (
        "brand filter skipped: the catalog has no brand"
    )


def test_with_text_search_and_map_run():
    ds = _dataset(
        title=["wireless earbuds", "steel caliper", None],
        description=[None, "digital measuring tool", "lab glass beaker"],
        brand=["A", "B", "B"],
        category=["audio", "tools", "lab"],
    )
    index = search_index(ds)
    assert index.text_columns == ("title", "description")
    top = search_items(index, "measuring caliper", k=2)
    assert top["item_id"].iloc[0] == "b"
    fig = item_map(ds)
    assert fig.__class__.__name__ == "Figure"
