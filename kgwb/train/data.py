"""Training data for the recommenders: contiguous indices, the train/valid/test split, the
collaborative knowledge graph.

* :func:`prepare_interactions` maps user and item ids to contiguous integers (every catalog item
  gets an index, so items nobody bought in training are still ranked) and returns the three
  splits as ``(user, item)`` index pairs.  The dataset's ``split`` column is used when present;
  otherwise a deterministic per-user leave-one-out by timestamp (see :func:`leave_one_out`).
* :func:`build_collab_kg` turns the item–entity relations of a
  :class:`~kgwb.kg.model.KnowledgeGraph` (default: :func:`~kgwb.kg.catalog.catalog_graph` of the
  dataset) into integer triples whose first ``n_items`` entities are the items themselves —
  the KG half of the collaborative knowledge graph; the interaction half is ``train``.

Problems the user should know about are counted in ``InteractionData.stats`` and reported with
:func:`warnings.warn` (users without train items, unseen test items, duplicate positives);
an empty train split is an :class:`EmptySplitError`.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from kgwb.data.schema import Dataset
from kgwb.errors import ConfigError, DataError

if TYPE_CHECKING:  # pragma: no cover
    from kgwb.kg.model import KnowledgeGraph

SPLIT_NAMES = ("train", "valid", "test")


class EmptySplitError(DataError):
    """The training split has no interactions, so there is nothing to learn from."""


class SplitWarning(UserWarning):
    """Interactions that cannot be evaluated or were dropped (counts in the message)."""


@dataclass
class InteractionData:
    """Users, items and the three splits as contiguous integer indices.

    ``train``/``valid``/``test`` are ``(n, 2)`` int64 arrays of ``(user, item)`` index pairs,
    without duplicates.  ``valid`` and ``test`` exclude pairs already seen in an earlier split
    (they could never be retrieved because earlier positives are masked at ranking time).
    """

    user_ids: np.ndarray
    item_ids: np.ndarray
    train: np.ndarray
    valid: np.ndarray
    test: np.ndarray
    split_source: str
    stats: dict[str, Any] = field(default_factory=dict)
    #: indices of the items held out by ``cold_items=F`` (sorted; empty without a cold split)
    cold_items: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    def split(self, name: str) -> np.ndarray:
        if name not in SPLIT_NAMES:
            raise ConfigError(f"unknown split {name!r}; choose one of {', '.join(SPLIT_NAMES)}")
        return getattr(self, name)

    def user_index(self, user_ids) -> np.ndarray:
        """Indices of ``user_ids``; raises DataError naming the first unknown id."""
        return _lookup(self.user_ids, user_ids, "user_id")

    def item_index(self, item_ids) -> np.ndarray:
        return _lookup(self.item_ids, item_ids, "item_id")

    def warm_item_mask(self) -> np.ndarray:
        """Boolean ``(n_items,)``: the item has at least one train interaction."""
        mask = np.zeros(self.n_items, dtype=bool)
        mask[self.train[:, 1]] = True
        return mask

    def item_popularity(self) -> np.ndarray:
        """Train interactions per item (float64, length ``n_items``)."""
        return np.bincount(self.train[:, 1], minlength=self.n_items).astype(np.float64)


def _lookup(index_ids: np.ndarray, ids, column: str) -> np.ndarray:
    index = pd.Index(index_ids)
    wanted = pd.Index(pd.Series(ids, dtype="string").astype(object))
    pos = index.get_indexer(wanted)
    if (pos < 0).any():
        missing = wanted[pos < 0]
        raise DataError(
            f"{len(missing)} unknown {column}(s), first {missing[0]!r}",
            column=column,
            expected=f"ids of the dataset's {column.split('_')[0]}s",
        )
    return pos.astype(np.int64)


def leave_one_out(interactions: pd.DataFrame, *, seed: int = 0) -> pd.Series:
    """Per-user leave-one-out split labels (``train``/``valid``/``test``) for ``interactions``.

    Each user's interactions are ordered by ``timestamp`` (when the column exists; ties and
    missing timestamps broken by a seeded random key, so the result only depends on ``seed``);
    the last one is ``test`` and the one before it ``valid`` for users with at least 3
    interactions; users with 2 get train + test, users with 1 keep it in train.
    """
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "user": interactions["user_id"].astype("string").to_numpy(),
            "key": rng.random(len(interactions)),
            "row": np.arange(len(interactions)),
        }
    )
    sort_by = ["user", "key"]
    if "timestamp" in interactions.columns:
        ts = pd.to_numeric(interactions["timestamp"], errors="coerce").astype("float64")
        frame["ts"] = ts.fillna(-np.inf).to_numpy()
        sort_by = ["user", "ts", "key"]
    frame = frame.sort_values(sort_by, kind="stable")
    size = frame.groupby("user", sort=False)["row"].transform("size").to_numpy()
    from_end = frame.groupby("user", sort=False).cumcount(ascending=False).to_numpy()
    labels = np.full(len(frame), "train", dtype=object)
    labels[(from_end == 0) & (size >= 2)] = "test"
    labels[(from_end == 1) & (size >= 3)] = "valid"
    out = np.empty(len(frame), dtype=object)
    out[frame["row"].to_numpy()] = labels
    return pd.Series(out, index=interactions.index, dtype="string", name="split")


def prepare_interactions(
    dataset: Dataset, *, seed: int = 0, warn: bool = True, cold_items: float = 0.0
) -> InteractionData:
    """Index ``dataset`` for training (see the module docstring).

    ``cold_items=F`` (0 ≤ F < 1) is the cold-start protocol: see :func:`cold_item_split`.
    """
    inter = dataset.interactions
    if len(inter) == 0:
        raise EmptySplitError(
            f"dataset {dataset.name!r} has no interactions",
            expected="user-item interactions with a train split",
        )
    user_ids = _ordered_ids(dataset.users["user_id"], inter["user_id"])
    item_ids = _ordered_ids(dataset.items["item_id"], inter["item_id"])

    if dataset.has_split:
        labels = inter["split"].astype("string")
        split_source = "dataset"
    else:
        labels = leave_one_out(inter, seed=seed)
        split_source = f"leave-one-out by timestamp (seed {seed})"
    cold_ids = np.empty(0, dtype=object)
    if cold_items:
        labels, cold_ids, moved = cold_item_split(inter, labels, cold_items, seed=seed)
        split_source += f"; cold items {cold_items:g} (seed {seed}, {moved} train rows to test)"

    users = pd.Index(user_ids).get_indexer(inter["user_id"].astype("string").astype(object))
    items = pd.Index(item_ids).get_indexer(inter["item_id"].astype("string").astype(object))
    stats: dict[str, Any] = {"split_source": split_source}
    n_items = len(item_ids)
    pairs = _split_pairs(users, items, labels, n_items, stats)

    if len(pairs["train"]) == 0:
        raise EmptySplitError(
            f"dataset {dataset.name!r} has an empty train split "
            f"({stats['valid_interactions']} valid, {stats['test_interactions']} test "
            f"interactions; split from {split_source})",
            column="split",
            expected="at least one interaction labelled 'train'",
        )

    messages = _coverage(pairs, len(user_ids), n_items, stats)
    if warn:
        for message in messages:
            warnings.warn(f"dataset {dataset.name!r}: {message}", SplitWarning, stacklevel=3)
    cold = np.sort(pd.Index(item_ids).get_indexer(cold_ids)).astype(np.int64)
    stats["cold_items"] = len(cold)
    return InteractionData(
        user_ids=user_ids,
        item_ids=item_ids,
        train=pairs["train"],
        valid=pairs["valid"],
        test=pairs["test"],
        split_source=split_source,
        stats=stats,
        cold_items=cold,
    )


def _split_pairs(users, items, labels, n_items: int, stats: dict[str, Any]) -> dict:
    """``{split: (n, 2) user/item index pairs}``: deduplicated, and without the pairs an
    earlier split holds (train, then valid, then test); the counts go into ``stats``."""
    pairs: dict[str, np.ndarray] = {}
    seen_keys = np.empty(0, dtype=np.int64)
    for name in SPLIT_NAMES:
        sel = (labels == name).fillna(False).to_numpy()
        keys = np.unique(users[sel].astype(np.int64) * n_items + items[sel])
        stats[f"{name}_duplicates_dropped"] = int(sel.sum() - len(keys))
        if name != "train":
            earlier = np.isin(keys, seen_keys)
            stats[f"{name}_pairs_in_earlier_split_dropped"] = int(earlier.sum())
            keys = keys[~earlier]
        seen_keys = np.union1d(seen_keys, keys)
        pairs[name] = np.stack([keys // n_items, keys % n_items], axis=1).astype(np.int64)
        stats[f"{name}_interactions"] = len(keys)
    stats["unlabelled_interactions_ignored"] = int((~labels.isin(SPLIT_NAMES).fillna(False)).sum())
    return pairs


def _coverage(pairs: dict, n_users: int, n_items: int, stats: dict[str, Any]) -> list[str]:
    """Count (into ``stats``) the valid/test users without train items and the items unseen
    in train; the warnings to give about them."""
    train_users = np.zeros(n_users, dtype=bool)
    train_users[pairs["train"][:, 0]] = True
    train_items = np.zeros(n_items, dtype=bool)
    train_items[pairs["train"][:, 1]] = True
    messages = []
    for name in ("valid", "test"):
        p = pairs[name]
        cold_users = np.unique(p[~train_users[p[:, 0]], 0])
        stats[f"{name}_users_without_train_items"] = len(cold_users)
        if len(cold_users):
            messages.append(
                f"{len(cold_users)} {name} user(s) have no train interactions and are "
                "excluded from evaluation"
            )
        unseen = ~train_items[p[:, 1]]
        stats[f"{name}_items_unseen_in_train"] = int(len(np.unique(p[unseen, 1])))
        stats[f"{name}_interactions_with_unseen_items"] = int(unseen.sum())
        if unseen.any():
            messages.append(
                f"{int(unseen.sum())} {name} interaction(s) point at "
                f"{stats[f'{name}_items_unseen_in_train']} item(s) unseen in training "
                "(kept: they are ranked like any other item)"
            )
    stats["users"] = n_users
    stats["items"] = n_items
    stats["items_in_train"] = int(train_items.sum())
    return messages


def cold_item_split(
    interactions: pd.DataFrame, labels: pd.Series, fraction: float, *, seed: int = 0
) -> tuple[pd.Series, np.ndarray, int]:
    """The cold-start protocol: hold out ``fraction`` of the interacted items from training.

    ``round(fraction × items with an interaction)`` items (at least one) are drawn with
    ``numpy.random.default_rng(seed)`` from the distinct item ids in sorted order, so the draw
    depends only on the ids and the seed.  Every ``train`` interaction of a drawn item becomes
    ``test``; its ``valid``/``test`` rows keep their label.  So a cold item has no train
    interaction at all and is seen only at evaluation time, with or without a fixed split.
    Returns the new labels, the cold item ids and the number of rows moved to test.
    """
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"cold_items must be a fraction in (0, 1), got {fraction!r}")
    items = interactions["item_id"].astype("string")
    candidates = np.sort(pd.unique(items.dropna().astype(object)).astype(str))
    n_cold = max(1, int(round(fraction * len(candidates))))
    rng = np.random.default_rng([seed, 0xC01D])
    cold = np.sort(rng.choice(candidates, size=n_cold, replace=False)).astype(object)
    to_test = (items.isin(cold) & (labels == "train")).fillna(False).to_numpy()
    labels = labels.copy()
    labels[to_test] = "test"
    return labels, cold, int(to_test.sum())


def _ordered_ids(table_ids: pd.Series, inter_ids: pd.Series) -> np.ndarray:
    """Ids of the table in table order, then ids only the interactions mention (first seen)."""
    known = pd.unique(table_ids.astype("string").dropna().astype(object))
    extra = pd.Index(pd.unique(inter_ids.astype("string").dropna().astype(object))).difference(
        pd.Index(known), sort=False
    )
    return np.concatenate([np.asarray(known, dtype=object), np.asarray(extra, dtype=object)])


@dataclass
class CollabKG:
    """Integer triples of the item–entity graph; entities ``0..n_items-1`` are the items.

    ``triples`` is an ``(n, 3)`` int64 array of ``(head, relation, tail)``.  Interactions are not
    in it: models add the train interactions (``InteractionData.train``) as the ``interact``
    relation themselves, so the same KG serves every split.
    """

    n_items: int
    entity_ids: np.ndarray
    relations: list[str]
    triples: np.ndarray
    stats: dict[str, Any] = field(default_factory=dict)

    @property
    def n_entities(self) -> int:
        return len(self.entity_ids)

    @property
    def n_relations(self) -> int:
        return len(self.relations)


def _drop_rare_entities(triples, entity_ids, n_items: int, min_triples: int):
    """Drop the non-item entities in fewer than ``min_triples`` triples (and those triples);
    ``(triples, entity_ids, n_dropped)`` with the entities renumbered."""
    n_ent = len(entity_ids)
    count = np.bincount(triples[:, [0, 2]].ravel(), minlength=n_ent)
    rare = count < min_triples
    rare[:n_items] = False
    drop = rare[triples[:, 0]] | rare[triples[:, 2]]
    triples = triples[~drop]
    used = np.zeros(n_ent, dtype=bool)
    used[:n_items] = True
    used[triples[:, [0, 2]].ravel()] = True
    new_index = np.cumsum(used) - 1
    triples = np.stack([new_index[triples[:, 0]], triples[:, 1], new_index[triples[:, 2]]], 1)
    return triples, entity_ids[used], int((~used).sum())


def build_collab_kg(
    data: InteractionData,
    dataset: Dataset | None = None,
    kg: KnowledgeGraph | None = None,
    *,
    min_entity_triples: int = 2,
) -> CollabKG:
    """The KG half of the collaborative KG from ``kg`` (default: ``catalog_graph(dataset)``).

    Item nodes (``item:<item_id>``) map to the item indices of ``data``; every other node gets
    an index after them.  User nodes and ``interaction`` edges are dropped (the model adds the
    train interactions itself, and a KG that carries interactions could leak test pairs).
    Triples are deduplicated; relations are sorted by name.  Entities other than items that
    occur in fewer than ``min_entity_triples`` triples are dropped with their triples: a leaf
    linked to one item carries no signal between items, only parameters (on amazon-beauty 52k
    of the 109k non-item entities, 5% of the triples).
    """
    if kg is None:
        if dataset is None:
            raise ConfigError("build_collab_kg needs a dataset or a knowledge graph")
        from kgwb.kg.catalog import catalog_graph

        kg = catalog_graph(dataset)
    edges = kg.edges
    keep = (edges["source"].astype("string") != "interaction").fillna(True)
    head = edges.loc[keep, "head"].astype("string").reset_index(drop=True)
    tail = edges.loc[keep, "tail"].astype("string").reset_index(drop=True)
    rel = edges.loc[keep, "relation"].astype("string").reset_index(drop=True)
    is_user = (head.str.startswith("user:") | tail.str.startswith("user:")).fillna(False)
    head, tail, rel = head[~is_user], tail[~is_user], rel[~is_user]

    # factorize once (fast on Arrow strings), then map the few distinct names to indices
    codes, names = pd.factorize(pd.concat([head, tail], ignore_index=True))
    item_nodes = np.asarray(["item:" + str(i) for i in data.item_ids], dtype=object)
    names = pd.Index(np.asarray(names, dtype=object))
    others = names.difference(pd.Index(item_nodes), sort=True)
    entity_ids = np.concatenate([item_nodes, np.asarray(others, dtype=object)])
    name_to_entity = pd.Index(entity_ids).get_indexer(names)
    ends = name_to_entity[codes]
    rel_codes, rel_names = pd.factorize(rel, sort=True)
    relations = [str(r) for r in rel_names]
    n_ent, n_rel = len(entity_ids), max(len(relations), 1)
    # dedup on one int64 key per triple (sorting rows of a 2-D array is ~10× slower)
    keys = np.unique((ends[: len(head)] * n_rel + rel_codes) * n_ent + ends[len(head) :])
    triples = np.stack([keys // n_ent // n_rel, keys // n_ent % n_rel, keys % n_ent], axis=1)
    triples = triples.astype(np.int64).reshape(-1, 3)
    n_dropped = 0
    if min_entity_triples > 1 and len(triples):
        triples, entity_ids, n_dropped = _drop_rare_entities(
            triples, entity_ids, data.n_items, min_entity_triples
        )
    item_linked = np.zeros(data.n_items, dtype=bool)
    for col in (0, 2):
        ends = triples[:, col]
        item_linked[ends[ends < data.n_items]] = True
    stats = {
        "kg_entities": len(entity_ids),
        "kg_rare_entities_dropped": n_dropped,
        "kg_relations": len(relations),
        "kg_triples": len(triples),
        "kg_items_linked": int(item_linked.sum()),
        "kg_triples_per_relation": {
            r: int(c)
            for r, c in zip(relations, np.bincount(triples[:, 1], minlength=len(relations)))
        },
    }
    return CollabKG(
        n_items=data.n_items,
        entity_ids=entity_ids,
        relations=relations,
        triples=triples,
        stats=stats,
    )
