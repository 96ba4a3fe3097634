"""Stage 2 entry point: build the product KG from a dataset (catalog + text extraction)."""

from __future__ import annotations

from kgwb.kg.catalog import catalog_graph

__all__ = ["catalog_graph"]
