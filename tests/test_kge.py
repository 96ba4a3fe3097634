"""KG embeddings through PyKEEN (kgwb.train.kge): models, inputs, seeds, saving, errors, CLI.

Runs on PyKEEN's bundled Nations graph (14 entities, 55 relations, 1,992 triples), which loads
offline, and on small hand-built graphs.  Every run is a few epochs on CPU.
"""

from __future__ import annotations

import json
from collections import defaultdict

import numpy as np
import pandas as pd
import pytest

from kgwb.errors import DataError, KgwbError, UnknownNameError  # noqa: E402
from kgwb.kg.model import KnowledgeGraph  # noqa: E402
from kgwb.train.config import KGEConfigError  # noqa: E402
from kgwb.train.kge import MODELS, reverse_in_train, train_kge  # noqa: E402

RANK_METRICS = ("mrr", "hits@1", "hits@3", "hits@10")
QUICK = {"dim": 8, "epochs": 2, "batch_size": 256, "device": "cpu", "progress": False}


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """Tiny models on a shared 2-core machine: intra-op threads only wait on each other."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def nations_runs():
    """Two-epoch run of every model on Nations, seed 0 (shared by several tests)."""
    return {name: train_kge(triples="nations", model=name, seed=0, **QUICK) for name in MODELS}


def _small_kg() -> KnowledgeGraph:
    """30 items with brands, categories and a ring of also_bought edges (90 triples)."""
    nodes, edges = [], []
    for b in range(4):
        nodes.append((f"brand:b{b}", "brand", f"Brand {b}"))
    for c in range(3):
        nodes.append((f"category:c{c}", "category", f"Category {c}"))
    for i in range(30):
        item = f"item:i{i}"
        nodes.append((item, "item", f"Item {i}"))
        edges.append((item, "produced_by", f"brand:b{i % 4}", "catalog", 1.0))
        edges.append((item, "belongs_to", f"category:c{i % 3}", "catalog", 1.0))
        edges.append((item, "also_bought", f"item:i{(i + 1) % 30}", "interaction", 1.0))
    return KnowledgeGraph(
        nodes=pd.DataFrame(nodes, columns=["node_id", "type", "name"]),
        edges=pd.DataFrame(edges, columns=["head", "relation", "tail", "source", "confidence"]),
    )


def _random_filtered_mrr(training, validation, testing) -> float:
    """Expected MRR on ``testing`` of a model that ranks candidates uniformly at random.

    Filtered setting: for (h, r, t) the tail candidates are t plus every entity e with (h, r, e)
    in no split, so t's rank is uniform on 1..k and E[1/rank] = H_k / k; heads likewise.
    """
    n = training.num_entities
    known = np.concatenate(
        [training.mapped_triples, validation.mapped_triples, testing.mapped_triples]
    )
    tails, heads = defaultdict(set), defaultdict(set)
    for h, r, t in known.tolist():
        tails[h, r].add(t)
        heads[r, t].add(h)
    expectations = []
    for h, r, t in testing.mapped_triples.tolist():
        for k in (n - len(tails[h, r]) + 1, n - len(heads[r, t]) + 1):
            expectations.append(sum(1.0 / i for i in range(1, k + 1)) / k)
    return float(np.mean(expectations))


@pytest.mark.parametrize("model", sorted(MODELS))
def test_every_model_trains_on_nations_and_reports_rank_metrics(nations_runs, model):
    metrics = nations_runs[model].metrics
    for key in RANK_METRICS:
        assert 0.0 <= metrics[key] <= 1.0, key
    assert metrics["hits@1"] <= metrics["hits@3"] <= metrics["hits@10"]
    assert metrics["mrr"] >= metrics["hits@1"]  # reciprocal rank is 1 on every hit@1
    assert metrics["model"] == model
    assert metrics["epochs"] == 2
    assert metrics["seed"] == 0
    assert metrics["device"] == "cpu"
    assert metrics["train_seconds"] > 0
    # Nations' published split: 14 entities, 55 relations, 1592 + 199 + 201 triples
    assert (metrics["num_entities"], metrics["num_relations"]) == (14, 55)
    assert metrics["num_triples"] == 1992


@pytest.mark.parametrize(
    "model,columns_per_dim", [("transe", 1), ("distmult", 1), ("complex", 2), ("rotate", 2)]
)
def test_entity_embeddings_have_one_row_per_entity(nations_runs, model, columns_per_dim):
    result = nations_runs[model]
    emb = result.entity_embeddings()
    assert emb.shape == (14, QUICK["dim"] * columns_per_dim)
    assert list(emb.columns) == [f"dim_{i}" for i in range(emb.shape[1])]
    assert set(emb.index) == set(result.training.entity_to_id)
    assert "usa" in emb.index and emb.index.is_unique
    assert np.isfinite(emb.to_numpy()).all()


def test_transe_beats_random_ranking_on_nations():
    from pykeen.datasets import Nations

    ds = Nations()
    random_mrr = _random_filtered_mrr(ds.training, ds.validation, ds.testing)
    # filtering leaves ~10 candidates per query on this 14-entity graph, hence the high floor
    assert 0.3 < random_mrr < 0.5
    result = train_kge(
        triples="nations",
        model="transe",
        dim=32,
        lr=0.05,
        epochs=30,
        batch_size=128,
        negatives=4,
        seed=0,
        device="cpu",
        early_stopping=False,
        progress=False,
    )
    # the random MRR averages ~400 queries (standard error ~0.013): 0.05 is ~4 standard errors
    assert result.metrics["mrr"] > random_mrr + 0.05
    assert result.metrics["epochs"] == 30


def test_same_seed_gives_same_metrics_and_embeddings_on_cpu(nations_runs):
    first = nations_runs["transe"]
    again = train_kge(triples="nations", model="transe", seed=0, **QUICK)
    for key in (*RANK_METRICS, "mean_rank"):
        assert again.metrics[key] == first.metrics[key], key
    pd.testing.assert_frame_equal(again.entity_embeddings(), first.entity_embeddings())
    other = train_kge(triples="nations", model="transe", seed=1, **QUICK)
    assert not np.allclose(other.entity_embeddings(), first.entity_embeddings())


def test_trains_from_a_hand_built_knowledge_graph_and_the_same_triples_as_a_dataframe(tmp_path):
    kg = _small_kg()
    from_kg = train_kge(triples=kg, model="distmult", seed=0, **QUICK)
    m = from_kg.metrics
    assert m["num_entities"] == 37 and m["num_relations"] == 3 and m["num_triples"] == 90
    assert m["num_train"] + m["num_valid"] + m["num_test"] == 90 and m["num_test"] > 0
    for key in RANK_METRICS:
        assert 0.0 <= m[key] <= 1.0
    emb = from_kg.entity_embeddings()
    assert emb.shape == (37, QUICK["dim"])
    assert set(emb.index) == set(kg.nodes["node_id"])

    frame = kg.triples()[["head", "relation", "tail"]]
    from_frame = train_kge(triples=frame, model="distmult", seed=0, **QUICK)
    assert from_frame.metrics["mrr"] == m["mrr"]

    # only the catalog edges: the also_bought ring is gone
    catalog = train_kge(triples=kg, model="distmult", seed=0, sources=("catalog",), **QUICK)
    assert catalog.metrics["num_relations"] == 2 and catalog.metrics["num_triples"] == 60

    out = from_kg.save(tmp_path / "run")
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["mrr"] == m["mrr"] and saved["hits@10"] == m["hits@10"]
    config = json.loads((out / "config.json").read_text())
    assert config["seed"] == 0 and config["config"]["model"] == "distmult"
    assert "torch" in config["versions"] and "pykeen" in config["versions"]
    pd.testing.assert_frame_equal(pd.read_parquet(out / "entity_embeddings.parquet"), emb)
    assert (out / "pykeen" / "trained_model.pkl").is_file()


def test_reverse_in_train_marks_mirrored_pairs_under_any_relation():
    from pykeen.triples import TriplesFactory

    labels = np.array(
        [["a", "r", "b"], ["b", "s", "c"], ["c", "r", "a"], ["d", "r", "a"], ["e", "s", "e"]]
    )
    train = TriplesFactory.from_labeled_triples(labels)

    rows = np.array(
        [["b", "r", "a"], ["c", "r", "b"], ["a", "r", "c"], ["b", "r", "d"], ["a", "r", "b"],
         ["a", "s", "d"]]
    )  # fmt: skip
    test = train.clone_and_exchange_triples(train.map_triples(rows))  # (map_triples sorts rows)
    flags = reverse_in_train(train, test).tolist()
    mirrored = {tuple(row) for row, flag in zip(test.triples.tolist(), flags) if flag}
    # (b, r, a) mirrors (a, r, b); (c, r, b) mirrors (b, s, c) across relations; (a, r, c)
    # mirrors (c, r, a); (a, s, d) mirrors (d, r, a); (b, r, d) and (a, r, b) itself do not
    assert mirrored == {("b", "r", "a"), ("c", "r", "b"), ("a", "r", "c"), ("a", "s", "d")}
    assert len(flags) == 6


def test_counts_and_optionally_drops_test_triples_whose_reverse_is_in_train():
    # a symmetric relation stored both ways: about half of its test triples mirror a train one
    rows = []
    for i in range(40):
        rows.append((f"n{i}", "near", f"n{(i + 1) % 40}"))
        rows.append((f"n{(i + 1) % 40}", "near", f"n{i}"))
        rows.append((f"n{i}", "kind", f"k{i % 3}"))
    frame = pd.DataFrame(rows, columns=["head", "relation", "tail"])
    kept = train_kge(triples=frame, model="transe", seed=0, **QUICK).metrics
    assert kept["test_before_drop"] is None
    assert 0 < kept["test_reverse_in_train"] < kept["num_test"]

    dropped = train_kge(
        triples=frame, model="transe", seed=0, drop_reverse_leaks=True, **QUICK
    ).metrics
    assert dropped["test_before_drop"] == kept["num_test"]
    assert dropped["test_reverse_in_train"] == kept["test_reverse_in_train"]
    assert dropped["num_test"] == kept["num_test"] - kept["test_reverse_in_train"]
    assert dropped["num_train"] == kept["num_train"]


def test_reads_a_triples_file_a_saved_kg_folder_and_writes_out_dir(tmp_path):
    kg = _small_kg()
    tsv = tmp_path / "triples.tsv"
    tsv.write_text(
        "head\trelation\ttail\n# a comment\n"
        + "".join(f"{h}\t{r}\t{t}\n" for h, r, t in kg.triples().itertuples(index=False))
    )
    from_file = train_kge(triples=tsv, model="transe", seed=0, **QUICK)
    from_folder = train_kge(
        triples=kg.save(tmp_path / "kg"), model="transe", seed=0, out_dir=tmp_path / "out", **QUICK
    )
    assert from_file.metrics["num_triples"] == from_folder.metrics["num_triples"] == 90
    assert from_file.metrics["mrr"] == from_folder.metrics["mrr"]
    assert json.loads((tmp_path / "out" / "metrics.json").read_text())["num_entities"] == 37


def test_unknown_model_name_lists_the_valid_ones():
    with pytest.raises(UnknownNameError) as err:
        train_kge(triples="nations", model="transx")
    for name in MODELS:
        assert name in str(err.value)


def test_unknown_device_missing_gpu_and_bad_settings_are_reported():
    import torch

    with pytest.raises(KgwbError, match="validation=0.5, test=0.5"):
        train_kge(triples="nations", validation=0.5, test=0.5)
    with pytest.raises(KgwbError, match="epochs must be at least 1"):
        train_kge(triples="nations", epochs=0)

    with pytest.raises(UnknownNameError, match="auto, cpu, cuda"):
        train_kge(triples="nations", device="tpu")
    if not torch.cuda.is_available():
        with pytest.raises(KgwbError, match="no CUDA"):
            train_kge(triples="nations", device="cuda")


def test_bad_triples_file_names_file_and_line(tmp_path):
    bad = tmp_path / "bad.tsv"
    bad.write_text("a\tr\tb\nb\tr\tc\nc\tr\n")
    with pytest.raises(DataError) as err:
        train_kge(triples=bad, model="transe", **QUICK)
    assert f"{bad}:3" in str(err.value)
    assert "found 2 field(s)" in str(err.value)


def test_missing_source_is_neither_a_file_nor_a_bundled_dataset(tmp_path):
    with pytest.raises(DataError, match="nations, umls, kinships"):
        train_kge(triples=tmp_path / "nope.tsv")


def test_cli_writes_metrics_json(tmp_path, capsys, monkeypatch):
    from kgwb.cli import main

    monkeypatch.setenv("TQDM_DISABLE", "1")
    kg_dir = _small_kg().save(tmp_path / "kg")
    out = tmp_path / "kge"
    code = main(
        ["kge", "--triples", str(kg_dir), "--model", "rotate", "--epochs", "1", "--dim", "8",
         "--device", "cpu", "--seed", "2", "--out", str(out)]
    )  # fmt: skip
    assert code == 0
    printed = json.loads(capsys.readouterr().out)
    saved = json.loads((out / "metrics.json").read_text())
    assert saved == printed
    assert saved["model"] == "rotate" and saved["seed"] == 2 and saved["epochs"] == 1
    for key in RANK_METRICS:
        assert 0.0 <= saved[key] <= 1.0

    code = main(["kge", "--triples", str(kg_dir), "--model", "nope", "--out", str(out)])
    assert code == 2
    assert "pass --overwrite" in capsys.readouterr().err  # the run is kept
    code = main(["kge", "--triples", str(kg_dir), "--model", "nope", "--out", str(out) + "2"])
    assert code == 2
    assert "transe" in capsys.readouterr().err


def test_a_kg_build_output_folder_reads_like_its_kg_subfolder(tmp_path):
    from kgwb.train.kge import load_triples

    kg = _small_kg()
    kg.save(tmp_path / "build" / "kg")  # the layout `kgwb kg build --out build` writes
    frame, _, where = load_triples(tmp_path / "build")
    direct, _, _ = load_triples(tmp_path / "build" / "kg")
    assert len(frame) == len(direct) == 90 and where == str(tmp_path / "build" / "kg")


def test_max_eval_triples_evaluates_a_seeded_sample_and_keeps_the_rest_filtered():
    rows = [(f"n{i}", "near", f"n{(i * 7 + 3) % 60}") for i in range(60)]
    rows += [(f"n{i}", "kind", f"k{i % 4}") for i in range(60)]
    frame = pd.DataFrame(rows, columns=["head", "relation", "tail"])
    full = train_kge(triples=frame, model="transe", seed=0, **QUICK).metrics
    assert full["num_test"] > 5 and "eval_capped_at" not in full
    capped = train_kge(triples=frame, model="transe", seed=0, max_eval_triples=5, **QUICK)
    again = train_kge(triples=frame, model="transe", seed=0, max_eval_triples=5, **QUICK)
    assert capped.metrics["num_test"] == 5 and capped.metrics["eval_capped_at"] == 5
    assert capped.metrics["num_train"] == full["num_train"]  # training is untouched
    assert capped.config["max_eval_triples"] == 5
    assert capped.metrics["mrr"] == again.metrics["mrr"]  # the sample is seeded
    with pytest.raises(KGEConfigError, match="max_eval_triples"):
        train_kge(triples=frame, model="transe", max_eval_triples=0, **QUICK)
