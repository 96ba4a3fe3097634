"""Full-ranking metrics on hand-computed cases (the expected numbers are worked out below)."""

from __future__ import annotations

import math

import pytest
import torch  # noqa: E402

from kgwb.train.metrics import (  # noqa: E402
    csr_from_pairs,
    dense_rows,
    evaluate_full_ranking,
    ranking_metrics,
)

# 4 users × 6 items.  Rankings by score:
#   u0: 0 1 2 3 4 5      u1: 5 4 3 2 1 0      u2: 2 4 0 3 5 1      u3: anything
SCORES = [
    [0.9, 0.8, 0.7, 0.6, 0.5, 0.4],
    [0.1, 0.2, 0.3, 0.4, 0.5, 0.6],
    [0.5, 0.1, 0.9, 0.3, 0.7, 0.2],
    [0.6, 0.5, 0.4, 0.3, 0.2, 0.1],
]
POSITIVES = {0: [1, 3], 1: [3], 2: [0, 1, 3, 5]}  # u3 has none
EXCLUDE = {1: [5, 4]}  # u1's train items: after masking its ranking is 3 2 1 0

LOG2_3 = math.log2(3)
# u0: top-3 = 0 1 2, one hit at rank 2 -> DCG 1/log2(3); IDCG (2 positives) 1 + 1/log2(3)
U0_NDCG3 = (1 / LOG2_3) / (1 + 1 / LOG2_3)  # 0.386853
# u2: top-3 = 2 4 0, one hit at rank 3 -> DCG 1/log2(4) = 0.5; IDCG (4 positives, K=3)
U2_NDCG3 = 0.5 / (1 + 1 / LOG2_3 + 0.5)  # 0.234639


def _mask(rows: dict[int, list[int]], n_users: int = 4, n_items: int = 6):
    m = torch.zeros(n_users, n_items, dtype=torch.bool)
    for u, items in rows.items():
        m[u, items] = True
    return m


def _pairs(rows: dict[int, list[int]]):
    return torch.tensor([[u, i] for u, items in rows.items() for i in items], dtype=torch.long)


def test_per_user_metrics_match_hand_computation():
    out = ranking_metrics(torch.tensor(SCORES), _mask(POSITIVES), exclude=_mask(EXCLUDE), ks=(1, 3))
    assert out["recall@1"][:3].tolist() == [0.0, 1.0, 0.0]
    assert out["recall@3"][:3].tolist() == pytest.approx([0.5, 1.0, 0.25])
    assert out["ndcg@1"][:3].tolist() == [0.0, 1.0, 0.0]
    assert out["ndcg@3"][:3].tolist() == pytest.approx([U0_NDCG3, 1.0, U2_NDCG3], abs=1e-6)
    assert out["hit@3"][:3].tolist() == [1.0, 1.0, 1.0]
    assert out["precision@3"][:3].tolist() == pytest.approx([1 / 3, 1 / 3, 1 / 3])
    # a user without positives is undefined, not zero
    assert all(math.isnan(out[name][3].item()) for name in out)


def test_masking_train_items_changes_the_ranking():
    unmasked = ranking_metrics(torch.tensor(SCORES), _mask(POSITIVES), ks=(1, 3))
    # without the mask u1 ranks 5 4 3: its positive 3 comes third -> DCG 1/log2(4) = 0.5
    assert unmasked["recall@1"][1].item() == 0.0
    assert unmasked["ndcg@3"][1].item() == pytest.approx(0.5)


def test_an_excluded_positive_is_not_counted():
    positives = _mask({0: [0, 1]})[:1]
    exclude = _mask({0: [0]})[:1]
    out = ranking_metrics(torch.tensor(SCORES[:1]), positives, exclude=exclude, ks=(1,))
    # item 0 is masked, so item 1 is ranked first and is the only positive left
    assert out["recall@1"].item() == 1.0
    only_excluded = ranking_metrics(
        torch.tensor(SCORES[:1]), exclude.clone(), exclude=exclude, ks=(1,)
    )
    assert math.isnan(only_excluded["recall@1"].item())


def test_k_larger_than_the_catalog_uses_every_item():
    out = ranking_metrics(torch.tensor(SCORES[:1]), _mask({0: [5]})[:1], ks=(20,))
    # item 5 is ranked 6th of 6: recall 1, DCG 1/log2(7), IDCG 1
    assert out["recall@20"].item() == 1.0
    assert out["ndcg@20"].item() == pytest.approx(1 / math.log2(7))
    assert out["precision@20"].item() == pytest.approx(1 / 20)


def test_ndcg_ideal_is_capped_at_k():
    # 3 positives ranked first with K=2: a perfect list, NDCG 1 (IDCG uses min(|P|, K) = 2)
    out = ranking_metrics(torch.tensor(SCORES[:1]), _mask({0: [0, 1, 2]})[:1], ks=(2,))
    assert out["ndcg@2"].item() == pytest.approx(1.0)
    assert out["recall@2"].item() == pytest.approx(2 / 3)


def test_csr_rows_round_trip():
    pairs = torch.tensor([[2, 5], [0, 1], [2, 0], [0, 3]])
    ptr, idx = csr_from_pairs(pairs, n_rows=4)
    assert ptr.tolist() == [0, 2, 2, 4, 4]
    dense = dense_rows(ptr, idx, torch.tensor([2, 1, 0]), n_cols=6)
    assert dense.int().tolist() == [[1, 0, 0, 0, 0, 1], [0] * 6, [0, 1, 0, 1, 0, 0]]


@pytest.mark.parametrize("batch_size", [1, 2, 1024])
def test_evaluate_full_ranking_means_over_users_with_positives(batch_size):
    scores = torch.tensor(SCORES)
    res = evaluate_full_ranking(
        lambda users: scores[users],
        _pairs(POSITIVES),
        n_users=4,
        n_items=6,
        exclude=[_pairs(EXCLUDE)],
        users=torch.arange(4),
        ks=(1, 3),
        batch_size=batch_size,
    )
    assert res["users_evaluated"] == 3
    assert res["users_skipped"] == 1  # u3 has no positive
    assert res["recall@1"] == pytest.approx(1 / 3)
    assert res["recall@3"] == pytest.approx((0.5 + 1.0 + 0.25) / 3)
    assert res["ndcg@3"] == pytest.approx((U0_NDCG3 + 1.0 + U2_NDCG3) / 3, abs=1e-6)
    assert res["hit@1"] == pytest.approx(1 / 3)


def test_evaluate_without_users_takes_those_with_positives():
    scores = torch.tensor(SCORES)
    res = evaluate_full_ranking(
        lambda users: scores[users], _pairs({1: [3]}), n_users=4, n_items=6, ks=(3,)
    )
    assert res["users_evaluated"] == 1 and res["users_skipped"] == 0
    assert res["ndcg@3"] == pytest.approx(0.5)


def test_batched_evaluation_agrees_with_the_dense_definition():
    gen = torch.Generator().manual_seed(0)
    n_users, n_items = 30, 25
    scores = torch.rand(n_users, n_items, generator=gen)
    positives = torch.rand(n_users, n_items, generator=gen) < 0.15
    exclude = torch.rand(n_users, n_items, generator=gen) < 0.3  # overlaps the positives
    dense = ranking_metrics(scores, positives, exclude=exclude, ks=(5, 20))
    res = evaluate_full_ranking(
        lambda users: scores[users].clone(),
        torch.nonzero(positives),
        n_users=n_users,
        n_items=n_items,
        exclude=[torch.nonzero(exclude)],
        ks=(5, 20),
        batch_size=7,
    )
    counted = ~torch.isnan(dense["recall@5"])
    assert res["users_evaluated"] == int(counted.sum())
    for name, values in dense.items():
        assert res[name] == pytest.approx(values[counted].double().mean().item(), abs=1e-6)
