"""An item's facts as the KG states them, and when two spellings of a value mean the same thing.

:func:`item_facts` lists, for one item or all, every ``attribute = value`` the graph holds —
catalog attributes (``has_<attribute>``), the brand (``produced_by``), the leaf category
(``belongs_to``) and values extracted from text — with where each one comes from (source,
confidence, field and character span).  Q&A answers from these rows, descriptions are written
from them and the consistency check compares text against them.

:class:`ValueMatcher` decides whether two values of one attribute agree: same normalised text,
same resolved entity or entity-resolution key (punctuation, ``&``/``and``, legal suffixes),
equal quantities after unit conversion (``250 ml`` = ``8.5 fl oz``), one
value's words inside the other's (``Navy`` / ``Navy Blue``), or a synonym pair learned from the
catalog (:meth:`ValueMatcher.learn`).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from kgwb.kg.catalog import normalise_value, relation_for
from kgwb.kg.model import KnowledgeGraph

ITEM_PREFIX = "item:"
#: relations that are facts of an item besides ``has_<attribute>``, by attribute name
NAMED_RELATIONS = {"produced_by": "brand", "belongs_to": "category"}
FACT_COLUMNS = (
    "item_id",
    "attribute",
    "value",
    "source",
    "confidence",
    "field",
    "start",
    "end",
)


def attribute_of(relation: str) -> str | None:
    """``has_color`` → ``color``; ``produced_by`` → ``brand``; other relations → ``None``."""
    if relation in NAMED_RELATIONS:
        return NAMED_RELATIONS[relation]
    if relation.startswith("has_"):
        return relation[4:]
    return None


def item_facts(kg: KnowledgeGraph, item_ids: Iterable[str] | None = None) -> pd.DataFrame:
    """One row per fact: ``item_id, attribute, value, source, confidence, field, start, end``.

    ``value`` is the value node's name (its display spelling).  ``item_ids`` (without the
    ``item:`` prefix) restricts the rows; by default every item's facts are listed.
    """
    edges = kg.edges[kg.edges["head"].str.startswith(ITEM_PREFIX, na=False)]
    if item_ids is not None:
        wanted = {ITEM_PREFIX + str(i) for i in item_ids}
        edges = edges[edges["head"].isin(wanted)]
    attributes = edges["relation"].map(attribute_of)
    edges = edges[attributes.notna()].assign(attribute=attributes[attributes.notna()])
    names = kg.nodes.set_index("node_id")["name"]
    out = pd.DataFrame(
        {
            "item_id": edges["head"].str.removeprefix(ITEM_PREFIX),
            "attribute": edges["attribute"].astype("string"),
            "value": edges["tail"].map(names).fillna(edges["tail"]).astype("string"),
            "source": edges["source"],
            "confidence": edges["confidence"],
            "field": edges["field"],
            "start": edges["start"],
            "end": edges["end"],
        }
    )
    return out.reset_index(drop=True)


_NUMBER_UNIT = re.compile(r"^(\d+(?:[.,]\d+)?)\s*-?\s*([a-z\"'. ]*?)\.?$")
#: unit spelling -> (dimension, factor to the dimension's base unit)
UNITS: dict[str, tuple[str, float]] = {}
for _names, _dimension, _factor in (
    (("ml", "milliliter", "milliliters", "millilitre", "millilitres"), "volume", 1.0),
    (("l", "liter", "liters", "litre", "litres", "ltr"), "volume", 1000.0),
    (("fl oz", "fl. oz", "fluid ounce", "fluid ounces", "floz"), "volume", 29.5735),
    (("gal", "gallon", "gallons"), "volume", 3785.41),
    (("mg",), "mass", 0.001),
    (("g", "gram", "grams", "gr"), "mass", 1.0),
    (("kg", "kilogram", "kilograms", "kgs"), "mass", 1000.0),
    (("oz", "ounce", "ounces"), "mass", 28.3495),
    (("lb", "lbs", "pound", "pounds"), "mass", 453.592),
    (("mm", "millimeter", "millimeters"), "length", 0.1),
    (("cm", "centimeter", "centimeters"), "length", 1.0),
    (("m", "meter", "meters", "metre", "metres"), "length", 100.0),
    (("in", "inch", "inches", '"', "''"), "length", 2.54),
    (("ft", "foot", "feet", "'"), "length", 30.48),
    (("w", "watt", "watts"), "power", 1.0),
    (("kw", "kilowatt", "kilowatts"), "power", 1000.0),
    (("h", "hr", "hrs", "hour", "hours"), "time", 1.0),
    (("min", "mins", "minute", "minutes"), "time", 1 / 60),
    (("mah",), "charge", 1.0),
    (("gb",), "bytes", 1.0),
    (("tb",), "bytes", 1000.0),
):
    for _name in _names:
        UNITS[_name] = (_dimension, _factor)


def quantity(value: str) -> tuple[str, float] | None:
    """``"8.5 fl oz"`` → ``("volume", 251.4)`` (base units); ``None`` when not a number + unit."""
    match = _NUMBER_UNIT.match(normalise_value(value))
    if not match:
        return None
    unit = match.group(2).strip().rstrip(".")
    if unit not in UNITS:
        return None
    dimension, factor = UNITS[unit]
    return dimension, float(match.group(1).replace(",", ".")) * factor


_WORD = re.compile(r"[0-9a-z]+")


def _words(value: str) -> set[str]:
    return set(_WORD.findall(normalise_value(value)))


@dataclass
class ValueMatcher:
    """Whether two values of one attribute agree (see the module docstring).

    ``canonical`` maps ``(attribute, normalised value)`` to an entity id (from entity
    resolution); ``synonyms`` holds learned ``(attribute, value, value)`` pairs (normalised,
    both orders).  ``tolerance`` is the relative difference allowed between quantities.
    """

    canonical: dict[tuple[str, str], str] = field(default_factory=dict)
    synonyms: set[tuple[str, str, str]] = field(default_factory=set)
    tolerance: float = 0.03

    @classmethod
    def from_build(cls, build_dir: str | Path | None) -> ValueMatcher:
        """A matcher with the value merges of ``kgwb kg build``'s entity resolution, if saved."""
        matcher = cls()
        if build_dir is None:
            return matcher
        path = Path(build_dir) / "resolution_mapping.parquet"
        if path.is_file():
            mapping = pd.read_parquet(path)
            values = mapping[mapping["node_id"].astype(str).str.startswith("value:")]
            for node, canonical in zip(values["node_id"], values["canonical_id"]):
                attribute, _, name = str(node).removeprefix("value:").partition("=")
                matcher.canonical[(attribute, name)] = str(canonical)
        return matcher

    def _key(self, attribute: str, value: str) -> str:
        norm = normalise_value(value)
        return self.canonical.get((normalise_value(attribute), norm), norm)

    def agree(self, attribute: str, a: str, b: str) -> bool:
        """Whether values ``a`` and ``b`` of ``attribute`` state the same thing."""
        na, nb = normalise_value(a), normalise_value(b)
        if na == nb or self._key(attribute, a) == self._key(attribute, b):
            return True
        from kgwb.kg.resolve import match_key

        key_a = match_key(a)
        if key_a and key_a == match_key(b):  # punctuation, "&"/"and", legal suffixes
            return True
        attr = normalise_value(attribute)
        if (attr, na, nb) in self.synonyms:
            return True
        qa, qb = quantity(a), quantity(b)
        if qa is not None and qb is not None:
            return qa[0] == qb[0] and abs(qa[1] - qb[1]) <= self.tolerance * max(qa[1], qb[1])
        wa, wb = _words(a), _words(b)
        if not wa or not wb:
            return False
        return wa <= wb or wb <= wa

    def learn(
        self,
        pairs: Iterable[tuple[str, str, str]],
        *,
        min_support: int = 2,
        min_share: float = 0.5,
    ) -> list[tuple[str, str, str, int]]:
        """Learn synonyms from ``(attribute, catalog value, text value)`` observations.

        A text spelling that, over many items, keeps coming with one catalog value it does not
        otherwise match (``Maroon`` with ``Burgundy``) is a synonym of it: at least
        ``min_support`` items and ``min_share`` of the spelling's occurrences.  A contradiction
        is a one-off pairing and stays one.  Returns the learned pairs with their support.
        """
        observed = [
            (normalise_value(a), normalise_value(c), normalise_value(t)) for a, c, t in pairs
        ]
        by_text = Counter((a, t) for a, _, t in observed)
        together = Counter(observed)
        learned = []
        for (a, c, t), n in sorted(together.items()):
            if c == t or n < min_support or n / by_text[(a, t)] < min_share:
                continue
            if self.agree(a, c, t):
                continue
            self.synonyms.update({(a, c, t), (a, t, c)})
            learned.append((a, c, t, n))
        return learned


def relation_matches(attribute: str, relation: str) -> bool:
    """Whether an extractor's ``attribute`` names the KG ``relation``."""
    return relation_for(attribute) == relation or NAMED_RELATIONS.get(relation) == attribute


def as_mapping(facts: pd.DataFrame) -> Mapping[str, list[str]]:
    """``{attribute: [values]}`` of one item's fact rows (order kept, duplicates dropped)."""
    out: dict[str, list[str]] = {}
    for attribute, value in zip(facts["attribute"], facts["value"]):
        values = out.setdefault(str(attribute), [])
        if str(value) not in values:
            values.append(str(value))
    return out
