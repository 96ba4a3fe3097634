"""Cold-start experiments: warm and cold accuracy of several recommenders on one split.

:func:`compare_cold_start` trains each model of a list with the same ``cold_items`` split
(:func:`kgwb.train.data.cold_item_split`) and seed, and returns one row per model with
Recall/NDCG@20 on all, warm and cold test items; :func:`warm_cold_figure` plots warm against
cold Recall@20 (plotly).  A model is a registered name (``"lightgcn"``) or a :class:`RunSpec`
(a label, a name and model options), so variants sit side by side::

    compare_cold_start(dataset=ds, cold_items=0.1, models=[
        "pop", "lightgcn", "kgat", "kg-inductive",
        RunSpec("text-tower (frozen)", "text-tower", {"train_layers": 0}),
        RunSpec("text-tower", "text-tower"),
        RunSpec("text-tower, no KG facts", "text-tower", {"with_facts": False}),
        RunSpec("kgat + tuned text (fusion)", "kgat+text", text_from="text-tower"),
    ])

``text_from`` names an earlier run of the list whose cached item vectors (the fine-tuned text
tower's) become the ``+text`` input features — the fusion; plain ``kgat+text`` uses the frozen
encoder's title vectors.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from kgwb.data.schema import Dataset
from kgwb.train.experiments import ExperimentResult

#: per-run training options that fit the text tower better than the GNN defaults
TEXT_TOWER_DEFAULTS = {"batch_size": 256, "lr": 5e-3}


@dataclass
class RunSpec:
    """One row of a comparison: ``label`` shown, model ``name``, its options."""

    label: str
    name: str
    model_options: dict[str, Any] = field(default_factory=dict)
    train_options: dict[str, Any] = field(default_factory=dict)
    text_from: str | None = None


def _spec(model: str | RunSpec) -> RunSpec:
    return model if isinstance(model, RunSpec) else RunSpec(label=model, name=model)


def _row(label: str, res: Any) -> dict[str, Any]:
    row: dict[str, Any] = {"run": label, "model": res.model_name}
    for block, metrics in (("all", res.test), ("warm", res.test_warm), ("cold", res.test_cold)):
        for key in ("recall@20", "ndcg@20"):
            row[f"{block} {key}"] = round(float(metrics.get(key, float("nan"))), 4)
    row["best_epoch"] = res.best_epoch
    row["s/epoch"] = round(res.seconds_per_epoch, 2)
    return row


def compare_cold_start(
    *,
    dataset: Dataset,
    models: list[str | RunSpec],
    cold_items: float = 0.1,
    out_dir: str | Path | None = None,
    **train_options: Any,
) -> ExperimentResult:
    """Train every model on the same cold-item split; one row per model (module docstring)."""
    from kgwb.train.data import SplitWarning
    from kgwb.train.recommend import train_recommender

    results: dict[str, Any] = {}
    rows = []
    for model in models:
        spec = _spec(model)
        options = dict(train_options)
        if spec.name == "text-tower":
            options = {**options, **TEXT_TOWER_DEFAULTS}
        options.update(spec.train_options)
        if spec.text_from is not None:
            source = results.get(spec.text_from)
            if source is None or not hasattr(source.model, "item_vectors"):
                raise ValueError(
                    f"{spec.label}: text_from={spec.text_from!r} is not an earlier text-tower "
                    f"run of this comparison (runs so far: {', '.join(results) or 'none'})"
                )
            options["text_features"] = source.model.item_vectors.detach().cpu().numpy()
        folder = None
        if out_dir is not None:
            folder = Path(out_dir) / "".join(c if c.isalnum() else "_" for c in spec.label)
        with warnings.catch_warnings():
            # holding items out leaves some users without train items: expected here, and
            # counted in each run's metrics.json (data: *_users_without_train_items)
            warnings.simplefilter("ignore", SplitWarning)
            res = train_recommender(
                dataset=dataset,
                model=spec.name,
                cold_items=cold_items,
                out_dir=folder,
                model_options=spec.model_options or None,
                **options,
            )
        results[spec.label] = res
        rows.append(_row(spec.label, res))
    return ExperimentResult(table=pd.DataFrame(rows), results=results)


def warm_cold_figure(table: pd.DataFrame, *, metric: str = "recall@20", title: str | None = None):
    """Plotly scatter of warm vs cold ``metric`` per run (a :func:`compare_cold_start` table)."""
    import plotly.express as px

    fig = px.scatter(
        table,
        x=f"warm {metric}",
        y=f"cold {metric}",
        text="run",
        title=title or f"warm vs cold {metric} (held-out items)",
    )
    fig.update_traces(textposition="top center")
    fig.update_layout(xaxis_rangemode="tozero", yaxis_rangemode="tozero")
    return fig
