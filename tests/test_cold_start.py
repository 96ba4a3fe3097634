"""The cold-start protocol (``cold_items=F``) and the inductive item representations:
``kg-inductive`` (items from their KG neighbourhood) and ``text-tower`` (a fine-tuned encoder
over the item text augmented with KG facts)."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch
from test_train_recommend import FAST, clustered

from kgwb.cli import main
from kgwb.data import load_dataset
from kgwb.train.data import prepare_interactions
from kgwb.train.recommend import load_recommender, train_recommender, warm_cold_split
from kgwb.train.text_tower import item_texts

pytestmark = pytest.mark.filterwarnings("ignore::kgwb.train.data.SplitWarning")


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def data():
    return clustered()


def _pairs_of(data, items):
    return {name: np.isin(data.split(name)[:, 1], items) for name in ("train", "valid", "test")}


@pytest.mark.parametrize("fixed_split", [True, False])
def test_cold_items_never_reach_training(data, fixed_split):
    ds = data
    if not fixed_split:  # leave-one-out by timestamp instead of the dataset's split
        ds = clustered()
        ds.interactions = ds.interactions.drop(columns="split")
    plain = prepare_interactions(ds, seed=3, warn=False)
    cold = prepare_interactions(ds, seed=3, warn=False, cold_items=0.2)
    interacted = ds.interactions["item_id"].nunique()
    assert len(cold.cold_items) == round(0.2 * interacted)
    where = _pairs_of(cold, cold.cold_items)
    assert not where["train"].any()  # no train interaction of a cold item
    # every interaction of a cold item is still evaluated: it moved from train to test
    before = _pairs_of(plain, cold.cold_items)
    assert where["test"].sum() == before["test"].sum() + before["train"].sum()
    assert where["valid"].sum() == before["valid"].sum()
    # warm items keep their interactions where they were
    assert len(cold.train) == len(plain.train) - before["train"].sum()
    # seeded: same seed same items, another seed other items
    again = prepare_interactions(ds, seed=3, warn=False, cold_items=0.2)
    other = prepare_interactions(ds, seed=4, warn=False, cold_items=0.2)
    np.testing.assert_array_equal(cold.cold_items, again.cold_items)
    assert set(cold.cold_items) != set(other.cold_items)
    assert not cold.warm_item_mask()[cold.cold_items].any()


def test_cold_split_on_loader_data():
    ds = load_dataset("sample:tiny")
    cold = prepare_interactions(ds, warn=False, cold_items=0.1)
    assert len(cold.cold_items) > 0
    assert not np.isin(cold.train[:, 1], cold.cold_items).any()
    assert np.isin(cold.test[:, 1], cold.cold_items).any()
    with pytest.raises(ValueError, match="fraction"):
        prepare_interactions(ds, warn=False, cold_items=1.5)


def test_warm_and_cold_metrics_add_up_to_the_overall_metric(data):
    res = train_recommender(dataset=data, model="lightgcn", epochs=3, cold_items=0.2, **FAST)
    test, warm, cold = res.test, res.test_warm, res.test_cold
    assert warm["positives"] + cold["positives"] == test["positives"] == len(res.data.test)
    for k in (10, 20):  # per interaction: hits add up exactly
        combined = (
            warm["positives"] * warm[f"micro_recall@{k}"]
            + cold["positives"] * cold[f"micro_recall@{k}"]
        ) / test["positives"]
        assert combined == pytest.approx(test[f"micro_recall@{k}"], abs=1e-9)
    # a cold item's positives are never warm ones
    warm_pairs, cold_pairs = warm_cold_split(res.data, res.data.test)
    assert np.isin(cold_pairs[:, 1], res.data.cold_items).all()
    assert not np.isin(warm_pairs[:, 1], res.data.cold_items).any()


def test_kg_inductive_ranks_cold_items_from_their_brand(data):
    opts = {**FAST, "epochs": 15, "cold_items": 0.2, "seed": 1}
    lightgcn = train_recommender(dataset=data, model="lightgcn", **opts)
    inductive = train_recommender(dataset=data, model="kg-inductive", **opts)
    assert inductive.test_cold["recall@10"] > 1.5 * lightgcn.test_cold["recall@10"]
    assert inductive.test_warm["recall@20"] > 0.8 * lightgcn.test_warm["recall@20"]
    # a cold item's score follows its brand: higher for the users who buy that brand
    net = inductive.model.eval()
    users, items = net.propagate()
    item = int(inductive.data.cold_items[0])
    brand = data.items.set_index("item_id")["brand"]
    bought = data.interactions.assign(brand=data.interactions["item_id"].map(brand))
    fans = bought.groupby("user_id")["brand"].agg(lambda b: b.value_counts().index[0])
    target = brand[inductive.data.item_ids[item]]
    is_fan = fans.reindex(inductive.data.user_ids).to_numpy() == target
    scores = (users @ items[item]).detach().numpy()
    assert scores[is_fan].mean() > scores[~is_fan].mean() + 0.1


def test_cli_cold_items_reports_warm_and_cold(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(
        ["train", "--dataset", "sample:tiny", "--model", "kg-inductive", "--epochs", "1"]
        + ["--cold-items", "0.1", "--out", str(out), "--no-progress", "--save-top-k", "0"]
        + ["--batch-size", "512", "--dim", "16"]
    )
    assert code == 0
    metrics = json.loads((out / "metrics.json").read_text())
    for block in ("test", "test_warm", "test_cold"):
        assert {"recall@10", "recall@20", "ndcg@20", "hit@20"} <= set(metrics[block])
    assert metrics["config"]["cold_items"] == 0.1
    assert metrics["data"]["cold_items"] > 0
    reopened = load_recommender(out, device="cpu")
    assert reopened.test_cold == metrics["test_cold"]
    np.testing.assert_array_equal(
        reopened.data.cold_items,
        prepare_interactions(load_dataset("sample:tiny"), warn=False, cold_items=0.1).cold_items,
    )


# ----------------------------------------------------------------------------- text tower
def test_item_texts_carry_the_kg_facts(data):
    texts = item_texts(data, ["i0", "i7", "missing"])
    assert texts[0] == ("product 0 of line 0", "brand: brand0")
    assert texts[1][1] == "brand: brand2"
    assert texts[2] == ("", "")
    assert item_texts(data, ["i0"], with_facts=False) == [("product 0 of line 0", "")]


def test_text_tower_trains_scores_cold_items_and_reloads(data, tiny_encoder, tmp_path):
    options = {"encoder": tiny_encoder, "train_layers": 1, "max_length": 24}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        res = train_recommender(
            dataset=data,
            model="text-tower",
            epochs=3,
            cold_items=0.2,
            out_dir=tmp_path / "tt",
            model_options=options,
            **{**FAST, "batch_size": 128},
        )
    assert res.curve[-1]["loss"] < res.curve[0]["loss"]
    net = res.model
    # frozen below the top layer, so CPU runs are cheap
    frozen = [n for n, p in net.encoder.named_parameters() if not p.requires_grad]
    assert any("layer.0." in n for n in frozen) and not any("layer.1." in n for n in frozen)
    users, items = net.propagate()
    cold = torch.as_tensor(res.data.cold_items)
    cold_scores = users @ items[cold].t()
    assert torch.isfinite(cold_scores).all() and cold_scores.std() > 1e-3
    assert res.test_cold["recall@20"] > 0
    # the cached item vectors travel in the safetensors checkpoint
    from safetensors.torch import load_file

    saved = load_file(str(tmp_path / "tt" / "checkpoints" / "best.safetensors"))
    torch.testing.assert_close(saved["item_vectors"], net.item_vectors.cpu())
    reopened = load_recommender(tmp_path / "tt", device="cpu")
    assert bool(reopened.model.cache_valid)
    users_ids = list(res.data.user_ids[:5])
    a, b = res.recommend(users_ids, k=5), reopened.recommend(users_ids, k=5)
    assert a["item_id"].tolist() == b["item_id"].tolist()
    np.testing.assert_allclose(a["score"], b["score"], rtol=1e-5)


def test_text_tower_cache_of_frozen_layers_gives_the_full_forward(data, tiny_encoder):
    from kgwb.train.models import build_model

    inter = prepare_interactions(data, warn=False)
    texts = item_texts(data, inter.item_ids)
    options = {"dim": 16, "item_texts": texts, "encoder": tiny_encoder, "train_layers": 1}
    cached = build_model("text-tower", inter, **options).eval()
    full = build_model("text-tower", inter, **options, cache_frozen=False).eval()
    full.load_state_dict(cached.state_dict())
    assert cached.cache_frozen and not full.cache_frozen
    items = torch.arange(12)
    with torch.no_grad():
        torch.testing.assert_close(cached.encode_items(items), full.encode_items(items))


def test_compare_cold_start_table_and_figure(data):
    from kgwb.train.cold_start import RunSpec, compare_cold_start, warm_cold_figure

    res = compare_cold_start(
        dataset=data,
        cold_items=0.2,
        models=["pop", RunSpec("kg-inductive, no id", "kg-inductive", {"id_residual": False})],
        **{**FAST, "epochs": 2},
    )
    table = res.table
    assert table["run"].tolist() == ["pop", "kg-inductive, no id"]
    assert {"warm recall@20", "cold recall@20", "all recall@20"} <= set(table.columns)
    assert table.loc[0, "cold recall@20"] == 0.0  # popularity never ranks an unseen item
    fig = warm_cold_figure(table)
    assert list(fig.data[0].text) == table["run"].tolist()
    with pytest.raises(ValueError, match="text_from"):
        compare_cold_start(
            dataset=data, models=[RunSpec("fusion", "kgat+text", text_from="tt")], **FAST
        )


def test_fusion_feeds_the_tuned_tower_vectors_to_kgat(data, tiny_encoder):
    from kgwb.train.cold_start import RunSpec, compare_cold_start

    tower = RunSpec("tower", "text-tower", {"encoder": tiny_encoder, "max_length": 16})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        res = compare_cold_start(
            dataset=data,
            cold_items=0.2,
            models=[tower, RunSpec("fusion", "kgat+text", text_from="tower")],
            **{**FAST, "epochs": 1},
        )
    fused = res.results["fusion"]
    assert fused.config["text_features"] == [res.results["tower"].data.n_items, 32]
    torch.testing.assert_close(
        fused.model.text_features.cpu(), res.results["tower"].model.item_vectors.cpu()
    )


def test_cli_text_tower_with_options_and_recommend(tiny_encoder, tmp_path, capsys):
    out = tmp_path / "tt"
    args = ["train", "--dataset", "sample:tiny", "--model", "text-tower", "--epochs", "1"]
    args += ["--option", f"encoder={tiny_encoder}", "--option", "train_layers=1"]
    args += ["--option", "max_length=16", "--cold-items", "0.1", "--batch-size", "256"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        assert main(args + ["--out", str(out), "--no-progress", "--save-top-k", "0"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["config"]["model_options"]["train_layers"] == 1
    assert metrics["test_cold"]["users_evaluated"] > 0
    capsys.readouterr()
    user = str(load_recommender(out, device="cpu").data.user_ids[0])
    assert main(["recommend", "--run", str(out), "--user", user, "--k", "3"]) == 0
    assert user in capsys.readouterr().out
