"""The recommender models by name (:data:`RECOMMENDERS`), without importing torch.

One :class:`kgwb.stage.Registry` with lazy ``"module:Class"`` entries: ``kgwb train --help``
lists these names without loading a model module, and :func:`kgwb.train.models.build_model`
imports only the class it builds.  ``<name>+text`` is its own entry (the same class, with item
text features: a learned projection of title embeddings added to the item's layer-0
embedding); ``pop`` learns nothing and ``text-tower`` reads the item text itself, so neither
has one.  ``tests/test_train_recommend.py`` checks each ``+text`` entry against its class.
"""

from __future__ import annotations

from kgwb.stage import Registry

TEXT_SUFFIX = "+text"

_MODELS = "kgwb.train.models"
#: model name -> its class (``kgwb.train.models.Recommender`` subclasses)
RECOMMENDERS = Registry(
    "model",
    {
        "pop": f"{_MODELS}:Popularity",
        "bprmf": f"{_MODELS}:BPRMF",
        "bprmf+text": f"{_MODELS}:BPRMF",
        "lightgcn": f"{_MODELS}:LightGCN",
        "lightgcn+text": f"{_MODELS}:LightGCN",
        "kgat": f"{_MODELS}:KGAT",
        "kgat+text": f"{_MODELS}:KGAT",
        "kg-inductive": "kgwb.train.inductive:KGInductive",
        "kg-inductive+text": "kgwb.train.inductive:KGInductive",
        "text-tower": "kgwb.train.text_tower:TextTower",
    },
)


def with_text(name: str) -> bool:
    """Whether model ``name`` adds item text features (``lightgcn+text``)."""
    return name.endswith(TEXT_SUFFIX)
