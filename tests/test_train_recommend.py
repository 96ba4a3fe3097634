"""End-to-end recommender training on small hand-built data: learning, checkpoints, resume,
clear errors and warnings, determinism and the ``kgwb train`` command."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest
import torch  # noqa: E402

from kgwb.cli import main  # noqa: E402
from kgwb.data.schema import Dataset  # noqa: E402
from kgwb.errors import UnknownNameError  # noqa: E402
from kgwb.train.data import (  # noqa: E402
    EmptySplitError,
    SplitWarning,
    leave_one_out,
    prepare_interactions,
)
from kgwb.train.models import build_model, model_names  # noqa: E402
from kgwb.train.recommend import CheckpointError, train_recommender  # noqa: E402

FAST = {"device": "cpu", "batch_size": 256, "lr": 0.01, "progress": False, "dim": 32}


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    # two OpenMP threads on a busy two-core machine are ~10× slower than one
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def clustered(
    n_users: int = 120, n_items: int = 60, n_clusters: int = 5, per_user: int = 10, seed: int = 0
) -> Dataset:
    """Users buy mostly inside their cluster (= the items' brand): learnable, and the brand KG
    says which items belong together.  Splits are random 70/10/20 per interaction."""
    rng = np.random.default_rng(seed)
    item_cluster = np.arange(n_items) % n_clusters
    popularity = 1.0 / np.arange(1, n_items + 1)
    popularity /= popularity.sum()
    rows = []
    for u in range(n_users):
        own = np.flatnonzero(item_cluster == rng.integers(n_clusters))
        chosen = set(rng.choice(own, size=per_user - 2, replace=False).tolist())
        chosen |= set(rng.choice(n_items, size=2, replace=False, p=popularity).tolist())
        rows += [(f"u{u}", f"i{i}", t) for t, i in enumerate(sorted(chosen))]
    inter = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])
    r = rng.random(len(inter))
    inter["split"] = np.where(r < 0.7, "train", np.where(r < 0.8, "valid", "test"))
    items = pd.DataFrame(
        {
            "item_id": [f"i{i}" for i in range(n_items)],
            "title": [f"product {i} of line {c}" for i, c in enumerate(item_cluster)],
            "brand": [f"brand{c}" for c in item_cluster],
        }
    )
    users = pd.DataFrame({"user_id": [f"u{u}" for u in range(n_users)]})
    return Dataset(name="clustered", items=items, users=users, interactions=inter)


@pytest.fixture(scope="module")
def data() -> Dataset:
    return clustered()


@pytest.fixture(scope="module")
def pop_result(data):
    return train_recommender(dataset=data, model="pop", **FAST)


def test_lightgcn_learns_and_beats_popularity(data, pop_result):
    res = train_recommender(dataset=data, model="lightgcn", epochs=12, **FAST)
    losses = [row["loss"] for row in res.curve]
    assert losses[-1] < 0.7 * losses[0]
    assert res.test["recall@20"] > pop_result.test["recall@20"] + 0.15
    assert res.test["users_evaluated"] > 100
    for key in ("recall@10", "ndcg@10", "recall@20", "ndcg@20"):
        assert 0.0 <= res.valid[key] <= 1.0 and 0.0 <= res.test[key] <= 1.0
    assert 1 <= res.best_epoch <= 12


@pytest.mark.parametrize("model", ["bprmf", "kgat"])
def test_other_models_beat_popularity(data, pop_result, model):
    res = train_recommender(dataset=data, model=model, epochs=12, **FAST)
    assert res.test["recall@20"] > pop_result.test["recall@20"] + 0.1
    if model == "kgat":
        assert res.config["kg"]["kg_relations"] == 1  # produced_by (brand) from the catalog
        assert res.config["kg"]["kg_items_linked"] == 60


def test_kgat_options_and_kg_loss(data):
    res = train_recommender(
        dataset=data,
        model="kgat",
        epochs=2,
        model_options={"kg_loss_weight": 0.5, "neighbors": 2},
        **FAST,
    )
    assert res.config["model_options"] == {"kg_loss_weight": 0.5, "neighbors": 2}
    assert all(row["aux_loss"] > 0 for row in res.curve)
    # one gate per layer and relation direction (the clustered KG has one relation: brand)
    assert res.model.kg_gate.shape == (2, 2)
    table = res.model.gate_table()
    assert list(table["relation"]) == ["produced_by", "produced_by⁻¹"]
    assert {"gate_l1", "gate_l2", "item_share"} <= set(table.columns)


def test_kgat_without_gate_keeps_the_fixed_kg_scale(data):
    res = train_recommender(
        dataset=data, model="kgat", epochs=1, model_options={"gate": False}, **FAST
    )
    assert res.model.kg_scale.shape == (2,)
    assert not hasattr(res.model, "kg_gate")


def test_text_features_are_fused(data):
    rng = np.random.default_rng(0)
    feats = rng.normal(size=(60, 8)).astype(np.float32)
    res = train_recommender(dataset=data, model="lightgcn", epochs=2, text_features=feats, **FAST)
    assert res.config["text_features"] == [60, 8]
    assert res.model.text_proj.weight.shape == (32, 8)
    with pytest.raises(ValueError, match="text_features has 5 rows"):
        train_recommender(dataset=data, model="lightgcn", epochs=1, text_features=feats[:5], **FAST)


def test_unknown_model_lists_the_valid_names(data):
    with pytest.raises(UnknownNameError) as err:
        train_recommender(dataset=data, model="lightgnc", **FAST)
    for name in ("pop", "bprmf", "lightgcn", "kgat", "kgat+text"):
        assert name in str(err.value)
    with pytest.raises(UnknownNameError):
        train_recommender(dataset=data, model="pop+text", **FAST)


def test_cli_lists_exactly_the_registered_models(capsys):
    from kgwb.train.registry import RECOMMENDERS, TEXT_SUFFIX

    with pytest.raises(SystemExit):
        main(["train", "--help"])
    listed = capsys.readouterr().out.split("Models:")[1].split(".")[0]
    assert [n.strip() for n in listed.split(",")] == model_names() == RECOMMENDERS.names()
    # a `+text` entry is its base's class, and exists exactly for the classes that take text
    for name in RECOMMENDERS.names():
        if name.endswith(TEXT_SUFFIX):
            continue
        cls = RECOMMENDERS.get(name)
        takes_text = cls.trainable and not getattr(cls, "uses_item_text", False)
        assert (name + TEXT_SUFFIX in RECOMMENDERS) == takes_text, name
        if takes_text:
            assert RECOMMENDERS.get(name + TEXT_SUFFIX) is cls


@pytest.mark.parametrize("model", ["lightgcn", "kgat"])
def test_same_seed_same_numbers_on_cpu(data, model):
    a = train_recommender(dataset=data, model=model, epochs=3, seed=7, **FAST)
    b = train_recommender(dataset=data, model=model, epochs=3, seed=7, **FAST)
    c = train_recommender(dataset=data, model=model, epochs=3, seed=8, **FAST)
    assert a.test == b.test and a.valid == b.valid
    assert [r["loss"] for r in a.curve] == [r["loss"] for r in b.curve]
    assert [r["loss"] for r in a.curve] != [r["loss"] for r in c.curve]
    assert a.seed == 7 and a.to_dict()["config"]["seed"] == 7


def test_checkpoint_save_load_and_resume(data, tmp_path):
    straight = train_recommender(
        dataset=data, model="lightgcn", epochs=4, out_dir=tmp_path / "straight", **FAST
    )
    metrics = json.loads((tmp_path / "straight" / "metrics.json").read_text())
    for split in ("valid", "test"):
        for key in ("recall@10", "ndcg@10", "recall@20", "ndcg@20"):
            assert metrics[split][key] == pytest.approx(getattr(straight, split)[key])
    for key in ("best_epoch", "seconds_per_epoch", "peak_memory_mb", "device", "seed", "model"):
        assert key in metrics
    assert len(metrics["curve"]) == 4 and "valid_recall@20" in metrics["curve"][0]
    assert metrics["config"]["dim"] == 32 and "torch" in metrics["versions"]

    # the best checkpoint reloads into a fresh model and scores identically
    from safetensors.torch import load_file

    fresh = build_model("lightgcn", straight.data, dim=32, layers=2)
    fresh.load_state_dict(load_file(metrics["checkpoint"]))
    users = torch.arange(5)
    with torch.no_grad():
        assert torch.equal(fresh.scorer()(users), straight.model.scorer()(users))

    # 2 epochs, then resume to 4: the same numbers as 4 epochs straight
    interrupted = tmp_path / "resumed"
    train_recommender(dataset=data, model="lightgcn", epochs=2, out_dir=interrupted, **FAST)
    resumed = train_recommender(
        dataset=data, model="lightgcn", epochs=4, out_dir=interrupted, resume=True, **FAST
    )
    assert [r["epoch"] for r in resumed.curve] == [1, 2, 3, 4]
    assert [r["loss"] for r in resumed.curve] == [r["loss"] for r in straight.curve]
    assert resumed.test == straight.test

    with pytest.raises(CheckpointError, match="dim"):
        train_recommender(
            dataset=data,
            model="lightgcn",
            epochs=5,
            out_dir=interrupted,
            resume=True,
            **{**FAST, "dim": 16},
        )
    with pytest.raises(CheckpointError, match="nothing to resume"):
        train_recommender(
            dataset=data, model="lightgcn", epochs=1, out_dir=tmp_path / "new", resume=True, **FAST
        )


@pytest.mark.parametrize("model", ["lightgcn", "kgat+text"])
def test_load_recommender_rebuilds_the_best_model_from_the_run_folder(data, tmp_path, model):
    from kgwb.train import load_recommender

    feats = np.random.default_rng(1).normal(size=(60, 8)).astype(np.float32)
    extra = {"text_features": feats} if model.endswith("+text") else {}
    trained = train_recommender(
        dataset=data, model=model, epochs=3, out_dir=tmp_path / "run", **extra, **FAST
    )
    loaded = load_recommender(tmp_path / "run", device="cpu")  # no dataset needed
    assert loaded.model_name == model and loaded.best_epoch == trained.best_epoch
    assert loaded.test == pytest.approx(trained.test) and loaded.valid == pytest.approx(
        trained.valid
    )
    users = ["u0", "u7", "u42"]
    pd.testing.assert_frame_equal(loaded.recommend(users, k=10), trained.recommend(users, k=10))
    with torch.no_grad():
        index = torch.arange(10)
        assert torch.allclose(loaded.model.scorer()(index), trained.model.scorer()(index))


def test_load_recommender_names_what_is_missing(data, tmp_path):
    from kgwb.train import load_recommender

    with pytest.raises(CheckpointError, match="metrics.json"):
        load_recommender(tmp_path / "nothing-here")
    train_recommender(dataset=data, model="bprmf", epochs=1, out_dir=tmp_path / "run", **FAST)
    (tmp_path / "run" / "checkpoints" / "inputs.safetensors").unlink()
    with pytest.raises(CheckpointError, match="inputs.safetensors"):
        load_recommender(tmp_path / "run")


def test_recommend_returns_top_k_without_train_items(data):
    res = train_recommender(dataset=data, model="bprmf", epochs=2, **FAST)
    recs = res.recommend(["u0", "u3"], k=5)
    assert list(recs.columns) == ["user_id", "rank", "item_id", "score"]
    assert (
        len(recs) == 10
        and recs.groupby("user_id")["rank"].apply(list).tolist() == [[1, 2, 3, 4, 5]] * 2
    )
    train = data.interactions[data.interactions["split"] == "train"]
    bought = set(zip(train["user_id"], train["item_id"]))
    assert not any((u, i) in bought for u, i in zip(recs["user_id"], recs["item_id"]))
    assert (recs.groupby("user_id")["score"].diff().dropna() <= 0).all()
    with pytest.raises(Exception, match="unknown user_id"):
        res.recommend(["nobody"])


def test_empty_train_split_is_a_clear_error(data):
    ds = clustered(n_users=10)
    ds.interactions["split"] = "test"
    with pytest.raises(EmptySplitError, match="empty train split") as err:
        train_recommender(dataset=ds, model="lightgcn", epochs=1, **FAST)
    assert "expected at least one interaction labelled 'train'" in str(err.value)


def test_cold_users_and_unseen_items_are_counted_with_warnings():
    ds = clustered(n_users=30)
    extra = pd.DataFrame(
        {
            "user_id": ["cold1", "cold2", "u0"],
            "item_id": ["i1", "i2", "new_item"],
            "timestamp": [0, 0, 0],
            "split": ["test", "valid", "test"],
        }
    )
    ds.interactions = pd.concat([ds.interactions, extra], ignore_index=True)
    ds.interactions = ds.interactions[
        ~((ds.interactions["item_id"] == "i59") & (ds.interactions["split"] == "train"))
    ]
    with pytest.warns(SplitWarning) as caught:
        data = prepare_interactions(ds)
    text = " ".join(str(w.message) for w in caught)
    assert "1 test user(s) have no train interactions" in text
    assert "1 valid user(s) have no train interactions" in text
    s = data.stats
    assert s["test_users_without_train_items"] == 1 and s["valid_users_without_train_items"] == 1
    # new_item is not in the items table: it gets an index and stays in test
    assert "new_item" in data.item_ids
    assert s["test_items_unseen_in_train"] >= 1
    new = data.item_index(["new_item"])[0]
    assert (data.test[:, 1] == new).any()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SplitWarning)
        res = train_recommender(dataset=ds, model="pop", **FAST)
    assert res.test["users_without_train_items"] == 1
    cold = data.user_index(["cold1"])[0]
    assert cold not in data.train[:, 0]


def test_leave_one_out_without_a_split_column():
    inter = pd.DataFrame(
        {
            "user_id": ["a", "a", "a", "a", "b", "b", "c"],
            "item_id": ["1", "2", "3", "4", "1", "2", "3"],
            "timestamp": [40, 10, 30, 20, 5, 1, 9],
        }
    )
    labels = leave_one_out(inter, seed=0)
    # a: by time 2,4,3,1 -> 1 is test, 3 valid; b: 2 then 1 -> 1 test; c: one item -> train
    assert labels.tolist() == ["test", "train", "valid", "train", "test", "train", "train"]
    items = pd.DataFrame({"item_id": ["1", "2", "3", "4"]})
    users = pd.DataFrame({"user_id": ["a", "b", "c"]})
    data = prepare_interactions(Dataset(name="loo", items=items, users=users, interactions=inter))
    assert data.split_source.startswith("leave-one-out")
    assert len(data.train) == 4 and len(data.valid) == 1 and len(data.test) == 2


def test_sample_dataset_trains_end_to_end():
    from kgwb.data import load_dataset

    # sample:tiny has 200 test interactions: too few to separate models; small has 2,000
    ds = load_dataset("sample:small")
    pop = train_recommender(dataset=ds, model="pop", **FAST)
    res = train_recommender(
        dataset=ds,
        model="lightgcn",
        epochs=8,
        eval_every=8,
        **{**FAST, "batch_size": 2048, "lr": 0.02},
    )
    losses = [row["loss"] for row in res.curve]
    assert losses[-1] < 0.6 * losses[0]
    assert res.test["users_evaluated"] == 2000
    assert res.test["recall@20"] > pop.test["recall@20"] + 0.02


def test_cli_trains_and_writes_metrics(data, tmp_path, capsys):
    saved = data.save(tmp_path / "ds")
    code = main(
        [
            "train",
            "--dataset",
            str(saved),
            "--model",
            "bprmf",
            "--epochs",
            "2",
            "--dim",
            "16",
            "--device",
            "cpu",
            "--out",
            str(tmp_path / "run"),
            "--no-progress",
        ]
    )
    assert code == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["model"] == "bprmf" and printed["device"] == "cpu"
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["config"]["dim"] == 16 and len(metrics["curve"]) == 2
    assert (tmp_path / "run" / "checkpoints" / "best.safetensors").is_file()
    saved_top = pd.read_parquet(tmp_path / "run" / "recommendations.parquet")

    # without the saved table, `kgwb recommend` reloads the model and ranks the same items
    (tmp_path / "run" / "recommendations.parquet").unlink()
    assert main(["recommend", "--run", str(tmp_path / "run"), "--user", "u3", "--k", "5"]) == 0
    served = json.loads(capsys.readouterr().out)["recommendations"]
    expected = saved_top[saved_top["user_id"] == "u3"].sort_values("rank").head(5)
    assert [r["item_id"] for r in served] == expected["item_id"].tolist()
    assert [r["score"] for r in served] == pytest.approx(expected["score"].tolist(), rel=1e-5)


def test_cli_help_lists_models(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = capsys.readouterr().out
    for name in ("pop", "bprmf", "lightgcn", "kgat", "lightgcn+text"):
        assert name in out
