"""Catalog → KG, the KG model's storage, extracted edges and quality figures."""

from __future__ import annotations

import pandas as pd
import pytest

from kgwb.data.schema import Dataset
from kgwb.errors import DataError
from kgwb.kg.catalog import catalog_graph, normalise_value, relation_for
from kgwb.kg.model import KnowledgeGraph
from kgwb.kg.quality import (
    add_part,
    attribute_coverage,
    extracted_graph_part,
    extraction_scores,
    quality_report,
)


def _dataset() -> Dataset:
    items = pd.DataFrame(
        {
            "item_id": ["i1", "i2", "i3"],
            "title": ["Red Shampoo 250 ml", "Blue Brush", "Hair Dryer"],
            "brand": ["Acme", "Acme", None],
            "category": ["Shampoo", "Brushes", "Dryers"],
            "category_path": [
                "Beauty > Hair > Shampoo",
                "Beauty > Hair > Brushes",
                "Beauty > Tools > Dryers",
            ],
        }
    )
    attrs = pd.DataFrame(
        {
            "item_id": ["i1", "i1", "i2"],
            "attribute": ["Color", "Volume", "Color"],
            "value": ["Red", "250 ml", " BLUE "],
        }
    )
    kg = pd.DataFrame(
        {
            "head": ["e1", "e1", "e2"],
            "relation": ["also_bought", "produced_by", "also_bought"],
            "tail": ["e2", "Acme", "p9"],
        }
    )
    entities = pd.DataFrame(
        {"entity_id": ["e1", "e2", "Acme", "p9"], "type": ["item", "item", "brand", "product"]}
    )
    links = pd.DataFrame({"item_id": ["i1", "i2"], "entity_id": ["e1", "e2"]})
    users = pd.DataFrame({"user_id": ["u1"]})
    inter = pd.DataFrame({"user_id": ["u1", "u1"], "item_id": ["i1", "i3"]})
    return Dataset(
        name="t",
        items=items,
        users=users,
        interactions=inter,
        item_attributes=attrs,
        kg=kg,
        entities=entities,
        item_entities=links,
    )


def _edge_set(kg: KnowledgeGraph) -> set[tuple[str, str, str, str]]:
    return set(kg.edges[["head", "relation", "tail", "source"]].itertuples(index=False, name=None))


def test_catalog_graph_nodes_and_edges():
    kg = catalog_graph(_dataset())
    kg.validate()
    edges = _edge_set(kg)
    assert ("item:i1", "produced_by", "brand:Acme", "catalog") in edges
    assert ("item:i1", "belongs_to", "category:Shampoo", "catalog") in edges
    assert ("category:Shampoo", "subcategory_of", "category:Hair", "catalog") in edges
    assert ("category:Hair", "subcategory_of", "category:Beauty", "catalog") in edges
    assert ("item:i1", "has_color", "value:color=red", "catalog") in edges
    assert ("item:i2", "has_color", "value:color=blue", "catalog") in edges  # normalised
    assert ("item:i1", "also_bought", "item:i2", "dataset") in edges  # entity linked to item
    assert ("item:i2", "also_bought", "product:p9", "dataset") in edges
    # the dataset's produced_by edge duplicates the catalog's: kept once, as catalog
    produced = kg.edges[(kg.edges["head"] == "item:i1") & (kg.edges["relation"] == "produced_by")]
    assert list(produced["source"]) == ["catalog"]
    types = dict(zip(kg.nodes["node_id"], kg.nodes["type"]))
    assert types["product:p9"] == "product" and types["brand:Acme"] == "brand"
    assert not any(t == "user" for t in types.values())


def test_catalog_graph_with_users_adds_interaction_edges():
    kg = catalog_graph(_dataset(), include_users=True)
    inter = kg.edges[kg.edges["source"] == "interaction"]
    assert set(zip(inter["head"], inter["tail"])) == {
        ("user:u1", "item:i1"),
        ("user:u1", "item:i3"),
    }


def test_recbole_style_prefixed_entity_ids_are_not_prefixed_twice():
    ds = _dataset()
    ds.kg = pd.DataFrame({"head": ["item:X"], "relation": ["produced_by"], "tail": ["brand:Other"]})
    ds.entities = pd.DataFrame({"entity_id": ["item:X", "brand:Other"], "type": ["item", "brand"]})
    ds.item_entities = pd.DataFrame({"item_id": ["i3"], "entity_id": ["item:X"]})
    kg = catalog_graph(ds)
    assert ("item:i3", "produced_by", "brand:Other", "dataset") in _edge_set(kg)
    assert "brand:brand:Other" not in set(kg.nodes["node_id"])


def test_save_and_load_roundtrip(tmp_path):
    kg = catalog_graph(_dataset())
    again = KnowledgeGraph.load(kg.save(tmp_path / "kg"))
    pd.testing.assert_frame_equal(kg.nodes, again.nodes)
    pd.testing.assert_frame_equal(kg.edges, again.edges)
    assert again.meta == kg.meta


def test_validate_names_the_bad_edge_row():
    kg = catalog_graph(_dataset())
    bad = pd.concat(
        [
            kg.edges,
            pd.DataFrame(
                {
                    "head": ["item:i1"],
                    "relation": ["x"],
                    "tail": ["nowhere:1"],
                    "source": ["catalog"],
                    "confidence": [1.0],
                }
            ),
        ],
        ignore_index=True,
    )
    with pytest.raises(DataError, match=rf"edge row {len(bad)}.*'nowhere:1' is not a node"):
        KnowledgeGraph(nodes=kg.nodes, edges=bad).validate()


def test_normalisation_helpers():
    assert normalise_value("  Ｒed\tWine ") == "red wine"  # NFKC full-width letter, spaces
    assert relation_for("Shoe type") == "has_shoe_type"
    assert relation_for("Size (US)") == "has_size_us"


def test_extracted_edges_keep_provenance_and_score_against_truth():
    kg = catalog_graph(_dataset())
    spans = pd.DataFrame(
        {
            "item_id": ["i3", "i3", "i2"],
            "field": ["title", "title", "title"],
            "attribute": ["Color", "Type", "Color"],
            "value": ["Black", "Dryer", "Blue"],
            "start": [0, 5, 0],
            "end": [5, 10, 4],
            "confidence": [0.9, 0.6, 0.99],
        }
    )
    nodes, edges = extracted_graph_part(spans, extractor="test@1")
    kg2 = add_part(kg, nodes, edges)
    kg2.validate()
    ex = kg2.edges[kg2.edges["source"] == "extracted"]
    row = ex[ex["item_id"] == "i3"].iloc[0]
    assert (row["field"], row["start"], row["end"], row["text"], row["extractor"]) == (
        "title",
        0,
        5,
        "Black",
        "test@1",
    )
    assert "value:color=blue" in set(ex["tail"])  # merges with the catalog's value node
    truth = pd.DataFrame(
        {
            "item_id": ["i3", "i2", "i1"],
            "attribute": ["Color", "Color", "Color"],
            "value": ["black", "blue", "red"],
        }
    )
    scores = extraction_scores(kg2.edges, truth)
    assert scores["correct"] == 2 and scores["predicted"] == 3 and scores["true"] == 3
    assert scores["precision"] == pytest.approx(2 / 3, abs=1e-4)
    assert scores["recall"] == pytest.approx(2 / 3, abs=1e-4)
    cov = attribute_coverage(kg2, _dataset().items).set_index(["category", "relation"])
    assert cov.loc[("Dryers", "has_color"), "extracted"] == 1.0
    assert cov.loc[("Dryers", "has_color"), "catalog"] == 0.0
    report = quality_report(
        kg2, items=_dataset().items, truth={"attribute_spans": truth}, merged_nodes=1
    )
    assert report["edges_by_source"]["extracted"] == 3
    assert report["extraction"]["correct"] == 2
    assert 0 < report["duplicate_rate"] < 1


def test_attribute_confusion_pairs_overlapping_spans():
    from kgwb.kg.quality import attribute_confusion

    pred = pd.DataFrame(
        {
            "item_id": ["a", "a", "b"],
            "field": ["title"] * 3,
            "attribute": ["color", "material", "size"],
            "start": [0, 10, 0],
            "end": [3, 15, 2],
        }
    )
    true = pd.DataFrame(
        {
            "item_id": ["a", "a", "b"],
            "field": ["title"] * 3,
            "attribute": ["color", "pattern", "volume"],
            "start": [0, 12, 5],
            "end": [3, 18, 9],
        }
    )
    c = attribute_confusion(pred, true)
    assert c.loc["color", "color"] == 1
    assert c.loc["pattern", "material"] == 1  # overlapping span, wrong attribute
    assert c.loc["(none)", "size"] == 1  # predicted where nothing is true
    assert c.loc["volume", "(missed)"] == 1
