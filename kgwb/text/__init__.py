"""Language-model text stages: the encoder resolver and the attribute-value extractor.

Nothing heavy is imported here: the public names below load their module (and torch /
transformers) on first use, so ``import kgwb.text`` and ``kgwb --help`` stay fast.

- :func:`train_extractor` / :func:`evaluate_extractor` / :func:`apply_extractor` — the stage's
  entry points (:mod:`kgwb.text.extract`);
- :func:`extract`, :func:`load_extractor`, :class:`Extractor` — batched inference;
- :func:`read_labeled_jsonl`, :func:`examples_from_records` — training examples;
- :func:`slot_scores` — the slot micro-F1 (:mod:`kgwb.text.metrics`);
- :func:`resolve_encoder` — which pretrained model to start from (:mod:`kgwb.text.encoder`).
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "Extractor": "kgwb.text.extract",
    "ExtractorApplyResult": "kgwb.text.extract",
    "ExtractorConfig": "kgwb.text.extract",
    "ExtractorEvalResult": "kgwb.text.extract",
    "ExtractorTrainResult": "kgwb.text.extract",
    "LabeledTitle": "kgwb.text.extract",
    "apply_extractor": "kgwb.text.extract",
    "evaluate_extractor": "kgwb.text.extract",
    "examples_from_records": "kgwb.text.extract",
    "extract": "kgwb.text.extract",
    "load_extractor": "kgwb.text.extract",
    "read_labeled_jsonl": "kgwb.text.extract",
    "train_extractor": "kgwb.text.extract",
    "Span": "kgwb.text.bio",
    "decode_spans": "kgwb.text.bio",
    "locate_values": "kgwb.text.bio",
    "token_labels": "kgwb.text.bio",
    "SlotScores": "kgwb.text.metrics",
    "category_schema": "kgwb.text.metrics",
    "slot_scores": "kgwb.text.metrics",
    "DEFAULT_ENCODER": "kgwb.text.encoder",
    "EncoderNotFoundError": "kgwb.text.encoder",
    "resolve_encoder": "kgwb.text.encoder",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'kgwb.text' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
