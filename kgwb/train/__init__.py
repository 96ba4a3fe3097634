"""Stage 3 — training: GNN recommenders with full-ranking evaluation (and KG embeddings).

Nothing heavy is imported here: the public names below load their module (and torch) on first
use, so ``import kgwb.train`` and ``kgwb --help`` stay fast.

- :func:`train_recommender` (:class:`RecommenderConfig` in) / :class:`RecommenderResult` — the
  recommender stage's entry point (:mod:`kgwb.train.recommend`; the epoch loop is a
  :class:`Trainer` with callbacks, :mod:`kgwb.train.trainer`); :func:`load_recommender` reopens
  a finished run's best model;
- :data:`RECOMMENDERS` (= :data:`MODELS`), :func:`model_names`, :func:`build_model` — models by
  name (:mod:`kgwb.train.registry`: ``pop``, ``bprmf``, ``lightgcn``, ``kgat``, ... and
  ``<name>+text``);
- :func:`~kgwb.train.kge.train_kge` (:class:`KGEConfig` in) — KG embeddings with any PyKEEN
  model (:mod:`kgwb.train.kge`);
- :func:`prepare_interactions`, :func:`build_collab_kg` — indices, splits and the collaborative
  KG (:mod:`kgwb.train.data`);
- :func:`compare_cold_start`, :func:`warm_cold_figure` — warm vs cold accuracy under the
  cold-start protocol (``cold_items=F``, :func:`cold_item_split`) of ``kg-inductive``
  (:mod:`kgwb.train.inductive`), ``text-tower`` (:mod:`kgwb.train.text_tower`) and the rest;
- :func:`ranking_metrics`, :func:`evaluate_full_ranking` — Recall/NDCG/Hit/Precision@K
  (:mod:`kgwb.train.metrics`);
- :func:`kg_informativeness`, :func:`kg_usage` — how much a KG can tell a recommender (before
  training) and how much ``kgat`` used each relation (after) (:mod:`kgwb.train.kg_diagnostic`).
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "RecommenderConfig": "kgwb.train.config",
    "KGEConfig": "kgwb.train.config",
    "RECOMMENDERS": "kgwb.train.registry",
    "Trainer": "kgwb.train.trainer",
    "Callback": "kgwb.train.trainer",
    "train_kge": "kgwb.train.kge",
    "KGEResult": "kgwb.train.kge",
    "RecommenderResult": "kgwb.train.recommend",
    "train_recommender": "kgwb.train.recommend",
    "load_recommender": "kgwb.train.recommend",
    "resolve_device": "kgwb.device",
    "MODELS": "kgwb.train.models",
    "build_model": "kgwb.train.models",
    "model_names": "kgwb.train.models",
    "CollabKG": "kgwb.train.data",
    "EmptySplitError": "kgwb.train.data",
    "InteractionData": "kgwb.train.data",
    "SplitWarning": "kgwb.train.data",
    "build_collab_kg": "kgwb.train.data",
    "leave_one_out": "kgwb.train.data",
    "prepare_interactions": "kgwb.train.data",
    "RunSpec": "kgwb.train.cold_start",
    "compare_cold_start": "kgwb.train.cold_start",
    "warm_cold_figure": "kgwb.train.cold_start",
    "item_texts": "kgwb.train.text_tower",
    "cold_item_split": "kgwb.train.data",
    "evaluate_full_ranking": "kgwb.train.metrics",
    "ranking_metrics": "kgwb.train.metrics",
    "kg_informativeness": "kgwb.train.kg_diagnostic",
    "kg_usage": "kgwb.train.kg_diagnostic",
}


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'kgwb.train' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted(list(globals()) + list(_EXPORTS))


__all__ = sorted(_EXPORTS)
