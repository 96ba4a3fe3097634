"""``--engine ray``: Ray Data inference gives the in-process output; without Ray, a clear error."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

from kgwb.cli import main


def test_without_ray_the_command_says_how_to_install_it(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    titles = tmp_path / "titles.jsonl"
    titles.write_text('{"input": "Acme red shoe"}\n')
    argv = ["extract", "apply", "--model", str(tmp_path / "no-model"), "--input", str(titles)]
    code = main([*argv, "--out", str(tmp_path / "out.jsonl"), "--engine", "ray"])
    assert code == 2
    assert "pip install 'kgwb[scale]'" in capsys.readouterr().err
    from kgwb.text.embed import embed_texts

    with pytest.raises(Exception, match=r"kgwb\[scale\]"):
        embed_texts(["a"], engine="ray")


@pytest.fixture(scope="module")
def ray_session():
    ray = pytest.importorskip("ray")
    pytest.importorskip("ray.data")
    from kgwb.text.ray_engine import init_ray

    init_ray()
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def tiny_extractor(tmp_path_factory):
    import pandas as pd
    import torch

    from kgwb.text.extract import examples_from_records, train_extractor
    from tests.test_extract import _tiny_records

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("extractor")
    train = examples_from_records(pd.DataFrame(_tiny_records()))
    train_extractor(train=train, out_dir=out, epochs=2, batch_size=8, seed=0, max_length=32)
    torch.set_num_threads(threads)
    return out


def test_ray_extract_apply_and_embedding_match_the_in_process_output(
    ray_session, tiny_extractor, tmp_path, capsys
):
    from tests.test_extract import _tiny_records

    titles = tmp_path / "titles.jsonl"
    seen = []
    with titles.open("w") as f:
        for r in _tiny_records():
            if r["text"] not in seen:
                seen.append(r["text"])
                f.write(json.dumps({"input": r["text"], "category": r["category"]}) + "\n")
        f.write(json.dumps({"input": "", "category": "Shoes"}) + "\n")  # no spans, kept
    base = ["extract", "apply", "--model", str(tiny_extractor), "--input", str(titles)]
    base += ["--batch-size", "4", "--dtype", "float32"]
    assert main([*base, "--out", str(tmp_path / "local.jsonl")]) == 0
    ray_args = ["--engine", "ray", "--workers", "2"]
    assert main([*base, "--out", str(tmp_path / "ray.jsonl"), *ray_args]) == 0
    summary = json.loads(capsys.readouterr().out.strip().split("\n}\n")[-1] or "{}")
    local = (tmp_path / "local.jsonl").read_text().splitlines()
    assert (tmp_path / "ray.jsonl").read_text().splitlines() == local
    assert len(local) == len(seen) + 1
    assert any(json.loads(line)["spans"] for line in local)
    assert summary.get("engine", "ray") == "ray"

    from kgwb.text.embed import embed_texts

    texts = seen[:9] + [seen[0], ""]  # a duplicate and an empty text
    in_process = embed_texts(texts, batch_size=4)
    on_ray = embed_texts(texts, batch_size=4, engine="ray", workers=2)
    np.testing.assert_array_equal(on_ray, in_process)


def test_search_index_builds_on_ray_with_the_in_process_vectors(ray_session, tmp_path, capsys):
    from kgwb.data.sample import generate
    from kgwb.kg.catalog import catalog_graph
    from kgwb.search import SearchIndex

    items = generate("tiny").items.head(40)
    local = SearchIndex.build(items, text_columns=("title",), batch_size=16)
    on_ray = SearchIndex.build(
        items, text_columns=("title",), batch_size=16, engine="ray", workers=2
    )
    np.testing.assert_array_equal(on_ray.vectors, local.vectors)
    assert on_ray.meta["engine"] == "ray" and list(on_ray.item_ids) == list(local.item_ids)

    # `kgwb search --engine ray` builds the same index as the default
    from tests.test_viz_graph import run_cli

    kg_dir = tmp_path / "build"
    catalog_graph(generate("tiny")).save(kg_dir / "kg")
    answers = []
    for name, extra in (("local", []), ("ray", ["--engine", "ray", "--workers", "2"])):
        argv = ["search", str(kg_dir), "wireless earbuds", "--k", "5"]
        assert run_cli([*argv, "--index", str(tmp_path / name), *extra]) == 0
        answers.append(json.loads(capsys.readouterr().out))
    assert answers[0] == answers[1] and len(answers[0]) == 5
    built = SearchIndex.load(tmp_path / "ray")
    assert built.meta["engine"] == "ray"


def test_search_index_on_ray_without_ray_says_how_to_install_it(monkeypatch):
    import pandas as pd

    from kgwb.search import SearchIndex

    monkeypatch.setitem(sys.modules, "ray", None)
    items = pd.DataFrame({"item_id": ["a"], "title": ["Acme red shoe"]})
    with pytest.raises(Exception, match=r"kgwb\[scale\]"):
        SearchIndex.build(items, text_columns=("title",), engine="ray")
