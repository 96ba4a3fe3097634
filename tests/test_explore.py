"""Descriptive statistics on hand-built datasets whose answers are known."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from kgwb.data import explore
from kgwb.data.schema import Dataset


def _ds() -> Dataset:
    items = pd.DataFrame(
        {
            "item_id": ["a", "b", "c", "d"],
            "category": ["x", "x", "y", "y"],
            "brand": ["p", "q", "q", None],
            "title": ["red shoe", "blue shoe big", "", None],
        }
    )
    users = pd.DataFrame({"user_id": ["u1", "u2", "u3"]})
    inter = pd.DataFrame(
        {
            "user_id": ["u1", "u1", "u1", "u2", "u2", "u1", "u2"],
            "item_id": ["a", "a", "b", "a", "b", "c", "c"],
            "split": ["train", "train", "train", "train", "train", "test", "valid"],
        }
    )
    return Dataset(name="t", items=items, users=users, interactions=inter)


def test_gini_known_values():
    assert explore.gini([1, 1, 1, 1]) == pytest.approx(0.0)
    assert explore.gini([0, 0, 0, 10]) == pytest.approx(0.75)  # (n-1)/n for n = 4
    assert explore.gini([]) == 0.0


def test_item_popularity_includes_items_without_interactions():
    pop = explore.item_popularity(_ds())
    assert list(pop["item_id"]) == ["a", "b", "c", "d"]
    assert list(pop["interactions"]) == [3, 2, 2, 0]
    assert pop["cumulative_share"].iloc[-1] == pytest.approx(1.0)


def test_user_activity_and_long_tail_summary():
    ds = _ds()
    act = explore.user_activity(ds)
    assert dict(zip(act["user_id"], act["interactions"])) == {"u1": 4, "u2": 3, "u3": 0}
    s = explore.long_tail_summary(explore.item_popularity(ds), act)
    assert s["items_without_interactions"] == 1
    assert s["top_1pct_item_share"] == pytest.approx(3 / 7, abs=1e-4)  # one item of four


def test_breakdown_counts_items_and_interactions():
    b = explore.breakdown(_ds(), "category").set_index("category")
    assert b.loc["x", "items"] == 2 and b.loc["x", "interactions"] == 5
    assert b.loc["y", "items"] == 2 and b.loc["y", "interactions"] == 2
    assert explore.breakdown(_ds(), "color").empty


def test_cold_start_shares():
    cs = explore.cold_start(_ds())
    assert cs["test_cold_item_share"] == 1.0  # item c never in train
    assert cs["valid_cold_user_share"] == 0.0
    assert cs["items_under_5_interactions_share"] == 1.0


def test_text_lengths_counts_missing_and_empty():
    t = explore.text_lengths(_ds()).set_index("field")
    row = t.loc["items.title"]
    assert row["missing"] == 1
    assert row["non_empty"] == 2
    assert row["chars_max"] == len("blue shoe big")
    assert math.isclose(row["words_mean"], (2 + 3 + 0) / 3, abs_tol=0.05)


def test_describe_density():
    d = explore.describe(_ds())
    assert d["density"] == pytest.approx(7 / 12, abs=1e-6)
    assert d["category_count"] == 2
