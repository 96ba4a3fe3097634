"""KG exports: each format read back by its own reader (csv, rdflib, networkx, PyG, PyKEEN)."""

from __future__ import annotations

import csv

import pandas as pd
import pytest
from kg_fixture import small_kg as make_small_kg

from kgwb.errors import DataError, UnknownNameError
from kgwb.kg import export as kx
from kgwb.kg.model import KnowledgeGraph

NASTY = "Evil \"Co\", 'Ltd'}) DETACH DELETE n //\nsecond line"


def small_kg() -> KnowledgeGraph:
    return make_small_kg(NASTY)


@pytest.fixture(scope="module")
def kg() -> KnowledgeGraph:
    return small_kg()


def test_neo4j_csvs_parse_back(kg, tmp_path):
    files = kx.to_neo4j(kg, tmp_path)
    assert [f.name for f in files] == ["nodes.csv", "edges.csv", "import.cypher"]
    with (tmp_path / "nodes.csv").open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["id:ID", ":LABEL", "type", "name"]
    assert len(rows) == len(kg.nodes)
    by_id = {r["id:ID"]: r for r in rows}
    assert by_id["brand:evil"]["name"] == NASTY
    assert by_id["item:i2"]["name"] == "Glow Shampoo, 250ml"
    assert by_id["brand:evil"][":LABEL"] == "Node;Brand"
    assert by_id["user:u1"]["name"] == ""  # null: neo4j-admin leaves the property unset

    with (tmp_path / "edges.csv").open(newline="", encoding="utf-8") as f:
        edges = list(csv.DictReader(f))
    assert len(edges) == len(kg.edges)
    assert {":START_ID", ":END_ID", ":TYPE", "confidence:double", "start:long"} <= set(edges[0])
    rouge = next(e for e in edges if e[":START_ID"] == "item:i3" and e["source"] == "extracted")
    assert rouge[":TYPE"] == "COLOR" and rouge["relation"] == "color"
    assert rouge["text"] == 'rouge, "deep"\nred'
    assert (float(rouge["confidence:double"]), int(rouge["start:long"])) == (0.6, 12)

    script = (tmp_path / "import.cypher").read_text()
    assert "CREATE CONSTRAINT kgwb_node_id" in script
    assert "CREATE (n:Node:`Brand`" in script and "[:`HAS_BRAND`" in script
    assert "file:///nodes.csv" in script and "file:///edges.csv" in script
    assert NASTY not in script  # values stay in the CSV, never in the script


def test_cypher_quoting():
    assert kx.cypher_string("it's a \\ test") == "'it\\'s a \\\\ test'"
    assert kx.cypher_identifier("we`ird") == "`we``ird`"
    assert kx.neo4j_label("attr value") == "AttrValue"
    assert kx.neo4j_label("3d") == "T3d"
    assert kx.neo4j_rel_type("has brand/line") == "HAS_BRAND_LINE"


def test_rdf_turtle_round_trip(kg, tmp_path):
    from rdflib import RDF, RDFS, Graph, Literal, Namespace, URIRef

    path = kx.to_rdf(kg, tmp_path / "kg.ttl")
    g = Graph().parse(path, format="turtle")
    node = lambda nid: URIRef(kx.node_iri(nid))  # noqa: E731
    rel = Namespace(f"{kx.DEFAULT_BASE}relation/")
    vocab = Namespace(f"{kx.DEFAULT_BASE}vocab#")

    category = node("category:beauty/hair care")
    assert str(category).endswith("node/category:beauty%2Fhair%20care")
    assert (node("item:i2"), rel.in_category, category) in g
    assert (node("brand:evil"), RDFS.label, Literal(NASTY)) in g
    assert (node("brand:evil"), vocab.nodeId, Literal("brand:evil")) in g
    direct = {(s, p, o) for s, p, o in g if str(p).startswith(str(rel))}
    assert len(direct) == len(kg.triples())

    statements = set(g.subjects(RDF.type, RDF.Statement))
    assert len(statements) == len(kg.edges)
    extracted = {
        float(g.value(st, vocab.confidence))
        for st in statements
        if g.value(st, vocab.source) == Literal("extracted")
    }
    assert extracted == {0.9, 0.6}
    (rouge,) = [
        st
        for st in statements
        if g.value(st, vocab.text) is not None and "rouge" in g.value(st, vocab.text)
    ]
    assert g.value(rouge, RDF.subject) == node("item:i3")
    assert int(g.value(rouge, vocab.start)) == 12

    lean = Graph().parse(kx.to_rdf(kg, tmp_path / "lean.nt", "nt", provenance=False), format="nt")
    assert not set(lean.subjects(RDF.type, RDF.Statement))
    with pytest.raises(UnknownNameError, match="turtle"):
        kx.to_rdf(kg, tmp_path / "x", "yaml")


def test_graphml_round_trip(kg, tmp_path):
    import networkx as nx

    g = nx.read_graphml(kx.to_graphml(kg, tmp_path / "kg.graphml"), force_multigraph=True)
    assert g.number_of_nodes() == len(kg.nodes)
    assert g.number_of_edges() == len(kg.edges)
    assert g.nodes["brand:evil"]["name"] == NASTY
    assert "name" not in g.nodes["user:u1"]
    colors = [d for _, _, d in g.edges("item:i3", data=True) if d["relation"] == "color"]
    assert colors[0]["text"] == 'rouge, "deep"\nred' and colors[0]["confidence"] == 0.6


def test_networkx_k_hop(kg):
    whole = kx.to_networkx(kg)
    assert (whole.number_of_nodes(), whole.number_of_edges()) == (8, 8)
    assert whole.nodes["item:i1"] == {"type": "item", "name": "Acme Red Lipstick"}
    one = kx.to_networkx(kg, ["brand:evil"], hops=1)
    assert set(one) == {"brand:evil", "item:i2"}
    two = kx.to_networkx(kg, "brand:evil", hops=2)
    assert set(two) == {"brand:evil", "item:i2", "category:beauty/hair care"}
    assert two.number_of_edges() == 2
    assert set(kx.to_networkx(kg, ["value:color=red"], hops=0)) == {"value:color=red"}
    with pytest.raises(DataError, match="brand:ghost"):
        kx.to_networkx(kg, ["brand:ghost"])


def test_recbole_files(kg, tmp_path):
    kg_file, link_file = kx.to_recbole(kg, tmp_path, "beauty")
    kg_rows = pd.read_csv(kg_file, sep="\t", dtype=str)
    assert list(kg_rows.columns) == ["head_id:token", "relation_id:token", "tail_id:token"]
    expected = kg.triples(sources=kx.RECBOLE_KG_SOURCES)
    assert len(kg_rows) == len(expected) == 6  # 7 distinct triples minus the interaction
    assert "interacted" not in set(kg_rows["relation_id:token"])
    link = pd.read_csv(link_file, sep="\t", dtype=str)
    assert list(link.columns) == ["item_id:token", "entity_id:token"]
    assert link.values.tolist() == [["i1", "item:i1"], ["i2", "item:i2"], ["i3", "item:i3"]]

    tabbed = KnowledgeGraph(
        nodes=pd.DataFrame({"node_id": ["item:a\tb"], "type": ["item"], "name": ["x"]}),
        edges=kg.edges.iloc[:0],
    )
    with pytest.raises(DataError, match="RecBole token"):
        kx.to_recbole(tabbed, tmp_path / "bad", "bad")


@pytest.mark.slow
def test_pyg_hetero_edge_counts(kg):
    import torch

    data, mappings = kx.to_pyg_hetero(kg)
    assert set(data.node_types) == set(kg.nodes["type"])
    assert data["item"].num_nodes == 3 and list(mappings["item"]) == [
        "item:i1",
        "item:i2",
        "item:i3",
    ]
    types = kg.nodes.set_index("node_id")["type"]
    expected = (
        kg.edges.assign(h=kg.edges["head"].map(types), t=kg.edges["tail"].map(types))
        .groupby(["h", "relation", "t"])
        .size()
    )
    got = {et: data[et].edge_index.shape[1] for et in data.edge_types}
    assert got == {tuple(k): int(v) for k, v in expected.items()}
    color = data["item", "color", "value"]
    assert color.edge_index.dtype == torch.int64
    assert sorted(color.edge_attr.squeeze(1).tolist()) == pytest.approx([0.6, 0.9, 1.0])
    i3 = mappings["item"].get_loc("item:i3")
    assert i3 in color.edge_index[0].tolist()


@pytest.mark.slow
def test_pykeen_triples_factory(kg):
    tf = kx.to_pykeen(kg)
    assert tf.num_triples == len(kg.triples()) == 7
    assert "brand:evil" in tf.entity_to_id and "has_brand" in tf.relation_to_id
    assert kx.to_pykeen(kg, sources=("extracted",)).num_triples == 2


def test_export_dispatcher(kg, tmp_path):
    assert [p.name for p in kx.export(kg, "neo4j", tmp_path / "neo")] == [
        "nodes.csv",
        "edges.csv",
        "import.cypher",
    ]
    assert [p.name for p in kx.export(kg, "recbole", tmp_path / "beauty")] == [
        "beauty.kg",
        "beauty.link",
    ]
    assert kx.export(kg, "rdf", tmp_path / "kg.ttl")[0].stat().st_size > 0
    assert kx.export(kg, "graphml", tmp_path / "kg.graphml")[0].is_file()
    with pytest.raises(UnknownNameError, match="graphml, neo4j, rdf, recbole"):
        kx.export(kg, "csv", tmp_path / "x")
