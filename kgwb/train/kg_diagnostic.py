"""How informative a KG is for a recommender, before and after training.

* :func:`kg_informativeness` (before training, no model): per relation of the collaborative KG,
  how many items it covers and how well "items linked through this relation" predicts what users
  interact with — the co-interaction lift of linked item pairs over random pairs, and the valid
  Recall@K of a KG-only recommender that scores an item by its links to the user's train items
  (next to popularity's Recall@K for the same users).
* :func:`kg_usage` (after training): per relation direction of a trained ``kgat``, the learned
  gate of each layer, the size of the relation's messages into items relative to the
  interaction messages (0 when the model ignores the relation) and the weight the model gives
  its KG tower against its LightGCN backbone (chosen on validation).

Both return a small pandas table, one row per relation, for one notebook cell each.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy import sparse

if TYPE_CHECKING:  # pragma: no cover
    from kgwb.data.schema import Dataset
    from kgwb.kg.model import KnowledgeGraph
    from kgwb.train.data import CollabKG, InteractionData

ALL_RELATIONS = "(all relations)"


@dataclass
class InformativenessConfig:
    """Sizes of the samples :func:`kg_informativeness` draws (seeded, so the table repeats)."""

    k: int = 20
    users: int = 5000
    pairs: int = 20000
    seed: int = 0
    split: str = "valid"


def kg_informativeness(
    dataset: Dataset | None = None,
    kg: KnowledgeGraph | None = None,
    *,
    data: InteractionData | None = None,
    ckg: CollabKG | None = None,
    config: InformativenessConfig | None = None,
) -> pd.DataFrame:
    """One row per KG relation (and one for all of them) saying how much it can tell a recommender.

    Columns: ``triples``; ``items_covered`` (share of items in at least one triple of the
    relation); ``items_per_entity`` (mean number of items linked to one tail entity: large values
    mean coarse groups such as a category); ``pair_lift`` (share of item pairs linked by the
    relation — directly or through a shared entity — that some train user interacted with both,
    over the same share for random item pairs: 1 means the links say nothing about
    co-interaction); ``kg_recall@K`` (Recall@K on ``config.split`` of a recommender that scores
    an item by its links to the user's train items, a shared entity weighted by one over its
    degree), ``pop_recall@K`` (popularity, same users) and ``recall_ratio`` (their quotient).

    Pass ``dataset`` (and optionally ``kg``, as :func:`kgwb.train.train_recommender` takes
    them), or the already built ``data`` and ``ckg``.
    """
    from kgwb.train.data import build_collab_kg, prepare_interactions

    cfg = config or InformativenessConfig()
    if data is None:
        if dataset is None:
            raise ValueError("kg_informativeness needs a dataset or data= and ckg=")
        data = prepare_interactions(dataset, seed=cfg.seed, warn=False)
    if ckg is None:
        ckg = build_collab_kg(data, dataset, kg)
    rng = np.random.default_rng(cfg.seed)
    n_items = data.n_items
    train = sparse.csr_matrix(
        (np.ones(len(data.train)), (data.train[:, 0], data.train[:, 1])),
        shape=(data.n_users, n_items),
    )
    train.data[:] = 1.0
    co = (train.T @ train).tocsr()  # item x item co-interaction counts
    held = data.split(cfg.split)
    users = np.unique(held[:, 0])
    users = users[np.asarray(train[users].sum(1)).ravel() > 0]
    if len(users) > cfg.users:
        users = np.sort(rng.choice(users, cfg.users, replace=False))
    truth = sparse.csr_matrix(
        (np.ones(len(held)), (held[:, 0], held[:, 1])), shape=(data.n_users, n_items)
    )[users]
    seen = train[users]
    popularity = np.asarray(train.sum(0)).ravel()
    pop_recall = _recall_at_k(np.broadcast_to(popularity, seen.shape), seen, truth, cfg.k)
    random_rate = _co_rate(co, rng.integers(n_items, size=(cfg.pairs, 2)))

    rows = []
    relations = [*range(len(ckg.relations)), None]
    for r in relations:
        t = ckg.triples if r is None else ckg.triples[ckg.triples[:, 1] == r]
        link = _item_links(t, n_items, ckg.n_entities)
        covered = np.asarray(link.sum(1)).ravel() > 0
        tails = link.tocsc()[:, n_items:] if r is None else link.tocsc()
        per_entity = np.diff(tails.indptr)
        kg_recall = np.nan  # a relation between non-item entities only links no item
        if covered.any():
            kg_recall = _recall_at_k(_kg_scores(link, n_items, seen), seen, truth, cfg.k)
        pairs = _linked_pairs(link, n_items, cfg.pairs, rng)
        lift = _co_rate(co, pairs) / random_rate if len(pairs) and random_rate > 0 else np.nan
        rows.append(
            {
                "relation": ALL_RELATIONS if r is None else ckg.relations[r],
                "triples": len(t),
                "items_covered": covered.mean() if n_items else 0.0,
                "items_per_entity": per_entity[per_entity > 0].mean()
                if (per_entity > 0).any()
                else 0.0,
                "pair_lift": lift,
                f"kg_recall@{cfg.k}": kg_recall,
                f"pop_recall@{cfg.k}": pop_recall,
                "recall_ratio": kg_recall / pop_recall if pop_recall > 0 else np.nan,
            }
        )
    return pd.DataFrame(rows).round(4)


def _item_links(triples: np.ndarray, n_items: int, n_entities: int) -> sparse.csr_matrix:
    """Binary item x entity matrix: item ``i`` is linked to entity ``e`` by a triple either way."""
    h, t = triples[:, 0], triples[:, 2]
    rows = np.concatenate([h[h < n_items], t[t < n_items]])
    cols = np.concatenate([t[h < n_items], h[t < n_items]])
    m = sparse.csr_matrix(
        (np.ones(len(rows)), (rows, cols)), shape=(n_items, max(n_entities, n_items))
    )
    m.data[:] = 1.0
    return m


def _kg_scores(link: sparse.csr_matrix, n_items: int, seen: sparse.csr_matrix) -> np.ndarray:
    """``seen @ (L D^-1 L^T + L_items)``: shared entities weighted by 1/degree, plus direct
    item–item links; computed as two sparse products so no item x item matrix is formed."""
    degree = np.asarray(link.sum(0)).ravel()
    inv = np.divide(1.0, degree, out=np.zeros_like(degree), where=degree > 0)
    via_entity = (seen @ link) @ sparse.diags(inv) @ link.T
    direct = seen @ link[:, :n_items].T
    return np.asarray((via_entity + direct).todense())


def _recall_at_k(scores, seen: sparse.csr_matrix, truth: sparse.csr_matrix, k: int) -> float:
    """Mean Recall@k over rows, train items masked (ties broken by item index)."""
    s = np.array(scores, dtype=np.float64)
    s[seen.nonzero()] = -np.inf
    k = min(k, s.shape[1])
    top = np.argpartition(-s, k - 1, axis=1)[:, :k]
    hits = np.asarray(truth[np.arange(s.shape[0])[:, None], top].sum(1)).ravel()
    n_true = np.asarray(truth.sum(1)).ravel()
    ok = n_true > 0
    return float((hits[ok] / np.minimum(n_true[ok], k)).mean()) if ok.any() else 0.0


def _linked_pairs(link: sparse.csr_matrix, n_items: int, n: int, rng) -> np.ndarray:
    """Up to ``n`` random item pairs linked directly or through a shared entity."""
    csc = link.tocsc()
    size = np.diff(csc.indptr)
    shared = np.flatnonzero(size >= 2)
    pairs = []
    if len(shared):  # pick an entity (by its number of pairs), then two of its items
        weight = size[shared].astype(float) * (size[shared] - 1)
        ent = rng.choice(shared, n, p=weight / weight.sum())
        a = rng.integers(0, size[ent])
        b = (a + 1 + rng.integers(0, size[ent] - 1)) % size[ent]
        pairs.append(
            np.stack([csc.indices[csc.indptr[ent] + a], csc.indices[csc.indptr[ent] + b]], 1)
        )
    direct = link[:, :n_items].tocoo()
    if direct.nnz:
        pick = rng.integers(0, direct.nnz, n)
        pairs.append(np.stack([direct.row[pick], direct.col[pick]], 1))
    if not pairs:
        return np.empty((0, 2), dtype=np.int64)
    out = np.concatenate(pairs)
    out = out[out[:, 0] != out[:, 1]]
    return out[rng.permutation(len(out))[:n]]


def _co_rate(co: sparse.csr_matrix, pairs: np.ndarray) -> float:
    """Share of item pairs that at least one train user interacted with both."""
    pairs = pairs[pairs[:, 0] != pairs[:, 1]]
    if not len(pairs):
        return 0.0
    return float((np.asarray(co[pairs[:, 0], pairs[:, 1]]).ravel() > 0).mean())


def kg_usage(
    model: Any, relations: list[str] | None = None, *, drop_unused: bool = True
) -> pd.DataFrame:
    """Per relation direction of a trained gated ``kgat``: its gate per layer; ``item_share``,
    the norm of its messages into items over the norm of the interaction messages into items
    (summed over layers, at the evaluation graph: every triple); ``kg_tower_weight``, the
    validation-chosen weight of the KG tower's score (0: the model is its LightGCN backbone).
    ``relation⁻¹`` is the direction from head to tail (e.g. a brand receiving from its items);
    ``drop_unused`` leaves out the directions whose gates stayed at 0."""
    table = model.gate_table(relations)
    if drop_unused:  # directions whose gates never left 0 (e.g. entities receiving from items)
        gates = table.filter(like="gate_l")
        table = table[(gates != 0).any(axis=1) | (table["item_share"] != 0)]
    return table.reset_index(drop=True)
