"""A small hand-built KnowledgeGraph shared by the store and export tests."""

from __future__ import annotations

import pandas as pd

from kgwb.kg.model import KnowledgeGraph


def small_kg(evil_name: str) -> KnowledgeGraph:
    """Items, brands (one named ``evil_name``), a category, a value, a user, extracted edges."""
    nodes = pd.DataFrame(
        [
            ("item:i1", "item", "Acme Red Lipstick"),
            ("item:i2", "item", "Glow Shampoo, 250ml"),
            ("item:i3", "item", "Acme Rouge"),
            ("brand:acme", "brand", "Acme"),
            ("brand:evil", "brand", evil_name),
            ("category:beauty/hair care", "category", "Hair Care"),
            ("value:color=red", "value", "red"),
            ("user:u1", "user", None),
        ],
        columns=["node_id", "type", "name"],
    )
    edges = pd.DataFrame(
        [
            ("item:i1", "has_brand", "brand:acme", "catalog", 1.0),
            ("item:i2", "has_brand", "brand:evil", "catalog", 1.0),
            ("item:i3", "has_brand", "brand:acme", "catalog", 1.0),
            ("item:i2", "in_category", "category:beauty/hair care", "catalog", 1.0),
            ("item:i1", "color", "value:color=red", "catalog", 1.0),
            ("user:u1", "interacted", "item:i1", "interaction", 1.0),
        ],
        columns=["head", "relation", "tail", "source", "confidence"],
    )
    extracted = pd.DataFrame(
        {
            "head": ["item:i1", "item:i3"],
            "relation": ["color", "color"],
            "tail": ["value:color=red", "value:color=red"],
            "source": ["extracted", "extracted"],
            "confidence": [0.9, 0.6],
            "item_id": ["item:i1", "item:i3"],
            "field": ["title", "description"],
            "start": pd.array([5, 12], dtype="Int64"),
            "end": pd.array([8, 30], dtype="Int64"),
            "text": ["Red", 'rouge, "deep"\nred'],
            "extractor": ["bio-tagger@0.1", "bio-tagger@0.1"],
        }
    )
    return KnowledgeGraph(nodes=nodes, edges=pd.concat([edges, extracted], ignore_index=True))
