"""Full-ranking evaluation of recommenders: every item is scored for every evaluated user.

Definitions (those of RecBole and the LightGCN/KGAT papers), for one user with the set ``P`` of
held-out positives and the top-``K`` list of the items left after masking the user's known
items (train, and valid when testing):

* ``recall@K``    = |top-K ∩ P| / |P|
* ``precision@K`` = |top-K ∩ P| / K
* ``hit@K``       = 1 if top-K ∩ P is not empty
* ``ndcg@K``      = DCG / IDCG with DCG = Σ_{rank r ≤ K, item ∈ P} 1 / log2(r + 1) and IDCG the
  DCG of a list with the ``min(|P|, K)`` positives first.

Metrics are averaged over users that have at least one positive; users without are skipped
and counted.  Everything runs batched over users on the scores' device with ``torch.topk``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

DEFAULT_KS: tuple[int, ...] = (10, 20)
METRIC_NAMES = ("recall", "ndcg", "hit", "precision")


def ranking_metrics(
    scores: torch.Tensor,
    positives: torch.Tensor,
    *,
    exclude: torch.Tensor | None = None,
    ks: Sequence[int] = DEFAULT_KS,
) -> dict[str, torch.Tensor]:
    """Per-user metrics for one batch.

    ``scores`` is ``(users, items)``; ``positives`` and ``exclude`` are boolean masks of the same
    shape.  Excluded items are never ranked (an excluded positive is not counted as a positive).
    Returns ``{"recall@10": tensor(users), ...}``; users without positives get NaN.
    """
    if scores.shape != positives.shape:
        raise ValueError(f"scores {tuple(scores.shape)} and positives {tuple(positives.shape)}")
    positives = positives.bool()
    scores = scores.float()
    if exclude is not None:
        exclude = exclude.bool()
        positives = positives & ~exclude
        scores = scores.masked_fill(exclude, float("-inf"))
    n_pos = positives.sum(1).float()
    k_max = min(max(ks), scores.shape[1])
    top = torch.topk(scores, k_max, dim=1).indices
    hits = positives.gather(1, top)
    if exclude is not None:  # fewer than K rankable items: masked ones fill the list
        hits = hits & ~exclude.gather(1, top)
    return metrics_from_hits(hits, n_pos, ks)


def metrics_from_hits(
    hits: torch.Tensor, n_positives: torch.Tensor, ks: Sequence[int] = DEFAULT_KS
) -> dict[str, torch.Tensor]:
    """Per-user metrics from ``hits`` (``(users, k_max)``: is the item at rank r a positive)
    and each user's number of positives; NaN for users without positives."""
    hits = hits.float()
    n_pos = n_positives.float()
    k_max = hits.shape[1]
    ranks = torch.arange(1, k_max + 1, device=hits.device, dtype=torch.float32)
    discount = 1.0 / torch.log2(ranks + 1.0)
    ideal = torch.cumsum(discount, 0)
    none = n_pos == 0
    nan = torch.tensor(float("nan"), device=hits.device)
    out: dict[str, torch.Tensor] = {}
    for k in ks:
        kk = min(k, k_max)
        hit_count = hits[:, :kk].sum(1)
        dcg = (hits[:, :kk] * discount[:kk]).sum(1)
        idcg = ideal[(torch.clamp(n_pos, max=kk).long() - 1).clamp(min=0)]
        values = {
            "recall": hit_count / n_pos.clamp(min=1),
            "ndcg": dcg / idcg,
            "hit": (hit_count > 0).float(),
            "precision": hit_count / k,
        }
        for name in METRIC_NAMES:
            out[f"{name}@{k}"] = torch.where(none, nan, values[name])
    return out


def csr_from_pairs(pairs: torch.Tensor, n_rows: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(indptr, indices)`` of a ``(n, 2)`` tensor of (row, column) pairs, rows sorted."""
    pairs = pairs.long()
    pairs = pairs[torch.argsort(pairs[:, 0], stable=True)]
    counts = torch.bincount(pairs[:, 0], minlength=n_rows)
    indptr = torch.zeros(n_rows + 1, dtype=torch.long, device=pairs.device)
    indptr[1:] = torch.cumsum(counts, 0)
    return indptr, pairs[:, 1].contiguous()


def dense_rows(
    indptr: torch.Tensor, indices: torch.Tensor, rows: torch.Tensor, n_cols: int
) -> torch.Tensor:
    """Boolean ``(len(rows), n_cols)`` matrix of the CSR rows ``rows`` (no Python loop)."""
    starts = indptr[rows]
    counts = indptr[rows + 1] - starts
    out = torch.zeros(len(rows), n_cols, dtype=torch.bool, device=indices.device)
    total = int(counts.sum())
    if total == 0:
        return out
    row_of = torch.repeat_interleave(torch.arange(len(rows), device=indices.device), counts)
    offset = torch.arange(total, device=indices.device) - torch.repeat_interleave(
        torch.cumsum(counts, 0) - counts, counts
    )
    out[row_of, indices[torch.repeat_interleave(starts, counts) + offset]] = True
    return out


def evaluate_full_ranking(
    score_users: Callable[[torch.Tensor], torch.Tensor],
    positives: np.ndarray | torch.Tensor,
    *,
    n_users: int,
    n_items: int,
    exclude: Sequence[np.ndarray | torch.Tensor] = (),
    users: np.ndarray | torch.Tensor | None = None,
    ks: Sequence[int] = DEFAULT_KS,
    batch_size: int = 1024,
    device: torch.device | str = "cpu",
) -> dict[str, float]:
    """Mean full-ranking metrics of ``score_users`` (user indices → ``(B, n_items)`` scores).

    ``positives`` and each of ``exclude`` are ``(n, 2)`` (user, item) index pairs; excluded
    items are never ranked and never count as positives.  ``users`` (default: the users with a
    positive) are the candidates; those with no positive left are skipped and counted in
    ``users_skipped``.  Returns the means over users plus ``users_evaluated``, ``positives``
    (positives of the evaluated users) and ``micro_recall@K`` (hits in the top-K of all
    evaluated users / ``positives``: the per-interaction recall, which adds up across disjoint
    sets of positives ranked by the same scores, e.g. warm and cold items).

    Same numbers as :func:`ranking_metrics`, without its dense ``(B, n_items)`` boolean masks:
    excluded items are set to ``-inf`` in place in the (fresh) score matrix, and the top-K items
    are looked up in the sorted positive keys — the masks would cost as much as the scoring.
    """
    device = torch.device(device)
    pos = torch.as_tensor(positives, dtype=torch.long, device=device).reshape(-1, 2)
    masks = [torch.as_tensor(m, dtype=torch.long, device=device).reshape(-1, 2) for m in exclude]
    mask = torch.cat(masks) if masks else pos[:0]
    mask_keys = torch.unique(mask[:, 0] * n_items + mask[:, 1])
    pos_keys = torch.unique(pos[:, 0] * n_items + pos[:, 1])
    pos_keys = pos_keys[~torch.isin(pos_keys, mask_keys)]
    mask_ptr, mask_idx = csr_from_pairs(
        torch.stack([mask_keys // n_items, mask_keys % n_items], 1), n_users
    )
    n_pos = torch.bincount(pos_keys // n_items, minlength=n_users)
    if users is None:
        candidates = torch.nonzero(n_pos).flatten()
    else:
        candidates = torch.unique(torch.as_tensor(users, dtype=torch.long, device=device))
    evaluated = candidates[n_pos[candidates] > 0]
    k_max = min(max(ks), n_items)
    sums: dict[str, torch.Tensor] = {}
    for start in range(0, len(evaluated), batch_size):
        batch = evaluated[start : start + batch_size]
        scores = score_users(batch).float()
        starts = mask_ptr[batch]
        counts = mask_ptr[batch + 1] - starts
        if int(counts.sum()):
            row_of = torch.repeat_interleave(torch.arange(len(batch), device=device), counts)
            offset = torch.arange(int(counts.sum()), device=device) - torch.repeat_interleave(
                torch.cumsum(counts, 0) - counts, counts
            )
            cols = mask_idx[torch.repeat_interleave(starts, counts) + offset]
            scores[row_of, cols] = float("-inf")
        top = torch.topk(scores, k_max, dim=1).indices
        keys = batch[:, None] * n_items + top
        at = torch.searchsorted(pos_keys, keys).clamp(max=max(len(pos_keys) - 1, 0))
        hits = pos_keys[at] == keys if len(pos_keys) else torch.zeros_like(keys, dtype=torch.bool)
        for name, values in metrics_from_hits(hits, n_pos[batch], ks).items():
            sums[name] = sums.get(name, 0.0) + values.double().sum()
        for k in ks:  # hit counts: what the per-interaction (micro) recall adds up
            sums[f"hits@{k}"] = sums.get(f"hits@{k}", 0.0) + hits[:, :k].sum()
    n = len(evaluated)
    n_positives = int(n_pos[evaluated].sum())
    if n:
        out = {name: float(total) / n for name, total in sums.items() if "hits" not in name}
        for k in ks:
            out[f"micro_recall@{k}"] = float(sums[f"hits@{k}"]) / n_positives
    else:
        out = {f"{m}@{k}": float("nan") for k in ks for m in METRIC_NAMES}
        out.update({f"micro_recall@{k}": float("nan") for k in ks})
    out["positives"] = n_positives
    out["users_evaluated"] = int(n)
    out["users_skipped"] = int(len(candidates) - n)
    return out
