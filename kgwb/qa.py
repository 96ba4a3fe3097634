"""Grounded product Q&A over the KG: every answer is a fact of the graph with its evidence.

:func:`ask` (``kgwb ask KG_DIR "question" [--item ID] [--k 3]``)

1. finds the item: the given id, else the title the question quotes (longest title contained in
   the question), else semantic search over the KG's titles (:class:`kgwb.search.SearchIndex`,
   the ``k`` best are returned as candidates);
2. maps the question to an attribute: an attribute name or one of its synonyms written in the
   question wins; otherwise the encoder similarity between the question (item title removed) and
   short phrasings of every attribute the KG knows (:data:`SYNONYMS` adds common wordings);
3. answers with the item's facts of that attribute (:func:`kgwb.kg.facts.item_facts`): the
   value, its source (catalog or extracted), confidence and evidence (field and character span of
   an extracted value).  With no such fact the answer is ``"not in the KG"`` — a value is never
   made up.

:func:`ask_text` answers the same questions about a bare title through an extractor (facts are
the extracted spans), which is how OA-Mine questions are scored.  Questions and titles are
treated as plain text throughout (no query is built from them; the store is not queried).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kgwb.errors import KgwbError
from kgwb.kg.catalog import normalise_value
from kgwb.kg.facts import item_facts
from kgwb.kg.model import KnowledgeGraph
from kgwb.stage import StageConfig, option

NOT_IN_KG = "not in the KG"
#: common wordings of attributes, matched as words in a question
SYNONYMS: dict[str, tuple[str, ...]] = {
    "brand": ("brand", "manufacturer", "maker", "made by", "who makes", "company", "label"),
    "category": ("category", "kind of product", "type of product", "what kind", "product type"),
    "color": ("color", "colour", "shade", "hue", "what color", "what colour"),
    "size": ("size", "how big", "dimensions", "fit"),
    "volume": ("volume", "how much liquid", "how many ml", "fluid ounces"),
    "capacity": ("capacity", "how much does it hold", "how much can it hold", "litres", "liters"),
    "material": ("material", "made of", "made from", "fabric"),
    "scent": ("scent", "smell", "fragrance", "smells like"),
    "weight": ("weight", "how heavy", "weigh", "weighs"),
    "wattage": ("wattage", "watts", "power", "how powerful"),
    "pack_size": ("pack size", "how many in a pack", "pack of", "count", "quantity"),
    "battery_life": ("battery life", "battery", "how long does the battery"),
    "connectivity": ("connectivity", "connect", "bluetooth", "wireless"),
    "warranty": ("warranty", "guarantee", "guaranteed"),
    "country_of_origin": ("country of origin", "where is it made", "made in", "origin"),
    "compatible_with": ("compatible", "compatibility", "works with", "fits"),
    "care_instructions": ("care instructions", "how to clean", "wash", "care"),
    "skin_type": ("skin type", "skin"),
    "hair_type": ("hair type", "hair"),
    "ingredient": ("ingredient", "ingredients", "contains", "what is in it"),
    "feature": ("feature", "features", "special"),
    "flavor": ("flavor", "flavour", "taste", "tastes like"),
    "gender": ("gender", "for men", "for women", "men or women", "who is it for"),
    "pattern": ("pattern", "print", "design"),
    "finish": ("finish",),
    "spf": ("spf", "sun protection"),
    "thread_count": ("thread count",),
    "thickness": ("thickness", "how thick"),
    "temperature_rating": ("temperature rating", "how cold", "temperature"),
}


@dataclass
class QAConfig(StageConfig):
    """Settings of the question answerer (the flags of ``kgwb ask``)."""

    k: int = option(3, "candidate items to list")
    #: below this encoder similarity the question matches no attribute: "not in the KG"
    min_attribute_score: float = option(
        0.6, "below this similarity the question names no attribute: 'not in the KG'"
    )
    #: extracted facts below this confidence are not used as answers
    min_confidence: float = option(0.5, "extracted facts below this confidence are no answer")
    model: str | None = option(None, "encoder for search and attribute matching")


@dataclass
class Answer:
    """An answer (or ``NOT_IN_KG``) with the item, the attribute and the evidence behind it."""

    question: str
    answer: str
    item_id: str | None
    item_title: str | None
    attribute: str | None
    found: bool
    evidence: list[dict] = field(default_factory=list)
    candidates: list[dict] = field(default_factory=list)
    how: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _words(text: str) -> str:
    return " " + " ".join(re.findall(r"[0-9a-z]+", normalise_value(text))) + " "


def _phrases(attribute: str) -> tuple[str, ...]:
    plain = attribute.replace("_", " ")
    return tuple(dict.fromkeys((plain, *SYNONYMS.get(normalise_value(attribute), ()))))


class AttributeMatcher:
    """Maps a question to one of ``attributes``: a written name or synonym first (longest
    match), else the closest attribute phrasing by encoder similarity."""

    def __init__(self, attributes: Iterable[str], *, model: str | None = None) -> None:
        self.attributes = sorted(set(map(str, attributes)))
        self.model = model
        self._vectors: np.ndarray | None = None
        self._owners: list[str] = []

    def lexical(self, question: str) -> tuple[str, float] | None:
        """The attribute whose name or synonym the question writes (longest phrase wins),
        among the KG's attributes and the ones :data:`SYNONYMS` knows (so a question about an
        attribute the KG lacks is recognised as such, not mapped to a neighbour)."""
        words = _words(question)
        best = None
        for attribute in sorted(set(self.attributes) | set(SYNONYMS)):
            for phrase in _phrases(attribute):
                if _words(phrase) in words and (best is None or len(phrase) > len(best[1])):
                    best = (attribute, phrase)
        return (best[0], 1.0) if best else None

    def _index(self) -> np.ndarray:
        if self._vectors is None:
            from kgwb.text.embed import embed_texts

            texts = []
            for attribute in self.attributes:
                for phrase in _phrases(attribute):
                    texts.append(f"what is the {phrase}?")
                    self._owners.append(attribute)
            self._vectors = embed_texts(texts, model=self.model)
        return self._vectors

    def match(self, question: str) -> tuple[str | None, float, str]:
        """``(attribute or None, score, how)``; ``how`` is ``"name"`` or ``"encoder"``."""
        found = self.lexical(question)
        if found:
            return found[0], found[1], "name"
        if not self.attributes:
            return None, 0.0, "encoder"
        from kgwb.text.embed import embed_texts

        scores = self._index() @ embed_texts([question], model=self.model)[0]
        best = int(np.argmax(scores))
        return self._owners[best], float(scores[best]), "encoder"


def _strip_title(question: str, title: str | None) -> str:
    if not title:
        return question
    return re.sub(re.escape(title), " ", question, flags=re.IGNORECASE)


def _evidence(rows: pd.DataFrame) -> list[dict]:
    out = []
    for row in rows.itertuples(index=False):
        ev = {
            "value": row.value,
            "source": row.source,
            "confidence": round(float(row.confidence), 4),
        }
        if isinstance(row.field, str):
            ev |= {"field": row.field, "start": int(row.start), "end": int(row.end)}
        out.append(ev)
    return out


class QA:
    """Question answering over one KG (loaded once; the search index is built on first use)."""

    def __init__(
        self, kg: KnowledgeGraph, *, config: QAConfig | None = None, index: Any = None
    ) -> None:
        self.kg = kg
        self.config = config or QAConfig()
        self.facts = item_facts(kg)
        items = kg.nodes[kg.nodes["type"] == "item"]
        self.titles = pd.Series(
            items["name"].astype("string").fillna("").to_numpy(),
            index=items["node_id"].str.removeprefix("item:").to_numpy(),
        )
        self.matcher = AttributeMatcher(self.facts["attribute"].unique(), model=self.config.model)
        self._index = index
        self._by_item = {k: g for k, g in self.facts.groupby("item_id", sort=False)}

    @classmethod
    def from_dir(cls, kg_dir: str | Path, *, config: QAConfig | None = None) -> QA:
        """Q&A over a ``kgwb kg build`` folder; the title index is cached beside the search
        index (under :func:`kgwb.paths.cache_dir`), never inside the KG folder (it may be
        read-only)."""
        from kgwb.kg.check import build_folder, kg_of
        from kgwb.viz.cli import default_index_dir

        build = build_folder(kg_dir)
        qa = cls(kg_of(build), config=config)
        search_dir = default_index_dir(build)
        qa.index_dir = search_dir.with_name(f"qa-{search_dir.name}")
        return qa

    index_dir: Path | None = None

    def index(self):
        if self._index is None:
            from kgwb.search import SearchIndex, kg_items

            cached = self.index_dir
            if cached is not None and (cached / "index.json").is_file():
                index = SearchIndex.load(cached)
                if index.model == self.config.model and len(index) == len(self.titles):
                    self._index = index
                    return index
            self._index = SearchIndex.build(
                kg_items(self.kg), text_columns=("title",), model=self.config.model
            )
            if cached is not None:
                try:
                    self._index.save(cached)
                except OSError:  # a read-only cache folder: Q&A still works, uncached
                    pass
        return self._index

    def find_item(self, question: str, k: int) -> tuple[str | None, list[dict], str]:
        """The item a question is about: a quoted title, else the best semantic match."""
        folded = normalise_value(question)
        quoted = [
            (len(t), item)
            for item, t in self.titles.items()
            if len(t) >= 8 and normalise_value(t) in folded
        ]
        if quoted:
            item = max(quoted)[1]
            return item, [{"item_id": item, "title": self.titles[item], "score": 1.0}], "title"
        hits = self.index().search(question, k=max(1, k))
        candidates = [
            {"item_id": str(r.item_id), "title": str(r.title), "score": round(float(r.score), 4)}
            for r in hits.itertuples(index=False)
        ]
        return (candidates[0]["item_id"] if candidates else None), candidates, "search"

    def ask(self, question: str, *, item: str | None = None, k: int | None = None) -> Answer:
        k = self.config.k if k is None else k
        question = str(question)
        if item is not None:
            item = str(item).removeprefix("item:")
            if item not in self.titles.index:
                raise KgwbError(f"item {item!r} is not in the KG")
            candidates, found_by = (
                [{"item_id": item, "title": self.titles[item], "score": 1.0}],
                "id",
            )
        else:
            item, candidates, found_by = self.find_item(question, k)
        title = self.titles.get(item) if item is not None else None
        attribute, score, how = self.matcher.match(_strip_title(question, title))
        details = {
            "item_found_by": found_by,
            "attribute_found_by": how,
            "attribute_score": round(score, 4),
        }
        answer = Answer(question, NOT_IN_KG, item, title, attribute, False, [], candidates, details)
        if score < self.config.min_attribute_score:
            answer.attribute = None
        if item is None or answer.attribute is None:
            return answer
        rows = self._by_item.get(item)
        if rows is None:
            return answer
        rows = rows[
            (rows["attribute"] == attribute) & (rows["confidence"] >= self.config.min_confidence)
        ]
        if rows.empty:
            return answer
        # catalog first, then the most confident extraction
        rows = rows.assign(_catalog=rows["source"] != "catalog").sort_values(
            ["_catalog", "confidence"], ascending=[True, False]
        )
        answer.answer = str(rows["value"].iloc[0])
        answer.found = True
        answer.evidence = _evidence(rows.drop(columns="_catalog"))
        return answer


def ask(
    kg: KnowledgeGraph | str | Path,
    question: str,
    *,
    item: str | None = None,
    k: int = 3,
    config: QAConfig | None = None,
) -> Answer:
    """Answer ``question`` from the KG (a loaded graph or a build folder); see the module doc."""
    config = config or QAConfig(k=k)
    qa = QA(kg, config=config) if isinstance(kg, KnowledgeGraph) else QA.from_dir(kg, config=config)
    return qa.ask(question, item=item, k=k)


def ask_text(
    title: str,
    question: str,
    *,
    extractor: Any,
    category: str = "",
    matcher: AttributeMatcher | None = None,
    min_confidence: float = 0.0,
    spans: list[dict] | None = None,
) -> Answer:
    """Answer ``question`` about a bare ``title`` from the values ``extractor`` finds in it
    (``spans``: the extractor's spans of ``title`` when already computed)."""
    if spans is None:
        spans = extractor.extract([title], [category] if extractor.settings.use_category else "")[0]
    matcher = matcher or AttributeMatcher(
        sorted({a for attrs in extractor.settings.schema.values() for a in attrs})
    )
    attribute, score, how = matcher.match(_strip_title(question, title))
    answer = Answer(
        question, NOT_IN_KG, None, title, attribute, False, how={"attribute_found_by": how}
    )
    chosen = [s for s in spans if s["attribute"] == attribute and s["confidence"] >= min_confidence]
    if chosen:
        best = max(chosen, key=lambda s: s["confidence"])
        answer.answer, answer.found = best["value"], True
        answer.evidence = [
            {
                "value": s["value"],
                "source": "extracted",
                "confidence": round(s["confidence"], 4),
                "field": "title",
                "start": s["start"],
                "end": s["end"],
            }
            for s in sorted(chosen, key=lambda s: -s["confidence"])
        ]
    return answer


# ------------------------------------------------------------------------ question sets

#: phrasings of a question about ``{attribute}`` of ``{title}``
PHRASINGS = (
    "What is the {attribute} of {title}?",
    "{title}: which {attribute} does it have?",
    "Tell me the {attribute} of the {title}.",
    "what {attribute} is {title}",
)


def sample_questions(
    dataset: Any, *, n_items: int = 100, seed: int = 0, unsupported: bool = True
) -> pd.DataFrame:
    """Questions with known answers from the sample's ground truth: for ``n_items`` seeded items,
    every true attribute (brand and category too) in each of :data:`PHRASINGS` and once with a
    synonym of its name (:data:`SYNONYMS`); with
    ``unsupported``, one question per item about an attribute of another category the item does
    not have (expected answer: not in the KG).  Columns: ``item_id, attribute, question,
    expected`` (``expected`` is ``None`` for unsupported questions)."""
    truth = dataset.truth
    if not truth or "item_attributes_true" not in truth:
        raise KgwbError("sample questions need the sample generator's ground truth")
    rng = np.random.default_rng(seed)
    items = dataset.items.set_index("item_id")
    picked = sorted(
        rng.choice(items.index.to_numpy(), size=min(n_items, len(items)), replace=False)
    )
    facts = truth["item_attributes_true"]
    brands = truth["item_brand_true"].set_index("item_id")["brand"]
    all_attributes = sorted(facts["attribute"].unique())
    rows = []
    for item_id in picked:
        title = str(items.at[item_id, "title"])
        known = facts[facts["item_id"] == item_id]
        pairs = [("brand", brands.get(item_id)), ("category", items.at[item_id, "category"])]
        pairs += list(zip(known["attribute"], known["value"]))
        for attribute, value in pairs:
            if value is None or pd.isna(value):
                continue
            for phrasing in PHRASINGS:
                q = phrasing.format(attribute=attribute.replace("_", " "), title=title)
                rows.append((item_id, attribute, q, str(value)))
            other = [w for w in SYNONYMS.get(attribute, ()) if w != attribute.replace("_", " ")]
            if other:  # a wording other than the attribute's name
                rows.append((item_id, attribute, f"{title}: {other[0]}?", str(value)))
        if unsupported:
            missing = [a for a in all_attributes if a not in set(known["attribute"])]
            if missing:
                attribute = missing[int(rng.integers(len(missing)))]
                q = PHRASINGS[0].format(attribute=attribute.replace("_", " "), title=title)
                rows.append((item_id, attribute, q, None))
    return pd.DataFrame(rows, columns=["item_id", "attribute", "question", "expected"])


def score_answers(
    questions: pd.DataFrame,
    answers: Sequence[Answer],
    *,
    same: Any = None,
) -> dict[str, Any]:
    """Accuracy of ``answers`` against ``questions.expected``.

    A supported question is right when the answer agrees with the expected value
    (``same(attribute, answer, expected)``; default: equal after normalisation) and the item is
    the asked one (when ``item_id`` is given); an unsupported one when the answer is
    ``NOT_IN_KG``.  ``invented`` counts values given to unsupported questions.
    """
    same = same or (lambda a, x, y: normalise_value(x) == normalise_value(y))
    right = supported = unsupported = abstained = invented = wrong_item = 0
    for row, answer in zip(questions.itertuples(index=False), answers):
        if row.expected is None or (isinstance(row.expected, float) and np.isnan(row.expected)):
            unsupported += 1
            if answer.found:
                invented += 1
            else:
                abstained += 1
            continue
        supported += 1
        if hasattr(row, "item_id") and answer.item_id not in (None, str(row.item_id)):
            wrong_item += 1
            continue
        if answer.found and same(row.attribute, answer.answer, row.expected):
            right += 1
    total = supported + unsupported
    return {
        "accuracy": round((right + abstained) / total, 4) if total else None,
        "supported_accuracy": round(right / supported, 4) if supported else None,
        "unsupported_abstained": round(abstained / unsupported, 4) if unsupported else None,
        "questions": total,
        "supported": supported,
        "unsupported": unsupported,
        "answers_for_unsupported": invented,
        "wrong_item": wrong_item,
    }


def answers_json(answers: Iterable[Answer]) -> str:
    return json.dumps([a.to_dict() for a in answers], indent=1, ensure_ascii=False)


def category_of(mapping: Mapping[str, Any], item: str) -> str:
    return str(mapping.get(item, ""))


def sample_judge(dataset: Any, matcher: Any = None):
    """``same(attribute, answer, expected)`` for sample questions: the values agree
    (:class:`~kgwb.kg.facts.ValueMatcher`) or the generator's ``entity_variants`` say both
    spellings are one brand or one value."""
    from kgwb.kg.facts import ValueMatcher

    matcher = matcher or ValueMatcher()
    variants = (dataset.truth or {}).get("entity_variants")
    canonical: dict[tuple[str, str], str] = {}
    if variants is not None:
        for surface, name, kind, attribute in zip(
            variants["surface"], variants["canonical_name"], variants["kind"], variants["attribute"]
        ):
            key = "brand" if kind == "brand" else str(attribute)
            canonical[(key, normalise_value(surface))] = normalise_value(name)

    def same(attribute: str, answer: str, expected: str) -> bool:
        if matcher.agree(attribute, answer, expected):
            return True
        a = canonical.get((attribute, normalise_value(answer)), normalise_value(answer))
        return a == canonical.get((attribute, normalise_value(expected)), normalise_value(expected))

    return same
