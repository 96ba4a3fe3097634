"""The slot micro-F1 of attribute-value extraction (OA-Mine / ExtractGPT protocol), plain Python.

A *slot* is one ``(title, attribute)`` pair for every attribute of the title's category schema
(the attributes seen for that category in the targets, train and test).  Each slot is one of:

- ``nn`` no target, no prediction        - ``nv`` no target, a prediction
- ``vn`` a target, no prediction         - ``vc`` a target, the prediction equals it
- ``vw`` a target, a different prediction

precision = vc / (nv + vc + vw) (slots with a predicted value), recall = vc / (vn + vc + vw)
(slots with a target value), F1 their harmonic mean, micro = summed over all slots.  Values are
compared exactly (case and inner spaces count) after stripping surrounding white space, and a
slot may list several accepted target values.

ExtractGPT's own script skips the slots whose attribute the title's target does not mention, so
on OA-Mine (which has no ``n/a`` targets) it never counts ``nv``: its precision is vc / (vc + vw).
That reading is reported too, under ``extractgpt_protocol``, for comparison with published
numbers; the headline numbers count every slot of the schema.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from kgwb.errors import ConfigError

Targets = Mapping[str, "str | Sequence[str]"]

OUTCOMES = ("nn", "nv", "vn", "vc", "vw")
_MISSING = ("", "n/a", "none", "null")


def _prf(counts: Mapping[str, int], *, count_nv: bool = True) -> tuple[float, float, float]:
    predicted = counts["vc"] + counts["vw"] + (counts["nv"] if count_nv else 0)
    relevant = counts["vc"] + counts["vw"] + counts["vn"]
    precision = counts["vc"] / predicted if predicted else 0.0
    recall = counts["vc"] / relevant if relevant else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


@dataclass
class SlotScores:
    """Counts per outcome, micro precision/recall/F1 and a per-attribute table."""

    counts: dict[str, int]
    per_attribute: dict[str, dict]
    unit: str = "percent"
    counts_by_attribute: dict[str, dict[str, int]] = field(default_factory=dict)

    def _scale(self, x: float) -> float:
        return round(100.0 * x, 4) if self.unit == "percent" else round(x, 6)

    @property
    def precision(self) -> float:
        return self._scale(_prf(self.counts)[0])

    @property
    def recall(self) -> float:
        return self._scale(_prf(self.counts)[1])

    @property
    def micro_f1(self) -> float:
        return self._scale(_prf(self.counts)[2])

    def extractgpt_protocol(self) -> dict:
        """Micro scores as ExtractGPT's script computes them (slots without target skipped)."""
        p, r, f = _prf(self.counts, count_nv=False)
        return {"precision": self._scale(p), "recall": self._scale(r), "micro_f1": self._scale(f)}

    def to_dict(self) -> dict:
        return {
            "micro_f1": self.micro_f1,
            "precision": self.precision,
            "recall": self.recall,
            "unit": self.unit,
            "slots": dict(self.counts),
            "per_attribute": self.per_attribute,
            "extractgpt_protocol": self.extractgpt_protocol(),
        }


def _clean(value) -> list[str]:
    if value is None:
        return []
    values = [value] if isinstance(value, str) else list(value)
    return [v.strip() for v in values if v is not None and v.strip().lower() not in _MISSING]


def category_schema(categories: Iterable[str], targets: Iterable[Targets]) -> dict[str, list[str]]:
    """Attributes seen per category in ``targets`` (a value of ``n/a`` still counts as seen)."""
    schema: dict[str, list[str]] = defaultdict(list)
    for category, target in zip(categories, targets):
        for attribute in target:
            if attribute not in schema[category]:
                schema[category].append(attribute)
    return dict(schema)


def slot_scores(
    targets: Sequence[Targets],
    predictions: Sequence[Mapping[str, str]],
    categories: Sequence[str],
    *,
    schema: Mapping[str, Iterable[str]] | None = None,
    unit: str = "percent",
) -> SlotScores:
    """Slot micro-F1 of ``predictions`` (one ``{attribute: value}`` per title) against ``targets``.

    ``targets[i]`` maps attribute -> accepted value (or a list, or OA-Mine's ``{value: score}``),
    ``categories[i]`` is title ``i``'s category and ``schema`` maps category -> attributes (by
    default: the attributes seen in ``targets`` per category — pass the train+test schema to
    score like OA-Mine).  Predicted attributes outside the category's schema are not slots and
    are ignored.  ``unit`` is ``"percent"`` (0-100) or ``"fraction"`` (0-1).
    """
    if unit not in ("percent", "fraction"):
        raise ConfigError(f"unit must be 'percent' or 'fraction', not {unit!r}")
    if not (len(targets) == len(predictions) == len(categories)):
        raise ConfigError(
            f"targets, predictions and categories differ in length: "
            f"{len(targets)}, {len(predictions)}, {len(categories)}"
        )
    if schema is None:
        schema = category_schema(categories, targets)
    total: Counter = Counter({k: 0 for k in OUTCOMES})
    by_attribute: dict[str, Counter] = defaultdict(lambda: Counter({k: 0 for k in OUTCOMES}))
    for target, prediction, category in zip(targets, predictions, categories):
        for attribute in schema.get(category, ()):
            accepted = _clean(target.get(attribute))
            predicted = _clean(prediction.get(attribute))
            guess = predicted[0] if predicted else None
            if not accepted:
                outcome = "nn" if guess is None else "nv"
            elif guess is None:
                outcome = "vn"
            else:
                outcome = "vc" if guess in accepted else "vw"
            total[outcome] += 1
            by_attribute[attribute][outcome] += 1
    scale = 100.0 if unit == "percent" else 1.0
    table = {}
    for attribute in sorted(by_attribute):
        counts = by_attribute[attribute]
        p, r, f = _prf(counts)
        table[attribute] = {
            "precision": round(scale * p, 4),
            "recall": round(scale * r, 4),
            "f1": round(scale * f, 4),
            "support": counts["vc"] + counts["vw"] + counts["vn"],
        }
    return SlotScores(
        counts=dict(total),
        per_attribute=table,
        unit=unit,
        counts_by_attribute={a: dict(c) for a, c in by_attribute.items()},
    )
