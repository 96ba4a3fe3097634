"""Explained recommendations: the right paths, ranked by the documented score, with text."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from kgwb.errors import DataError
from kgwb.kg.model import KnowledgeGraph
from kgwb.viz.explain import LENGTH_DECAY, PathExplainer, explain_paths, paths_graph, paths_html


def _kg() -> KnowledgeGraph:
    """History A (made by Acme) and B; recommended R (Acme, Shampoo, red).  Acme makes only A and
    R; Shampoo holds B, R and 20 other items; every item is in the root Beauty; B has colour red
    (extracted, 0.6) like R; A was also bought with X, and X with R."""
    nodes = [
        ("item:A", "item", "Argan Oil"),
        ("item:B", "item", "Basic Shampoo"),
        ("item:R", "item", "Rose Shampoo"),
        ("item:X", "item", "Xtra Conditioner"),
        ("brand:acme", "brand", "Acme"),
        ("category:Shampoo", "category", "Shampoo"),
        ("category:Beauty", "category", "Beauty"),
        ("value:color=red", "value", "red"),
    ]
    edges = [
        ("item:A", "produced_by", "brand:acme", "catalog", 1.0),
        ("item:R", "produced_by", "brand:acme", "catalog", 1.0),
        ("item:B", "belongs_to", "category:Shampoo", "catalog", 1.0),
        ("item:R", "belongs_to", "category:Shampoo", "catalog", 1.0),
        ("item:A", "belongs_to", "category:Beauty", "catalog", 1.0),
        ("item:X", "belongs_to", "category:Beauty", "catalog", 1.0),
        ("category:Shampoo", "subcategory_of", "category:Beauty", "catalog", 1.0),
        ("item:B", "has_color", "value:color=red", "extracted", 0.6),
        ("item:R", "has_color", "value:color=red", "catalog", 1.0),
        ("item:A", "also_bought", "item:X", "dataset", 1.0),
        ("item:X", "also_bought", "item:R", "dataset", 1.0),
    ]
    for i in range(20):
        nodes.append((f"item:S{i}", "item", f"Shampoo {i}"))
        edges.append((f"item:S{i}", "belongs_to", "category:Shampoo", "catalog", 1.0))
        edges.append((f"item:S{i}", "belongs_to", "category:Beauty", "catalog", 1.0))
    return KnowledgeGraph(
        nodes=pd.DataFrame(nodes, columns=["node_id", "type", "name"]),
        edges=pd.DataFrame(edges, columns=["head", "relation", "tail", "source", "confidence"]),
    )


def test_best_path_is_the_niche_brand():
    kg = _kg()
    paths = explain_paths(kg, ["A", "B"], "R", max_hops=3, k=10)
    best = paths[0]
    assert best.nodes == ["item:A", "brand:acme", "item:R"]
    assert best.text == "You bought Argan Oil; Argan Oil and Rose Shampoo are both made by Acme."
    assert best.history_item == "A" and best.recommended_item == "R"
    # the score is the documented formula
    n = len(kg.nodes)
    spec = math.log((n + 1) / (2 + 1)) / math.log(n + 1)
    assert best.score == pytest.approx(LENGTH_DECAY * spec)
    scores = [p.score for p in paths]
    assert scores == sorted(scores, reverse=True)
    by_nodes = {tuple(p.nodes): p for p in paths}
    # the red colour (2 edges) beats the crowded Shampoo category (22 edges) ...
    red = by_nodes[("item:B", "value:color=red", "item:R")]
    shampoo = by_nodes[("item:B", "category:Shampoo", "item:R")]
    assert red.score > shampoo.score
    assert red.score == pytest.approx(LENGTH_DECAY * 0.6 * math.log((n + 1) / 3) / math.log(n + 1))
    assert "both have color red" in red.text
    # ... and a 3-hop also-bought chain is found, with both edges in its text
    chain = by_nodes[("item:A", "item:X", "item:R")]
    assert chain.length == 2 and chain.text == (
        "You bought Argan Oil; Argan Oil is often bought with Xtra Conditioner,"
        " and Xtra Conditioner is often bought with Rose Shampoo."
    )
    three = [p for p in paths if p.length == 3]
    assert three and all(p.nodes[0] in ("item:A", "item:B") for p in three)
    assert all(p.nodes[-1] == "item:R" for p in paths)
    # no path passes through another history item
    assert not any(set(p.nodes[1:-1]) & {"item:A", "item:B"} for p in paths)


def test_hops_k_and_ids():
    kg = _kg()
    explainer = PathExplainer(kg)
    assert all(
        p.length <= 2 for p in explainer.explain(["item:A", "B"], "item:R", max_hops=2, k=50)
    )
    assert len(explain_paths(explainer, ["A", "B"], "R", k=2)) == 2
    one_hop = explain_paths(kg, ["X"], "R", max_hops=1)
    assert [p.nodes for p in one_hop] == [["item:X", "item:R"]]
    assert (
        one_hop[0].text
        == "You bought Xtra Conditioner; Xtra Conditioner is often bought with Rose Shampoo."
    )
    assert explain_paths(kg, ["R"], "R") == []  # the item itself is no explanation
    with pytest.raises(DataError, match="'nope' is not in the knowledge graph"):
        explain_paths(kg, ["nope"], "R")


def test_hubs_are_not_walked_through():
    kg = _kg()
    # with Beauty (23 edges) too big to walk through, A-Beauty-Shampoo-R is not found
    small = PathExplainer(kg, max_expand_degree=10).explain(["A"], "R", max_hops=3, k=50)
    full = PathExplainer(kg).explain(["A"], "R", max_hops=3, k=50)
    via_beauty = ("item:A", "category:Beauty", "category:Shampoo", "item:R")
    assert via_beauty in {tuple(p.nodes) for p in full}
    assert via_beauty not in {tuple(p.nodes) for p in small}
    assert small[0].nodes == full[0].nodes == ["item:A", "brand:acme", "item:R"]


def test_union_graph_and_html():
    kg = _kg()
    paths = explain_paths(kg, ["A", "B"], "R", k=3)
    g = paths_graph(kg, paths)
    assert set(g.nodes) == {n for p in paths for n in p.nodes}
    assert g.nodes["item:R"]["role"] == "recommended"
    assert g.nodes["item:A"]["role"] == "history"
    assert g.has_edge("item:A", "brand:acme")
    page = paths_html(kg, paths)
    assert "Argan Oil" in page and "vis.Network" in page
    d = paths[0].to_dict()
    assert d["nodes"] == paths[0].nodes and d["text"].startswith("You bought")


def test_cli_recommend_with_explanations(tmp_path, capsys):
    import json
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    from test_viz_graph import run_cli

    kg = _kg()
    kg.save(tmp_path / "kg")
    run = tmp_path / "run"
    run.mkdir()
    pd.DataFrame(
        {
            "user_id": ["u1", "u1", "u1", "u2"],
            "item_id": ["R", "X", "S3", "R"],
            "score": [3.0, 2.0, 1.0, 9.0],
        }
    ).to_parquet(run / "recommendations.parquet")
    argv = ["recommend", "--run", str(run), "--user", "u1", "--k", "2", "--explain"]
    assert run_cli([*argv, "--kg", str(tmp_path / "kg"), "--history", "A", "B"]) == 0
    out = json.loads(capsys.readouterr().out)
    recs = out["recommendations"]
    assert [r["item_id"] for r in recs] == ["R", "X"] and [r["rank"] for r in recs] == [1, 2]
    assert recs[0]["explanations"][0]["nodes"] == ["item:A", "brand:acme", "item:R"]
    assert recs[0]["title"] == "Rose Shampoo"
    assert recs[1]["explanations"][0]["nodes"] == ["item:A", "item:X"]
    # without --explain: just the ranking; a run without recommendations is a clear error
    assert run_cli(["recommend", "--run", str(run), "--user", "u2"]) == 0
    assert json.loads(capsys.readouterr().out)["recommendations"][0]["item_id"] == "R"
    from kgwb.errors import KgwbError

    (tmp_path / "empty").mkdir()
    with pytest.raises(KgwbError, match="recommendations.parquet"):
        run_cli(["recommend", "--run", str(tmp_path / "empty"), "--user", "u1"])


def test_explain_recommendations_table_has_one_row_per_recommendation():
    import pandas as pd

    from kgwb.data.sample import generate
    from kgwb.kg.catalog import catalog_graph
    from kgwb.viz.explain import explain_recommendations

    ds = generate("tiny", seed=0)
    kg = catalog_graph(ds)
    train = ds.split("train")
    user = train["user_id"].iloc[0]
    history = {user: train.loc[train["user_id"] == user, "item_id"].tolist()}
    # recommend an item of the same brand as a history item: a path must exist
    brand = ds.items.set_index("item_id").loc[history[user][0], "brand"]
    same = ds.items[(ds.items["brand"] == brand) & ~ds.items["item_id"].isin(history[user])]
    target = same["item_id"].iloc[0] if len(same) else ds.items["item_id"].iloc[-1]
    recs = pd.DataFrame({"user_id": [user], "rank": [1], "item_id": [target], "score": [0.5]})
    table, paths = explain_recommendations(kg, recs, history)
    assert list(table["item_id"]) == [target]
    assert table["paths"].iloc[0] == len(paths[(user, target)]) > 0
    assert table["why"].iloc[0] == paths[(user, target)][0].text
