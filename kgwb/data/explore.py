"""Descriptive statistics of a :class:`~kgwb.data.schema.Dataset` for 01_explore.

Every function takes a Dataset (or one of its tables) and returns a DataFrame or a plain dict, so
the notebook only displays and plots; :func:`describe` bundles them for the stage result.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from kgwb.data.schema import Dataset


def gini(counts: np.ndarray | pd.Series) -> float:
    """Gini coefficient of non-negative counts (0 = all equal, → 1 = one holds everything)."""
    x = np.sort(np.asarray(counts, dtype=np.float64))
    n = x.size
    if n == 0 or x.sum() == 0:
        return 0.0
    cum = np.cumsum(x)
    return float((n + 1 - 2 * (cum / cum[-1]).sum()) / n)


def item_popularity(ds: Dataset) -> pd.DataFrame:
    """Interactions per item, most popular first, with rank and cumulative share.

    Items of the catalog that nobody interacted with are included with count 0, because the
    cold tail is exactly what a long-tail plot must show.
    """
    counts = ds.interactions["item_id"].value_counts()
    if len(ds.items):
        counts = counts.reindex(pd.Index(ds.items["item_id"]).union(counts.index), fill_value=0)
    counts = counts.sort_values(ascending=False, kind="stable")
    total = max(int(counts.sum()), 1)
    out = pd.DataFrame(
        {
            "item_id": counts.index.astype(str),
            "interactions": counts.to_numpy(),
            "rank": np.arange(1, len(counts) + 1),
        }
    )
    out["cumulative_share"] = out["interactions"].cumsum() / total
    return out


def user_activity(ds: Dataset) -> pd.DataFrame:
    """Interactions per user (users without any included), most active first."""
    counts = ds.interactions["user_id"].value_counts()
    if len(ds.users):
        counts = counts.reindex(pd.Index(ds.users["user_id"]).union(counts.index), fill_value=0)
    counts = counts.sort_values(ascending=False, kind="stable")
    return pd.DataFrame({"user_id": counts.index.astype(str), "interactions": counts.to_numpy()})


def long_tail_summary(popularity: pd.DataFrame, activity: pd.DataFrame) -> dict[str, float]:
    """Head/tail shares and Gini coefficients for items and users."""
    n_items = len(popularity)
    total = max(int(popularity["interactions"].sum()), 1)

    def head_share(frac: float) -> float:
        k = max(1, int(round(n_items * frac))) if n_items else 0
        return float(popularity["interactions"].iloc[:k].sum() / total) if k else 0.0

    return {
        "item_gini": round(gini(popularity["interactions"]), 4),
        "user_gini": round(gini(activity["interactions"]), 4),
        "top_1pct_item_share": round(head_share(0.01), 4),
        "top_10pct_item_share": round(head_share(0.10), 4),
        "top_20pct_item_share": round(head_share(0.20), 4),
        "items_without_interactions": int((popularity["interactions"] == 0).sum()),
        "median_user_interactions": float(activity["interactions"].median())
        if len(activity)
        else 0.0,
        "median_item_interactions": float(popularity["interactions"].median()) if n_items else 0.0,
    }


def breakdown(ds: Dataset, column: str, *, top: int | None = 20) -> pd.DataFrame:
    """Items and interactions per value of an item column (``category``, ``brand``, ...)."""
    if column not in ds.items.columns:
        return pd.DataFrame(columns=[column, "items", "interactions", "interaction_share"])
    items = ds.items[["item_id", column]].dropna()
    per_item = items.groupby(column, observed=True)["item_id"].count().rename("items")
    joined = ds.interactions[["item_id"]].merge(items, on="item_id", how="inner")
    per_inter = joined.groupby(column, observed=True)["item_id"].count().rename("interactions")
    out = pd.concat([per_item, per_inter], axis=1).fillna(0).astype("int64")
    out["interaction_share"] = (out["interactions"] / max(len(ds.interactions), 1)).round(4)
    out = out.sort_values(["interactions", "items"], ascending=False, kind="stable")
    out = out.reset_index().rename(columns={"index": column})
    return out.head(top) if top else out


def cold_start(ds: Dataset) -> dict[str, Any]:
    """How much of the evaluation data a model never saw in training.

    With a predefined split: share of valid/test interactions whose item (or user) has no train
    interaction.  Without one: share of catalog items with fewer than 5 interactions.
    """
    inter = ds.interactions
    out: dict[str, Any] = {}
    if ds.has_split:
        train = inter[inter["split"] == "train"]
        seen_items = set(train["item_id"])
        seen_users = set(train["user_id"])
        for split in ("valid", "test"):
            part = inter[inter["split"] == split]
            n = len(part)
            out[f"{split}_cold_item_share"] = (
                round(float((~part["item_id"].isin(seen_items)).mean()), 4) if n else 0.0
            )
            out[f"{split}_cold_user_share"] = (
                round(float((~part["user_id"].isin(seen_users)).mean()), 4) if n else 0.0
            )
    counts = inter["item_id"].value_counts()
    n_items = len(ds.items) or len(counts)
    if n_items:
        per_item = counts.reindex(ds.items["item_id"], fill_value=0) if len(ds.items) else counts
        out["items_under_5_interactions_share"] = round(float((per_item < 5).mean()), 4)
    return out


def text_lengths(ds: Dataset) -> pd.DataFrame:
    """Length statistics (characters and words) of every text field present."""
    fields: list[tuple[str, pd.Series]] = []
    for col in ("title", "description"):
        if col in ds.items.columns:
            fields.append((f"items.{col}", ds.items[col]))
    if ds.reviews is not None:
        for col in ("text", "summary"):
            if col in ds.reviews.columns:
                fields.append((f"reviews.{col}", ds.reviews[col]))
    rows = []
    for name, series in fields:
        s = series.dropna().astype(str)
        if not len(s):
            continue
        chars = s.str.len()
        words = s.str.split().str.len()
        rows.append(
            {
                "field": name,
                "non_empty": int((chars > 0).sum()),
                "missing": int(series.isna().sum()),
                "chars_mean": round(float(chars.mean()), 1),
                "chars_p50": float(chars.median()),
                "chars_p95": float(chars.quantile(0.95)),
                "chars_max": int(chars.max()),
                "words_mean": round(float(words.mean()), 1),
            }
        )
    return pd.DataFrame(rows)


def describe(ds: Dataset) -> dict[str, Any]:
    """All scalar statistics of the dataset (the numbers 01_explore records as metrics)."""
    pop = item_popularity(ds)
    act = user_activity(ds)
    n_users, n_items = len(act), len(pop)
    density = len(ds.interactions) / (n_users * n_items) if n_users and n_items else 0.0
    out: dict[str, Any] = {
        "users": n_users,
        "items": n_items,
        "interactions": len(ds.interactions),
        "density": round(density, 6),
        **long_tail_summary(pop, act),
        **cold_start(ds),
    }
    for col in ("category", "brand"):
        if col in ds.items.columns:
            out[f"{col}_count"] = int(ds.items[col].nunique())
    return out
