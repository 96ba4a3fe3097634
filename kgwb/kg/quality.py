"""KG statistics and quality: counts, attribute coverage, duplicate rate, extraction accuracy.

``extracted_graph_part`` turns extractor spans into ``extracted`` edges with provenance;
``quality_report`` summarises a graph (and scores it against ground truth when there is some).
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from kgwb.errors import ConfigError
from kgwb.kg.catalog import normalise_series, relation_for
from kgwb.kg.model import KnowledgeGraph, normalise_edges

SPAN_COLUMNS = ("item_id", "field", "attribute", "value", "start", "end", "confidence")


def extracted_graph_part(
    spans: pd.DataFrame, *, extractor: str
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Nodes and ``extracted`` edges for extractor output.

    ``spans`` has one row per extracted value: item_id, field, attribute, value, start, end,
    confidence.  The value is normalised into the node key (``value:color=red``); the edge keeps
    the exact surface text and span as provenance.
    """
    missing = [c for c in SPAN_COLUMNS if c not in spans.columns]
    if missing:
        raise ConfigError(f"spans lack column(s) {missing}; expected {list(SPAN_COLUMNS)}")
    s = spans.dropna(subset=["value"])
    norm_val = normalise_series(s["value"])
    keep = norm_val != ""
    s, norm_val = s[keep], norm_val[keep]
    norm_attr = normalise_series(s["attribute"])
    value_nodes = ("value:" + norm_attr + "=" + norm_val).astype("string")
    rel = (
        s["attribute"].astype("string").map({a: relation_for(a) for a in pd.unique(s["attribute"])})
    )
    nodes = pd.DataFrame(
        {"node_id": value_nodes, "type": "value", "name": s["value"].astype("string")}
    ).drop_duplicates("node_id")
    edges = pd.DataFrame(
        {
            "head": ("item:" + s["item_id"].astype("string")).to_numpy(),
            "relation": rel.to_numpy(),
            "tail": value_nodes.to_numpy(),
            "source": "extracted",
            "confidence": s["confidence"].astype(float).clip(0, 1).to_numpy(),
            "item_id": s["item_id"].astype("string").to_numpy(),
            "field": s["field"].astype("string").to_numpy(),
            "start": s["start"].astype("Int64").to_numpy(),
            "end": s["end"].astype("Int64").to_numpy(),
            "text": s["value"].astype("string").to_numpy(),
            "extractor": extractor,
        }
    )
    return nodes, normalise_edges(edges)


def add_part(kg: KnowledgeGraph, nodes: pd.DataFrame, edges: pd.DataFrame) -> KnowledgeGraph:
    """A new graph with extra nodes (existing ids win) and edges appended."""
    all_nodes = pd.concat([kg.nodes, nodes], ignore_index=True).drop_duplicates("node_id")
    all_edges = pd.concat([kg.edges, normalise_edges(edges)], ignore_index=True)
    return KnowledgeGraph(nodes=all_nodes, edges=all_edges, meta=dict(kg.meta))


def attribute_coverage(kg: KnowledgeGraph, items: pd.DataFrame) -> pd.DataFrame:
    """Per category and attribute relation: share of the category's items with such an edge,
    split by edge source (catalog / extracted / either)."""
    columns = ["category", "relation", "items", "catalog", "extracted", "any"]
    if "category" not in items.columns:
        return pd.DataFrame(columns=columns)
    e = kg.edges[
        kg.edges["relation"].str.startswith("has_") & kg.edges["head"].str.startswith("item:")
    ]
    e = e.assign(item_id=e["head"].str.slice(5))
    cat = items[["item_id", "category"]].dropna().astype({"item_id": "string"})
    per_cat = cat.groupby("category").size().rename("items")
    e = e.merge(cat, on="item_id", how="inner")
    rows = []
    for (c, r), g in e.groupby(["category", "relation"], observed=True):
        n = per_cat.get(c, 0)
        by_src = g.groupby("source")["item_id"].nunique()
        rows.append(
            {
                "category": c,
                "relation": r,
                "items": int(n),
                "catalog": round(by_src.get("catalog", 0) / n, 4) if n else 0.0,
                "extracted": round(by_src.get("extracted", 0) / n, 4) if n else 0.0,
                "any": round(g["item_id"].nunique() / n, 4) if n else 0.0,
            }
        )
    if not rows:  # no attribute edges (a catalog of brands and categories only) or no categories
        return pd.DataFrame(columns=columns)
    return pd.DataFrame(rows).sort_values(["category", "relation"]).reset_index(drop=True)


def extraction_scores(edges: pd.DataFrame, truth_spans: pd.DataFrame) -> dict[str, Any]:
    """Precision / recall of extracted (item, attribute, normalised value) against ground truth.

    A prediction is correct when the item has that attribute with that normalised value in the
    truth table; per-attribute figures are included.
    """
    pred = edges[edges["source"] == "extracted"]
    p = pd.DataFrame(
        {
            "item_id": pred["item_id"].astype("string"),
            "relation": pred["relation"].astype("string"),
            "value": normalise_series(pred["text"]),
        }
    ).drop_duplicates()
    t = pd.DataFrame(
        {
            "item_id": truth_spans["item_id"].astype("string"),
            "relation": truth_spans["attribute"].astype("string").map(relation_for),
            "value": normalise_series(truth_spans["value"]),
        }
    ).drop_duplicates()
    hit = p.merge(t, how="inner", on=["item_id", "relation", "value"])

    def prf(n_hit: int, n_pred: int, n_true: int) -> dict[str, float]:
        prec = n_hit / n_pred if n_pred else 0.0
        rec = n_hit / n_true if n_true else 0.0
        f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
        return {
            "precision": round(prec, 4),
            "recall": round(rec, 4),
            "f1": round(f1, 4),
            "predicted": n_pred,
            "true": n_true,
            "correct": n_hit,
        }

    per = []
    for rel in sorted(set(t["relation"]) | set(p["relation"])):
        per.append(
            {
                "relation": rel,
                **prf(
                    int((hit["relation"] == rel).sum()),
                    int((p["relation"] == rel).sum()),
                    int((t["relation"] == rel).sum()),
                ),
            }
        )
    return {**prf(len(hit), len(p), len(t)), "unit": "fraction", "per_relation": per}


def quality_report(
    kg: KnowledgeGraph,
    *,
    items: pd.DataFrame | None = None,
    truth: dict[str, pd.DataFrame] | None = None,
    merged_nodes: int | None = None,
) -> dict[str, Any]:
    """Counts per node and edge type, coverage, duplicate rate and — with truth — accuracy."""
    nodes_by_type = {str(k): int(v) for k, v in kg.node_types().items()}
    et = kg.edge_types()
    report: dict[str, Any] = {
        "nodes": len(kg.nodes),
        "edges": len(kg.edges),
        "nodes_by_type": nodes_by_type,
        "edges_by_relation_source": [
            {"relation": r, "source": s, "edges": int(n)} for r, s, n in et.itertuples(index=False)
        ],
        "edges_by_source": {str(k): int(v) for k, v in kg.edges["source"].value_counts().items()},
    }
    if merged_nodes is not None:
        resolvable = (
            sum(v for k, v in nodes_by_type.items() if k in ("brand", "value")) + merged_nodes
        )
        report["duplicate_rate"] = round(merged_nodes / resolvable, 4) if resolvable else 0.0
    if items is not None:
        cov = attribute_coverage(kg, items)
        report["attribute_coverage_mean"] = {
            src: round(float(cov[src].mean()), 4) if len(cov) else 0.0
            for src in ("catalog", "extracted", "any")
        }
    if truth and "attribute_spans" in truth:
        report["extraction"] = extraction_scores(kg.edges, truth["attribute_spans"])
    return report


def attribute_confusion(spans: pd.DataFrame, truth_spans: pd.DataFrame) -> pd.DataFrame:
    """Which attribute the extractor gave to text that the truth labels as which attribute.

    Predicted and true spans of the same item and field are paired when their character ranges
    overlap; unpaired predictions count under true attribute ``(none)`` and unpaired true spans
    under predicted ``(missed)``.  Returns a true × predicted count table.
    """
    keys = ["item_id", "field"]
    p = (
        spans[keys + ["attribute", "start", "end"]]
        .reset_index(drop=True)
        .assign(pid=lambda d: d.index)
    )
    t = (
        truth_spans[keys + ["attribute", "start", "end"]]
        .reset_index(drop=True)
        .assign(tid=lambda d: d.index)
    )
    p = p.astype({"item_id": "string", "field": "string"})
    t = t.astype({"item_id": "string", "field": "string"})
    pairs = p.merge(t, on=keys, suffixes=("_pred", "_true"))
    overlap = (pairs["start_pred"] < pairs["end_true"]) & (pairs["start_true"] < pairs["end_pred"])
    pairs = pairs[overlap]
    rows = pd.concat(
        [
            pairs[["attribute_true", "attribute_pred"]],
            pd.DataFrame(
                {
                    "attribute_true": "(none)",
                    "attribute_pred": p.loc[~p["pid"].isin(pairs["pid"]), "attribute"],
                }
            ),
            pd.DataFrame(
                {
                    "attribute_true": t.loc[~t["tid"].isin(pairs["tid"]), "attribute"],
                    "attribute_pred": "(missed)",
                }
            ),
        ],
        ignore_index=True,
    )
    return pd.crosstab(rows["attribute_true"].astype(str), rows["attribute_pred"].astype(str))
