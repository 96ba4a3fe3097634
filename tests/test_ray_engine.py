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
