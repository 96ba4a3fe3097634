"""A seeded user-subsample of a dataset: smoke-sized real data for tests and quick runs.

``subsample_users`` keeps ``n_users`` users drawn at random, all their interactions (every
split), the items they touched, the catalog rows, attributes and reviews of those items, and the
KG triples that start at a kept item (its brand, categories, related products; only the
``relations`` named, when given).  Entities no kept triple mentions are dropped.  The result is an ordinary :class:`~kgwb.data.schema.Dataset`.
"""

from __future__ import annotations

from dataclasses import replace

import pandas as pd

from kgwb.data.schema import Dataset

__all__ = ["subsample_users"]


def _keep(table: pd.DataFrame | None, column: str, keep: set[str]) -> pd.DataFrame | None:
    if table is None:
        return None
    return table[table[column].astype(str).isin(keep)].reset_index(drop=True)


def subsample_users(
    dataset: Dataset, n_users: int, *, seed: int = 0, relations: tuple[str, ...] | None = None
) -> Dataset:
    """``n_users`` users of ``dataset`` (seeded) with everything they touch (module docstring)."""
    users = dataset.users["user_id"].astype(str).drop_duplicates()
    if n_users < len(users):
        users = users.sample(n=n_users, random_state=seed)
    kept_users = set(users)
    inter = _keep(dataset.interactions, "user_id", kept_users)
    kept_items = set(inter["item_id"].astype(str))
    out = replace(
        dataset,
        name=f"{dataset.name}-{len(kept_users)}users-seed{seed}",
        users=_keep(dataset.users, "user_id", kept_users),
        interactions=inter,
        items=_keep(dataset.items, "item_id", kept_items),
        reviews=_keep(dataset.reviews, "item_id", kept_items),
        item_attributes=_keep(dataset.item_attributes, "item_id", kept_items),
        truth={},
        meta={**dataset.meta, "subsample": {"users": len(kept_users), "seed": seed}},
    )
    if out.reviews is not None:
        out.reviews = _keep(out.reviews, "user_id", kept_users)
    if dataset.kg is not None:
        links = _keep(dataset.item_entities, "item_id", kept_items)
        heads = set(links["entity_id"].astype(str)) if links is not None else kept_items
        kg = _keep(dataset.kg, "head", heads)
        if relations is not None:
            kg = kg[kg["relation"].astype(str).isin(set(relations))].reset_index(drop=True)
        mentioned = set(kg["head"].astype(str)) | set(kg["tail"].astype(str)) | heads
        out.kg = kg
        out.item_entities = links
        out.entities = _keep(dataset.entities, "entity_id", mentioned)
    return out
