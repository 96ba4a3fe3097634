"""The training stages in the one stage shape: RecommenderConfig / KGEConfig in, results that
save and load, built or reused by a RunDir (``run.get_or_build("train", config)``)."""

from __future__ import annotations

import argparse
import json

import pytest
import torch

from kgwb.data import load_dataset
from kgwb.errors import ConfigError, UnknownNameError
from kgwb.rundir import RunDir
from kgwb.train.config import KGEConfig, RecommenderConfig
from kgwb.train.recommend import RecommenderResult


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> RunDir:
    run = RunDir(tmp_path_factory.mktemp("run"))
    load_dataset("sample:tiny").save(run.dataset)
    return run


def test_recommender_config_round_trips_and_names_bad_values():
    cfg = RecommenderConfig(model="kgat", with_text=True, fanouts="5,3", model_options=None)
    assert cfg.name == "kgat+text" and cfg.fanouts == (5, 3) and cfg.model_options == {}
    assert RecommenderConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    with pytest.raises(UnknownNameError, match="lightgcn"):
        RecommenderConfig(model="lightgnc")
    with pytest.raises(UnknownNameError):
        RecommenderConfig(model="text-tower", with_text=True)
    with pytest.raises(ConfigError, match="eval_every"):
        RecommenderConfig(eval_every=0)
    with pytest.raises(ValueError, match="fan-out"):
        RecommenderConfig(sampler="neighbors", fanouts=(5, 3, 2))


def test_cli_flags_come_from_the_recommender_config():
    parser = argparse.ArgumentParser()
    RecommenderConfig.add_arguments(parser, lr=0.01)
    args = parser.parse_args(["--model", "bprmf", "--text-features", "--fanout", "4,2"])
    cfg = RecommenderConfig.from_args(args)
    assert cfg == RecommenderConfig(model="bprmf", with_text=True, fanouts=(4, 2), lr=0.01)


def test_kge_config_takes_any_pykeen_model_with_its_kwargs():
    pytest.importorskip("pykeen")
    from kgwb.train.kge import _model_kwargs, kge_models

    assert {"transe", "rotate", "pairre", "tucker"} <= set(kge_models().names())
    cfg = KGEConfig(model="PairRE", model_kwargs={"p": 1}, dim=8)
    assert _model_kwargs(cfg) == {"embedding_dim": 8, "p": 1}
    with pytest.raises(UnknownNameError, match="pairre"):
        KGEConfig(model="transx")


def test_get_or_build_trains_once_then_reuses_the_saved_run(run):
    config = RecommenderConfig(model="lightgcn", epochs=2, dim=8, device="cpu", save_top_k=5)
    first = run.get_or_build("train", config)
    folder = run.train("lightgcn")
    assert first.out_dir == folder and (folder / "recommendations.parquet").is_file()
    record = json.loads((folder / "metrics.json").read_text())
    assert record["stage_config"] == config.to_dict() and record["config"]["dim"] == 8
    stamp = (folder / "metrics.json").stat().st_mtime_ns
    again = run.get_or_build("train", config)
    assert isinstance(again, RecommenderResult) and again.stage_config == config
    assert (folder / "metrics.json").stat().st_mtime_ns == stamp  # reused, not retrained
    assert again.test == first.test
    users = first.data.user_ids[:3]
    assert again.recommend(users, k=5).equals(first.recommend(users, k=5))
    other = run.get_or_build("train", config.replace(epochs=1))
    assert other.epochs_run == 1 and (folder / "metrics.json").stat().st_mtime_ns != stamp


def test_get_or_build_kge_on_the_runs_triples(run):
    pytest.importorskip("pykeen")
    config = KGEConfig(model="distmult", epochs=1, dim=8, device="cpu", early_stopping=False)
    first = run.get_or_build("kge", config)
    assert (run.kge / "distmult" / "metrics.json").is_file() and first.metrics["epochs"] == 1
    again = run.get_or_build("kge", config)
    assert again.pipeline_result is None and again.metrics == first.metrics
    assert again.stage_config == config
    assert again.entity_embeddings().shape == first.entity_embeddings().shape


def test_a_pykeen_model_beyond_the_tested_four_trains_with_its_kwargs():
    pytest.importorskip("pykeen")
    from kgwb.train.kge import train_kge

    res = train_kge(
        triples="nations",
        model="pairre",
        model_kwargs={"p": 1},
        epochs=1,
        dim=8,
        device="cpu",
        early_stopping=False,
        progress=False,
    )
    assert res.config["model"] == "pairre" and res.config["model_kwargs"] == {"p": 1}
    assert 0.0 <= res.metrics["mrr"] <= 1.0


def test_a_callback_sees_each_epochs_row_and_can_stop_training():
    from kgwb.train.recommend import train_recommender
    from kgwb.train.trainer import Callback

    class StopAtTwo(Callback):
        def __init__(self):
            self.rows = []

        def on_epoch_end(self, trainer):
            self.rows.append(dict(trainer.row))
            trainer.stop = trainer.row["epoch"] >= 2

    seen = StopAtTwo()
    ds = load_dataset("sample:tiny")
    res = train_recommender(
        dataset=ds, model="bprmf", epochs=5, dim=8, device="cpu", progress=False, callbacks=[seen]
    )
    assert res.epochs_run == 2 and [r["epoch"] for r in seen.rows] == [1, 2]
    assert "valid_recall@20" in seen.rows[0] and seen.rows[0]["loss"] == res.curve[0]["loss"]


def test_an_unknown_model_option_names_the_model_and_its_options():
    from kgwb.train.recommend import train_recommender

    ds = load_dataset("sample:tiny")
    with pytest.raises(ConfigError, match="neighbors"):
        train_recommender(dataset=ds, model="kgat", epochs=0, model_options={"neighbours": 4})
