"""Semantic product search: exact top-k, save/load, real MiniLM queries, KG filters via the store."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from kgwb.errors import KgwbError
from kgwb.search import SearchIndex, allowed_items, filter_relation


def _random_index(n: int = 2000, dim: int = 32, seed: int = 0) -> SearchIndex:
    rng = np.random.default_rng(seed)
    v = rng.standard_normal((n, dim)).astype(np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    ids = [f"I{i:05d}" for i in range(n)]
    return SearchIndex(item_ids=ids, titles=[f"title {i}" for i in ids], vectors=v)


def test_top_k_matches_a_full_sort():
    index = _random_index()
    q = index.vectors[17] + 0.1 * index.vectors[3]
    q /= np.linalg.norm(q)
    got = index.search_vector(q, k=10)
    expected = np.argsort(-(index.vectors @ q), kind="stable")[:10]
    assert got["item_id"].tolist() == [index.item_ids[i] for i in expected]
    assert got["item_id"].iloc[0] == "I00017"
    assert got["score"].is_monotonic_decreasing
    # restricted to some rows, only those come back, still in score order
    rows = np.arange(0, 2000, 7)
    sub = index.search_vector(q, k=5, rows=rows)
    allowed = set(index.item_ids[rows])
    assert set(sub["item_id"]) <= allowed and len(sub) == 5
    best = rows[np.argsort(-(index.vectors[rows] @ q), kind="stable")[:5]]
    assert sub["item_id"].tolist() == [index.item_ids[i] for i in best]
    # k larger than the candidates, and no candidates at all
    assert len(index.search_vector(q, k=50, rows=rows[:3])) == 3
    assert index.search_vector(q, k=5, rows=rows[:0]).empty


def test_save_and_load_round_trip(tmp_path):
    index = _random_index(n=50)
    index.save(tmp_path / "idx")
    back = SearchIndex.load(tmp_path / "idx")
    assert back.item_ids.tolist() == index.item_ids.tolist()
    assert back.titles.tolist() == index.titles.tolist()
    np.testing.assert_array_equal(back.vectors, index.vectors)
    with pytest.raises(KgwbError, match="not a saved search index"):
        SearchIndex.load(tmp_path)


def test_filter_keys():
    assert filter_relation("brand") == "produced_by"
    assert filter_relation("category") == "belongs_to"
    assert filter_relation("has_color") == "has_color"
    assert filter_relation("Color") == "has_color"


@pytest.fixture(scope="module")
def tiny_store(tmp_path_factory):
    from kgwb.data.sample import generate
    from kgwb.kg.catalog import catalog_graph
    from kgwb.kg.catalog import normalise_value as norm
    from kgwb.kg.store import GraphStore

    ds = generate("tiny")
    kg = catalog_graph(ds)
    store = GraphStore.build(kg, tmp_path_factory.mktemp("kg") / "store")
    yield ds, kg, store, norm
    store.close()


def test_filters_come_from_the_graph(tiny_store):
    ds, kg, store, norm = tiny_store
    items = ds.items.set_index("item_id")
    brand = items["brand"].iloc[0]
    got = allowed_items(store, {"brand": brand.upper()})
    brand_edges = kg.edges[kg.edges["relation"] == "produced_by"]
    brand_names = kg.nodes.set_index("node_id")["name"]
    expected = {
        h.removeprefix("item:")
        for h, t in zip(brand_edges["head"], brand_edges["tail"])
        if norm(brand_names[t]) == norm(brand)
    }
    assert got == expected and len(got) >= (items["brand"] == brand).sum() > 0
    # a top-level category includes its subcategories' items
    top = allowed_items(store, {"category": "Electronics"})
    assert top == set(items.index[items["category_path"].str.startswith("Electronics >")])
    leaf = allowed_items(store, {"category": "earbuds"})
    assert leaf == set(items.index[items["category"] == "Earbuds"]) and leaf < top
    # several filters intersect; a list of values is any of them
    colours = allowed_items(store, {"has_color": ["Black", "white"]})
    both = allowed_items(store, {"has_color": ["Black", "white"], "category": "Electronics"})
    assert both == colours & top
    # a value that is text, not Cypher
    assert allowed_items(store, {"brand": "x' OR 1=1 //"}) == set()


@pytest.fixture(scope="module")
def tiny_index(tiny_store):
    ds = tiny_store[0]
    return SearchIndex.build(ds.items, text_columns=("title",))


def test_semantic_search_finds_relevant_items(tiny_index, tiny_store):
    ds, _kg, store, _ = tiny_store
    category = ds.items.set_index("item_id")["category"]
    res = tiny_index.search("wireless earbuds for running", k=5)
    assert list(res.columns) == ["item_id", "title", "score"] and len(res) == 5
    assert category[res["item_id"].iloc[0]] == "Earbuds", res
    assert res["score"].is_monotonic_decreasing

    # filters restrict the ranking to the allowed items
    filtered = tiny_index.search(
        "wireless earbuds for running", k=10, filters={"category": "Bedding"}, store=store
    )
    bedding = allowed_items(store, {"category": "Bedding"})
    assert 0 < len(filtered) <= 10 and set(filtered["item_id"]) <= bedding
    with pytest.raises(KgwbError, match="store="):
        tiny_index.search("earbuds", filters={"brand": "x"})


def test_store_given_as_a_path(tiny_index, tiny_store):
    _ds, _kg, store, _ = tiny_store
    res = tiny_index.search("pillow", k=3, filters={"category": "Pillows"}, store=store.path)
    assert len(res) == 3
    assert set(res["item_id"]) <= allowed_items(store, {"category": "Pillows"})
    assert isinstance(res, pd.DataFrame)


def test_cli_search_builds_and_caches_the_index(tmp_path, capsys, tiny_store, monkeypatch):
    import json
    import sys
    from pathlib import Path

    from kgwb.kg.store import GraphStore

    sys.path.insert(0, str(Path(__file__).parent))
    from test_viz_graph import run_cli

    from kgwb.viz.cli import default_index_dir

    monkeypatch.setenv("KGWB_CACHE", str(tmp_path / "cache"))
    _ds, kg, _store, _ = tiny_store
    build = tmp_path / "build"
    kg.save(build / "kg")
    GraphStore.build(kg, build / "kg" / "store").close()
    before = sorted(p.relative_to(build) for p in build.rglob("*"))
    for p in build.rglob("*"):  # a KG someone else owns: search must only read it
        p.chmod(p.stat().st_mode & ~0o222)
    argv = ["search", str(build), "bluetooth earbuds", "--k", "3"]
    try:
        assert run_cli([*argv, "--filter", "category=Audio"]) == 0
    finally:
        for p in build.rglob("*"):
            p.chmod(p.stat().st_mode | 0o200)
    first = json.loads(capsys.readouterr().out)
    index = default_index_dir(build)
    assert index.parent.parent == tmp_path / "cache"
    assert len(first) == 3 and (index / "vectors.npy").is_file()
    assert sorted(p.relative_to(build) for p in build.rglob("*")) == before  # nothing written
    audio = allowed_items(_store, {"category": "Audio"})
    assert {r["item_id"] for r in first} <= audio
    # second run reads the cache and gives the same answer
    mtime = (index / "vectors.npy").stat().st_mtime
    assert run_cli([*argv, "--filter", "category=Audio"]) == 0
    assert json.loads(capsys.readouterr().out) == first
    assert (index / "vectors.npy").stat().st_mtime == mtime
    # --index puts it where the user says
    assert run_cli([*argv, "--index", str(tmp_path / "mine")]) == 0
    assert len(json.loads(capsys.readouterr().out)) == 3
    assert (tmp_path / "mine" / "vectors.npy").is_file()
    with pytest.raises(KgwbError, match="expected KEY=VALUE"):
        run_cli([*argv, "--filter", "brand"])
