"""Stage 2 — the knowledge graph: model, construction, entity resolution, store, exports."""
