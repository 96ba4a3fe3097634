"""The embedded graph store: build, query, parameterised helpers, reopen, overwrite, safety."""

from __future__ import annotations

import pandas as pd
import pytest
from kg_fixture import small_kg as make_small_kg

from kgwb.errors import DataError
from kgwb.kg.model import KnowledgeGraph
from kgwb.kg.store import (
    GraphStore,
    QueryError,
    StoreError,
    default_store_path,
    is_store,
    query_parameters,
)

INJECTION = "Evil \"Co\" 'Ltd'}) DETACH DELETE n //\nMATCH (m) DETACH DELETE m; //"


def small_kg() -> KnowledgeGraph:
    return make_small_kg(INJECTION)


@pytest.fixture(scope="module")
def kg() -> KnowledgeGraph:
    return small_kg()


@pytest.fixture
def store(kg, tmp_path):
    with GraphStore.build(kg, tmp_path / "store") as s:
        yield s


def test_build_loads_every_node_and_edge(store, kg):
    assert store.count_nodes() == 8
    assert store.count_edges() == 8
    assert store.count_nodes("item") == 3
    assert store.count_edges("color") == 3
    counts = store.relation_counts()
    expected = kg.edge_types()
    pd.testing.assert_frame_equal(
        counts.astype({"edges": "int64"}),
        expected.astype({"relation": object, "source": object, "edges": "int64"}),
        check_dtype=False,
    )
    assert store.meta["nodes"] == 8 and store.meta["edges"] == 8


def test_query_returns_rows(store):
    df = store.query(
        "MATCH (i:Node)-[e:Edge {relation: 'has_brand'}]->(b:Node) WHERE b.id = $brand"
        " RETURN i.id AS item ORDER BY item",
        {"brand": "brand:acme"},
    )
    assert df["item"].tolist() == ["item:i1", "item:i3"]


def test_malicious_name_is_stored_as_text_and_deletes_nothing(store):
    before = store.count_nodes(), store.count_edges()
    assert store.node("brand:evil")["name"] == INJECTION
    # The same text as a parameter value: matched as a string, never executed.
    df = store.query("MATCH (n:Node) WHERE n.name = $name RETURN n.id AS id", {"name": INJECTION})
    assert df["id"].tolist() == ["brand:evil"]
    assert store.neighbors(INJECTION).empty
    assert store.items_with(INJECTION, "x'}) DETACH DELETE n //").empty
    assert store.find_nodes("DETACH DELETE")["node_id"].tolist() == ["brand:evil"]
    assert store.edges(head="'}) MATCH (m) DETACH DELETE m //").empty
    assert (store.count_nodes(), store.count_edges()) == before == (8, 8)


def test_neighbors(store):
    out = store.neighbors("item:i1")
    assert len(out) == 3
    assert out["confidence"].is_monotonic_decreasing
    colors = store.neighbors("item:i1", "color")
    assert sorted(colors["source"]) == ["catalog", "extracted"]
    extracted = colors[colors["source"] == "extracted"].iloc[0]
    assert (extracted["span_start"], extracted["span_end"], extracted["text"]) == (5, 8, "Red")
    assert colors["span_start"].dtype == "Int64"
    incoming = store.neighbors("value:color=red", direction="in", min_confidence=0.7)
    assert sorted(incoming["node_id"]) == ["item:i1", "item:i1"]
    assert set(incoming["direction"]) == {"in"}
    both = store.neighbors("item:i1", direction="both")
    assert sorted(both["direction"]) == ["in"] + ["out"] * 3
    assert len(store.neighbors("item:i1", limit=2)) == 2
    with pytest.raises(ValueError, match="direction"):
        store.neighbors("item:i1", direction="sideways")


def test_items_with(store):
    red = store.items_with("color", "value:color=red")
    assert red["item_id"].tolist() == ["item:i1", "item:i1", "item:i3"]
    assert red["confidence"].tolist() == [1.0, 0.9, 0.6]
    only_extracted = store.items_with("color", "value:color=red", sources=["extracted"])
    assert only_extracted["extractor"].tolist() == ["bio-tagger@0.1"] * 2
    confident = store.items_with("color", "value:color=red", min_confidence=0.8, limit=1)
    assert confident["item_id"].tolist() == ["item:i1"]


def test_edges_and_node_lookups(store):
    rows = store.edges(tail="value:color=red", relation="color")
    assert len(rows) == 3
    prov = rows[rows["head"] == "item:i3"].iloc[0]
    assert prov["text"] == 'rouge, "deep"\nred' and prov["field"] == "description"
    assert store.node("user:u1") == {"node_id": "user:u1", "type": "user", "name": None}
    assert store.node("item:nope") is None
    assert store.scalar("MATCH (n:Node) WHERE n.type = $t RETURN count(n)", {"t": "brand"}) == 2


def test_engine_errors_name_the_query(store):
    with pytest.raises(QueryError) as syntax:
        store.query("MATC (n) RETURN n")
    assert "MATC (n) RETURN n" in str(syntax.value)
    with pytest.raises(QueryError, match="Product") as unknown:
        store.query("MATCH (p:Product) RETURN p.id")
    assert unknown.value.query == "MATCH (p:Product) RETURN p.id"


def test_missing_parameter_is_an_error_not_an_empty_result(store):
    # Without any parameters the engine would bind $type to NULL and quietly return no rows.
    query = "MATCH (n:Node) WHERE n.type = $type AND n.name <> $name RETURN n.id"
    with pytest.raises(QueryError, match=r"missing query parameter\(s\): \$type, \$name") as err:
        store.query(query)
    assert err.value.query == query
    with pytest.raises(QueryError, match=r"\$name"):
        store.query(query, {"type": "brand"})
    assert len(store.query(query, {"type": "brand", "name": ""})) == 2
    # A "$" inside a literal, a quoted name or a comment is not a parameter.
    assert store.query("MATCH (n:Node) WHERE n.name = 'costs $5' RETURN n.id /* $x */").empty


def test_query_parameters_skips_literals_and_comments():
    cypher = (
        "MATCH (n) WHERE n.a = $a AND n.b = 'it''s $no' AND n.c = \"$no\" "
        "AND n.`$no` = $b1 // $no\nRETURN $a, $0"
    )
    assert query_parameters(cypher) == ["a", "b1", "0"]


def test_reopen_read_only(kg, tmp_path):
    path = default_store_path(tmp_path / "kg")
    GraphStore.build(kg, path).close()
    assert is_store(path)
    with GraphStore.open(path) as store:
        assert store.read_only
        assert store.count_edges() == len(kg.edges)
        assert store.items_with("has_brand", "brand:acme")["item_id"].tolist() == [
            "item:i1",
            "item:i3",
        ]
        with pytest.raises(QueryError, match="read-only"):
            store.query("MATCH (n:Node) DETACH DELETE n")
    assert store.closed
    with pytest.raises(StoreError, match="closed"):
        store.query("MATCH (n) RETURN n")
    with GraphStore.open(path, read_only=False) as store:
        store.query("MATCH (n:Node) WHERE n.id = $id DETACH DELETE n", {"id": "user:u1"})
        assert store.count_nodes() == 7


def test_overwrite_protection(kg, tmp_path):
    path = tmp_path / "store"
    GraphStore.build(kg, path).close()
    with pytest.raises(StoreError, match="overwrite=True"):
        GraphStore.build(kg, path)
    smaller = KnowledgeGraph(nodes=kg.nodes.iloc[:4], edges=kg.edges.iloc[:0])
    with GraphStore.build(smaller, path, overwrite=True) as store:
        assert (store.count_nodes(), store.count_edges()) == (4, 0)
    assert [p.name for p in tmp_path.iterdir()] == ["store"]  # no leftover build folder

    not_a_store = tmp_path / "notes"
    not_a_store.mkdir()
    (not_a_store / "keep.txt").write_text("mine")
    with pytest.raises(StoreError, match="not a kgwb graph store"):
        GraphStore.build(kg, not_a_store, overwrite=True)
    assert (not_a_store / "keep.txt").read_text() == "mine"
    with pytest.raises(StoreError, match="not a kgwb graph store"):
        GraphStore.open(not_a_store)
    with pytest.raises(StoreError, match="no graph store"):
        GraphStore.open(tmp_path / "missing")


def test_invalid_graph_is_reported_before_loading(kg, tmp_path):
    dangling = pd.concat(
        [
            kg.edges,
            pd.DataFrame(
                [("item:i1", "has_brand", "brand:ghost", "catalog", 1.0)],
                columns=["head", "relation", "tail", "source", "confidence"],
            ),
        ],
        ignore_index=True,
    )
    bad = KnowledgeGraph(nodes=kg.nodes, edges=dangling)
    with pytest.raises(DataError, match="brand:ghost"):
        GraphStore.build(bad, tmp_path / "store")
    assert not (tmp_path / "store").exists()
