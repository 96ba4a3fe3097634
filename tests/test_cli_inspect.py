"""`kgwb search` and `kgwb recommend` as a user meets them: filters that match nothing or name no
relation say so, and recommendations carry titles and the run's own history."""

from __future__ import annotations

import json
import re

import pytest

from kgwb.cli import main
from kgwb.data.sample import generate


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture(scope="module")
def tiny_kg_dir(tmp_path_factory):
    from kgwb.kg.catalog import catalog_graph
    from kgwb.kg.store import GraphStore

    folder = tmp_path_factory.mktemp("kgbuild")
    kg = catalog_graph(generate("tiny"))
    kg.save(folder / "kg")
    GraphStore.build(kg, folder / "kg" / "store").close()
    return folder


def test_search_filter_with_an_unknown_key_is_an_error(capsys, tiny_kg_dir):
    code, out, err = _run(capsys, "search", str(tiny_kg_dir), "earbuds", "--filter", "flavour=mint")
    assert code != 0 and not out
    assert re.search(r"unknown key\(s\) 'flavour'.*keys: brand, category", err), err


def test_search_filter_that_matches_nothing_says_so(capsys, tiny_kg_dir):
    code, out, err = _run(capsys, "search", str(tiny_kg_dir), "earbuds", "--filter", "brand=Acme")
    assert code == 0 and json.loads(out) == []
    assert "no item matches brand='Acme'" in err
    assert "values in this KG include:" in err


def test_recommend_uses_the_runs_history_and_names_items(tmp_path, capsys, tiny_kg_dir):
    run = tmp_path / "run"
    code, out, _ = _run(
        capsys, "train", "--dataset", "sample:tiny", "--model", "bprmf", "--epochs", "2",
        "--no-progress", "--out", str(run),
    )  # fmt: skip
    assert code == 0
    # without --explain: ids and titles
    code, out, _ = _run(capsys, "recommend", "--run", str(run), "--user", "U000001", "--k", "3")
    recs = json.loads(out)["recommendations"]
    titles = generate("tiny").items.set_index("item_id")["title"]
    assert [r["title"] for r in recs] == [titles[r["item_id"]] for r in recs]
    # --explain with a KG that has no user nodes: the history comes from the run itself
    code, out, _ = _run(
        capsys, "recommend", "--run", str(run), "--user", "U000001", "--k", "3", "--explain",
        "--kg", str(tiny_kg_dir),
    )  # fmt: skip
    answer = json.loads(out)
    train = generate("tiny").split("train")
    bought = set(train.loc[train["user_id"] == "U000001", "item_id"])
    assert answer["history"] and {h.removeprefix("item:") for h in answer["history"]} <= bought
    assert all("title" in r for r in answer["recommendations"])
