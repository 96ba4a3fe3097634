"""Catalog consistency check: attribute values stated in an item's text against its catalog.

:func:`check_catalog` (``kgwb kg check KG_DIR``) runs the fine-tuned extractor over each item's
text fields — sentence by sentence, so long descriptions are read whole — and compares every
extracted ``attribute = value`` with the item's catalog value of that attribute in the KG.  Values
are compared after normalisation (:class:`kgwb.kg.facts.ValueMatcher`: case, units, the value
merges of entity resolution, word containment and synonym pairs learned from the catalog itself).
An (item, attribute) is a *conflict* when the text states values of the attribute and none of them
agrees with the catalog; the most confident disagreeing span is reported with its field, character
span and confidence.

:func:`inject_contradictions` corrupts a seeded share of the catalog facts that the text also
states (the scoring set-up of the sample: the generator's ``attribute_spans`` say which ones) and
:func:`score_conflicts` gives precision and recall of the detected conflicts against them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from kgwb.errors import KgwbError
from kgwb.kg.facts import ITEM_PREFIX, ValueMatcher, item_facts
from kgwb.kg.model import KnowledgeGraph
from kgwb.stage import StageConfig, StageResult, option

CONFLICT_COLUMNS = (
    "item_id",
    "attribute",
    "catalog_value",
    "text_value",
    "field",
    "start",
    "end",
    "confidence",
)
#: a sentence ends at . ! ? followed by white space (not inside "8.5 oz"), or at • | ; new line
_SENTENCE = re.compile(r"(?:[^.!?•\n|;]|[.!?](?!\s|$))+[.!?]?")


@dataclass
class CheckConfig(StageConfig):
    """Settings of one consistency check (recorded in ``check.json``; the flags of
    ``kgwb kg check``)."""

    text_fields: tuple[str, ...] = option(
        ("title", "description"), "comma-separated item text fields to read"
    )
    #: how values are read from text: the fine-tuned extractor and/or the KG's own values found
    #: as words (``dictionary``: every value name the KG holds for an attribute)
    readers: tuple[str, ...] = option(
        ("extractor", "dictionary"),
        "how values are read from text: extractor (the fine-tuned model) and/or dictionary "
        "(the KG's own value names found as words)",
    )
    #: facts not checked: brand spellings are entity resolution's job, categories are no text
    skip_attributes: tuple[str, ...] = option(("brand", "category"), "attributes not checked")
    #: extracted spans below this confidence are not compared
    min_confidence: float = option(0.5, "ignore weaker spans")
    #: synonym learning (see :meth:`ValueMatcher.learn`); 0 switches it off
    synonym_min_support: int = option(
        2, "items that must pair two values before they count as synonyms (0: no learning)"
    )
    synonym_min_share: float = option(0.5, "share of those items a learned synonym needs")
    batch_size: int = option(64, "texts per extractor batch")


@dataclass(kw_only=True)
class CheckResult(StageResult):
    """Conflicts (one row per item and attribute) and what was compared."""

    STAGE: ClassVar[str] = "check"
    RECORD: ClassVar[str] = "check.json"

    conflicts: pd.DataFrame
    config: CheckConfig
    n_items: int
    n_compared: int
    learned_synonyms: list[tuple[str, str, str, int]] = field(default_factory=list)
    scores: dict[str, Any] | None = None

    @property
    def metrics(self) -> dict[str, Any]:
        per_attribute = self.conflicts["attribute"].value_counts().sort_index()
        return {
            "items": self.n_items,
            "compared": self.n_compared,
            "conflicts": len(self.conflicts),
            "conflicts_per_attribute": {str(k): int(v) for k, v in per_attribute.items()},
            "learned_synonyms": len(self.learned_synonyms),
            **({"scores": self.scores} if self.scores else {}),
        }

    def to_dict(self) -> dict[str, Any]:
        return {**self.metrics, "config": self.config.to_dict()}

    def record(self) -> dict[str, Any]:
        """``check.json``: the summary (:meth:`to_dict`)."""
        return self.to_dict()

    def write_files(self, folder: Path) -> None:
        from kgwb.atomic import write_text

        self.conflicts.to_csv(folder / "conflicts.csv", index=False)
        rows = json.loads(self.conflicts.to_json(orient="records", force_ascii=False))
        write_text(folder / "conflicts.json", json.dumps(rows, indent=1, ensure_ascii=False) + "\n")

    def save(self, out_dir: Any) -> Path:
        """Write ``conflicts.csv``, ``conflicts.json`` (rows) and ``check.json`` (summary, last)."""
        return super().save(out_dir)


def sentences(text: str) -> list[tuple[int, str]]:
    """``(start offset, sentence)`` pieces of ``text`` (split at . ! ? • | ; and new lines)."""
    return [(m.start(), m.group(0)) for m in _SENTENCE.finditer(text) if m.group(0).strip()]


def text_spans(
    items: pd.DataFrame,
    extractor: Any,
    *,
    fields: Sequence[str] = ("title", "description"),
    batch_size: int = 64,
) -> pd.DataFrame:
    """Extracted spans of the items' text ``fields``: ``item_id, field, attribute, value, start,
    end, confidence`` with offsets into the whole field.  Fields are read sentence by sentence
    (the extractor's input length is short); ``items`` needs ``item_id`` and, for extractors
    trained with categories, ``category``."""
    pieces, where = [], []
    for f in fields:
        if f not in items.columns:
            continue
        for item_id, text, category in zip(
            items["item_id"],
            items[f].astype("string").fillna(""),
            items["category"].astype("string").fillna("")
            if "category" in items
            else [""] * len(items),
        ):
            for start, sentence in sentences(str(text)):
                pieces.append((sentence, str(category)))
                where.append((str(item_id), f, start))
    if not pieces:
        return pd.DataFrame(
            columns=["item_id", "field", "attribute", "value", "start", "end", "confidence"]
        )
    found = extractor.extract(
        [p[0] for p in pieces],
        [p[1] for p in pieces] if extractor.settings.use_category else "",
        batch_size=batch_size,
    )
    rows = [
        (
            item_id,
            f,
            s["attribute"],
            s["value"],
            start + s["start"],
            start + s["end"],
            s["confidence"],
        )
        for (item_id, f, start), spans in zip(where, found)
        for s in spans
    ]
    return pd.DataFrame(
        rows, columns=["item_id", "field", "attribute", "value", "start", "end", "confidence"]
    )


def dictionary_spans(
    items: pd.DataFrame,
    kg: KnowledgeGraph,
    *,
    fields: Sequence[str] = ("title", "description"),
    confidence: float = 0.9,
) -> pd.DataFrame:
    """Spans of the KG's known values written in the items' text (whole words, any case),
    in the same columns as :func:`text_spans`; ``confidence`` is the one given to each."""
    from kgwb.text.describe import stated_values, value_vocabulary

    vocabulary = value_vocabulary(kg)
    rows = []
    for f in fields:
        if f not in items.columns:
            continue
        for item_id, text in zip(items["item_id"].astype(str), items[f]):
            if isinstance(text, str) and text:
                for s in stated_values(text, vocabulary):
                    rows.append(
                        (item_id, f, s["attribute"], s["value"], s["start"], s["end"], confidence)
                    )
    return pd.DataFrame(
        rows, columns=["item_id", "field", "attribute", "value", "start", "end", "confidence"]
    )


def find_conflicts(
    catalog: pd.DataFrame,
    spans: pd.DataFrame,
    *,
    matcher: ValueMatcher | None = None,
    config: CheckConfig | None = None,
) -> tuple[pd.DataFrame, int, list]:
    """Compare text ``spans`` with ``catalog`` facts (``item_id, attribute, value``).

    Returns ``(conflicts, compared (item, attribute) pairs, learned synonyms)``.
    """
    config = config or CheckConfig()
    matcher = matcher or ValueMatcher()
    spans = spans[
        (spans["confidence"] >= config.min_confidence)
        & ~spans["attribute"].isin(config.skip_attributes)
    ]
    catalog_values = (
        catalog.groupby(["item_id", "attribute"], sort=False)["value"].agg(list).to_dict()
    )
    compared = [
        (key, group)
        for key, group in spans.groupby(["item_id", "attribute"], sort=True)
        if key in catalog_values
    ]
    if config.synonym_min_support > 0:
        observations = [
            (attribute, c, t)
            for (_, attribute), group in compared
            for c in catalog_values[(_, attribute)]
            for t in set(group["value"])
        ]
        learned = matcher.learn(
            observations,
            min_support=config.synonym_min_support,
            min_share=config.synonym_min_share,
        )
    else:
        learned = []
    rows = []
    for (item_id, attribute), group in compared:
        values = catalog_values[(item_id, attribute)]
        agreeing = [any(matcher.agree(attribute, t, c) for c in values) for t in group["value"]]
        if any(agreeing):
            continue
        best = group.sort_values("confidence", ascending=False).iloc[0]
        rows.append(
            (
                item_id,
                attribute,
                " | ".join(values),
                best["value"],
                best["field"],
                int(best["start"]),
                int(best["end"]),
                round(float(best["confidence"]), 4),
            )
        )
    conflicts = pd.DataFrame(rows, columns=list(CONFLICT_COLUMNS))
    return conflicts, len(compared), learned


def read_spans(
    kg: KnowledgeGraph,
    items: pd.DataFrame,
    extractor: Any,
    config: CheckConfig,
    *,
    extracted: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The values ``config.readers`` find in the items' text fields (see :class:`CheckConfig`);
    ``extracted``: the extractor's spans (:func:`text_spans`) when already computed."""
    unknown = set(config.readers) - {"extractor", "dictionary"}
    if unknown or not config.readers:
        raise KgwbError(
            f"unknown reader(s) {sorted(unknown) or config.readers}; choose from: extractor, "
            "dictionary"
        )
    parts = []
    if "dictionary" in config.readers:
        parts.append(dictionary_spans(items, kg, fields=config.text_fields))
    if "extractor" in config.readers and extracted is None and extractor is not None:
        extracted = text_spans(
            items, extractor, fields=config.text_fields, batch_size=config.batch_size
        )
    if "extractor" in config.readers and extracted is not None:
        if parts:
            # the KG's exact values decide where they are found; the extractor adds the
            # (item, attribute) pairs written in spellings the KG does not hold yet (its
            # fragments of known values, "Blue" of "Sky Blue", would otherwise agree with
            # a wrong catalog value)
            known = set(zip(parts[0]["item_id"], parts[0]["attribute"]))
            keep = [p not in known for p in zip(extracted["item_id"], extracted["attribute"])]
            extracted = extracted[keep]
        parts.append(extracted)
    spans = pd.concat(parts, ignore_index=True) if parts else dictionary_spans(items.head(0), kg)
    return spans.drop_duplicates(["item_id", "field", "attribute", "start", "end"])


def catalog_facts(kg: KnowledgeGraph) -> pd.DataFrame:
    """The catalog's own attribute values and brands (``item_id, attribute, value``)."""
    facts = item_facts(kg)
    facts = facts[(facts["source"] == "catalog") & (facts["attribute"] != "category")]
    return facts[["item_id", "attribute", "value"]].reset_index(drop=True)


def check_catalog(
    *,
    kg: KnowledgeGraph,
    items: pd.DataFrame,
    extractor: Any,
    config: CheckConfig | None = None,
    matcher: ValueMatcher | None = None,
    spans: pd.DataFrame | None = None,
) -> CheckResult:
    """Conflicts between ``kg``'s catalog facts and what ``extractor`` reads in ``items``' text.

    ``spans`` (as :func:`text_spans` returns them) skips the extraction, e.g. to check several
    versions of a catalog against one reading of the text.
    """
    config = config or CheckConfig()
    if spans is None:
        spans = read_spans(kg, items, extractor, config)
    conflicts, compared, learned = find_conflicts(
        catalog_facts(kg), spans, matcher=matcher, config=config
    )
    return CheckResult(
        conflicts=conflicts,
        config=config,
        n_items=int(items["item_id"].nunique()),
        n_compared=compared,
        learned_synonyms=learned,
    )


# ------------------------------------------------------------------------------ scoring


def inject_contradictions(
    kg: KnowledgeGraph,
    stated: pd.DataFrame,
    *,
    rate: float = 0.1,
    seed: int = 0,
) -> tuple[KnowledgeGraph, pd.DataFrame]:
    """A copy of ``kg`` where a seeded ``rate`` of the catalog facts that the text also states
    (``stated``: ``item_id, attribute`` pairs, e.g. the sample's ``attribute_spans``) point to
    another value of the same attribute; returns ``(kg, injected)`` with ``injected`` =
    ``item_id, attribute, old_value, new_value``.  The new value is drawn among the KG's other
    values of that attribute (not a respelling of the old one), so it is a real value, only the
    wrong one."""
    if not 0.0 < rate <= 1.0:
        raise KgwbError(f"rate must be in (0, 1], not {rate}")
    rng = np.random.default_rng(seed)
    edges = kg.edges.copy()
    names = kg.nodes.set_index("node_id")["name"]
    is_fact = (edges["source"] == "catalog") & edges["relation"].str.startswith("has_")
    pairs = set(zip(stated["item_id"].astype(str), stated["attribute"].astype(str)))
    item = edges["head"].str.removeprefix(ITEM_PREFIX)
    attribute = edges["relation"].str.removeprefix("has_")
    eligible = np.flatnonzero(
        is_fact.to_numpy() & np.array([p in pairs for p in zip(item, attribute)], dtype=bool)
    )
    chosen = np.sort(rng.choice(eligible, size=int(round(rate * len(eligible))), replace=False))
    value_nodes = sorted(kg.nodes.loc[kg.nodes["type"] == "value", "node_id"].astype(str))
    matcher = ValueMatcher()
    rows = []
    for row in chosen:
        relation, old = edges.at[row, "relation"], edges.at[row, "tail"]
        prefix = "value:" + relation.removeprefix("has_") + "="
        # another value of the attribute that does not merely respell the old one
        others = [
            v
            for v in value_nodes
            if v.startswith(prefix)
            and not matcher.agree(relation, str(names.get(v, v)), str(names.get(old, old)))
        ]
        if not others:
            continue
        new = others[int(rng.integers(len(others)))]
        edges.at[row, "tail"] = new
        rows.append((item.iat[row], attribute.iat[row], names.get(old, old), names.get(new, new)))
    injected = pd.DataFrame(rows, columns=["item_id", "attribute", "old_value", "new_value"])
    corrupted = KnowledgeGraph(nodes=kg.nodes, edges=edges, meta=dict(kg.meta))
    return corrupted, injected


def score_conflicts(conflicts: pd.DataFrame, injected: pd.DataFrame) -> dict[str, Any]:
    """Precision and recall (fractions) of detected (item, attribute) conflicts."""
    found = set(zip(conflicts["item_id"].astype(str), conflicts["attribute"].astype(str)))
    truth = set(zip(injected["item_id"].astype(str), injected["attribute"].astype(str)))
    hit = len(found & truth)
    precision = hit / len(found) if found else 0.0
    recall = hit / len(truth) if truth else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "precision": round(precision, 4),
        "recall": round(recall, 4),
        "f1": round(f1, 4),
        "detected": len(found),
        "injected": len(truth),
        "true_positives": hit,
    }


# ------------------------------------------------------------------- folders and sources


def build_folder(path: str | Path) -> Path:
    """The ``kgwb kg build`` folder of ``path`` (the folder itself, or the parent of its ``kg/``)."""
    p = Path(path)
    if (p / "kg" / "kg.json").is_file():
        return p
    if (p / "kg.json").is_file():
        return p.parent if p.name == "kg" else p
    raise KgwbError(f"{p}: not a built KG (expected {p / 'kg' / 'kg.json'})")


def kg_of(build_dir: Path) -> KnowledgeGraph:
    return KnowledgeGraph.load(build_dir / "kg" if (build_dir / "kg").is_dir() else build_dir)


def default_extractor_dir(build_dir: Path) -> Path:
    """The extractor ``kgwb kg build`` trained (``DIR/extractor``), or a clear error."""
    for candidate in (build_dir / "extractor" / "model", build_dir / "extractor"):
        if (candidate / "kgwb_extractor.json").is_file():
            return candidate
    raise KgwbError(
        f"{build_dir}: no extractor saved with this KG (built with --extract-model none?); "
        "pass --extract-model with a folder written by `kgwb extract train`"
    )


def items_of(kg: KnowledgeGraph, dataset: Any = None) -> pd.DataFrame:
    """Items with their text: the dataset's items table, or the KG's titles and leaf categories."""
    if dataset is not None:
        return dataset.items
    nodes = kg.nodes[kg.nodes["type"] == "item"]
    items = pd.DataFrame(
        {
            "item_id": nodes["node_id"].str.removeprefix(ITEM_PREFIX),
            "title": nodes["name"].astype("string"),
        }
    )
    facts = item_facts(kg)
    category = facts[facts["attribute"] == "category"].drop_duplicates("item_id")
    return items.merge(
        category[["item_id", "value"]].rename(columns={"value": "category"}),
        on="item_id",
        how="left",
    )


def dataset_source(kg: KnowledgeGraph) -> str | None:
    """The data source a KG was built from, when it can be reopened (a sample or a path)."""
    name = str(kg.meta.get("config", {}).get("dataset") or "")
    match = re.fullmatch(r"sample-(\w+)", name)
    if match:
        return f"sample:{match.group(1)}"
    return name if name and Path(name).exists() else None


def run_check(
    kg_dir: str | Path,
    *,
    dataset: str | None = None,
    extract_model: str | Path | None = None,
    config: CheckConfig | None = None,
) -> CheckResult:
    """``kgwb kg check``: open the build folder, its extractor and the items' text, and check."""
    from kgwb.text.extract import load_extractor

    config = config or CheckConfig()
    build_dir = build_folder(kg_dir)
    kg = kg_of(build_dir)
    source = dataset or (dataset_source(kg) if set(config.text_fields) != {"title"} else None)
    if source is None and set(config.text_fields) != {"title"}:
        raise KgwbError(
            f"{build_dir}: the KG keeps only titles; pass --dataset SOURCE for the fields "
            f"{', '.join(f for f in config.text_fields if f != 'title')}"
        )
    data = None
    if source is not None:
        from kgwb.data import load_dataset

        seed = kg.meta.get("seed", kg.meta.get("config", {}).get("seed"))
        options = {"seed": int(seed)} if source.startswith("sample") and seed is not None else {}
        data = load_dataset(source, **options)
    extractor = load_extractor(extract_model or default_extractor_dir(build_dir))
    return check_catalog(
        kg=kg,
        items=items_of(kg, data),
        extractor=extractor,
        config=config,
        matcher=ValueMatcher.from_build(build_dir),
    )


def score_on_sample(
    *,
    kg: KnowledgeGraph,
    dataset: Any,
    spans: pd.DataFrame,
    rate: float = 0.1,
    seed: int = 0,
    matcher: ValueMatcher | None = None,
    config: CheckConfig | None = None,
) -> tuple[CheckResult, pd.DataFrame]:
    """Inject contradictions into ``kg``'s catalog facts that the sample's text states (its
    ``attribute_spans`` ground truth, restricted to ``config.text_fields``), check the corrupted
    catalog against the text ``spans`` and score the conflicts; returns ``(result, injected)``
    with ``result.scores`` holding precision, recall and F1 (fractions)."""
    config = config or CheckConfig()
    truth = (dataset.truth or {}).get("attribute_spans")
    if truth is None:
        raise KgwbError("scoring the check needs the sample generator's attribute_spans")
    stated = truth[truth["field"].isin(config.text_fields)][["item_id", "attribute"]]
    corrupted, injected = inject_contradictions(kg, stated.drop_duplicates(), rate=rate, seed=seed)
    result = check_catalog(
        kg=corrupted,
        items=dataset.items,
        extractor=None,
        config=config,
        matcher=matcher,
        spans=spans,
    )
    result.scores = score_conflicts(result.conflicts, injected) | {"rate": rate, "seed": seed}
    return result, injected


def conflicts_figure(conflicts: pd.DataFrame, injected: pd.DataFrame | None = None):
    """Bar chart of conflicts per attribute (plotly), split into injected and other ones."""
    import plotly.express as px

    table = conflicts.assign(kind="conflict")
    if injected is not None:
        truth = set(zip(injected["item_id"].astype(str), injected["attribute"].astype(str)))
        hit = [(i, a) in truth for i, a in zip(table["item_id"], table["attribute"])]
        table["kind"] = np.where(hit, "injected (true positive)", "not injected (false positive)")
    counts = table.groupby(["attribute", "kind"]).size().rename("conflicts").reset_index()
    return px.bar(
        counts,
        x="attribute",
        y="conflicts",
        color="kind",
        title="Catalog-text conflicts per attribute",
    )


def attribute_errors(confusion: pd.DataFrame) -> pd.DataFrame:
    """Per true attribute, from :func:`kgwb.kg.quality.attribute_confusion`'s table: spans in the
    truth, spans predicted with that attribute, overlapping spans given the right attribute, and
    recall / precision of those (the attribute only; boundaries may still differ)."""
    attributes = [a for a in confusion.index if a != "(none)"]
    right = pd.Series(
        {a: int(confusion.at[a, a]) if a in confusion.columns else 0 for a in attributes}
    )
    true = confusion.loc[attributes].sum(axis=1)
    predicted = confusion.sum(axis=0).reindex(attributes, fill_value=0)
    table = pd.DataFrame({"true": true, "predicted": predicted, "right": right})
    table["recall"] = (table["right"] / table["true"].where(table["true"] > 0)).round(3)
    table["precision"] = (table["right"] / table["predicted"].where(table["predicted"] > 0)).round(
        3
    )
    return table.sort_values("recall")
