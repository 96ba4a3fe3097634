"""Experiments 03_train runs: a model comparison and the KG/text ablation.

``compare_models`` trains several recommenders on one dataset with one seed and returns a tidy
table; ``kg_ablation`` answers "do the KG and the language-model features help?" by training
the same KG-aware model on growing inputs:

====================  =======================================================
interactions only     LightGCN (no KG)
+ catalog KG          KG-aware model, KG edges from catalog + dataset triples
+ extracted KG        ... plus edges extracted from product text
+ text features       ... plus item title embeddings from the encoder
====================  =======================================================
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from kgwb.data.schema import Dataset
from kgwb.kg.model import KnowledgeGraph

METRIC_COLUMNS = ("recall@10", "ndcg@10", "recall@20", "ndcg@20")


@dataclass
class ExperimentResult:
    """Rows of a comparison (one per run) plus the trained results by run name."""

    table: pd.DataFrame
    results: dict[str, Any]
    skipped: dict[str, str] = field(default_factory=dict)  # step -> why it did not run

    def curves(self) -> pd.DataFrame:
        """Learning curves of all runs in long form (run, epoch, loss, valid metrics)."""
        frames = []
        for name, res in self.results.items():
            if res.curve:
                frames.append(pd.DataFrame(res.curve).assign(run=name))
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    def metrics(self) -> dict[str, Any]:
        """``{run: {test/valid metrics, best_epoch, seconds_per_epoch}}`` for the pipeline
        (and ``skipped``: the steps that did not run, with why)."""
        out: dict[str, Any] = {name: res.metrics for name, res in self.results.items()}
        if self.skipped:
            out["skipped"] = dict(self.skipped)
        return out


def _row(name: str, res: Any) -> dict[str, Any]:
    row: dict[str, Any] = {"run": name, "model": res.model_name}
    row.update(
        {f"test {k}": round(float(res.test.get(k, float("nan"))), 4) for k in METRIC_COLUMNS}
    )
    row["valid recall@20"] = round(float(res.valid.get("recall@20", float("nan"))), 4)
    row.update(
        {
            "best_epoch": res.best_epoch,
            "s/epoch": round(res.seconds_per_epoch, 3),
            "peak MB": round(res.peak_memory_mb, 1),
        }
    )
    return row


def compare_models(
    *,
    dataset: Dataset,
    models: list[str],
    kg: KnowledgeGraph | None = None,
    out_dir: str | Path | None = None,
    **train_options: Any,
) -> ExperimentResult:
    """Train each model in ``models`` with the same options; one table row per model."""
    from kgwb.train.recommend import train_recommender

    results, rows = {}, []
    for name in models:
        res = train_recommender(
            dataset=dataset,
            model=name,
            kg=kg,
            out_dir=(Path(out_dir) / name.replace("+", "_")) if out_dir else None,
            **train_options,
        )
        results[name] = res
        rows.append(_row(name, res))
    return ExperimentResult(table=pd.DataFrame(rows), results=results)


def kg_subset(kg: KnowledgeGraph, sources: tuple[str, ...]) -> KnowledgeGraph:
    """The graph restricted to edges from ``sources`` (nodes kept as they are)."""
    edges = kg.edges[kg.edges["source"].isin(sources)]
    return KnowledgeGraph(nodes=kg.nodes, edges=edges, meta={**kg.meta, "sources": list(sources)})


def kg_ablation(
    *,
    dataset: Dataset,
    kg: KnowledgeGraph,
    kg_model: str = "kgat",
    base_model: str = "lightgcn",
    out_dir: str | Path | None = None,
    **train_options: Any,
) -> ExperimentResult:
    """Interactions only → + catalog KG → + extracted KG → + text features (module docstring)."""
    from kgwb.kg.build import item_text_fields
    from kgwb.train.recommend import train_recommender

    has_extracted = bool((kg.edges["source"] == "extracted").any())
    steps: list[tuple[str, str, KnowledgeGraph | None]] = [
        ("interactions only", base_model, None),
        ("+ catalog KG", kg_model, kg_subset(kg, ("catalog", "dataset"))),
    ]
    if has_extracted:
        steps.append(
            ("+ extracted KG", kg_model, kg_subset(kg, ("catalog", "dataset", "extracted")))
        )
    full = steps[-1][2]
    skipped = {}
    if item_text_fields(dataset.items, ("title",)):
        steps.append(("+ text features", f"{kg_model}+text", full))
    else:
        skipped["+ text features"] = "text features skipped: the catalog has no item titles"
    results, rows = {}, []
    for name, model, graph in steps:
        folder = None
        if out_dir:
            folder = Path(out_dir) / name.strip("+ ").replace(" ", "_")
        res = train_recommender(
            dataset=dataset, model=model, kg=graph, out_dir=folder, **train_options
        )
        results[name] = res
        rows.append(_row(name, res))
    return ExperimentResult(table=pd.DataFrame(rows), results=results, skipped=skipped)
