"""Product descriptions written from KG facts, each one fact-checked against the KG.

Writers are chosen by name (:data:`WRITERS`): ``"template"`` (default, deterministic, offline)
states each fact of the item in a fixed sentence; any other name is a Hugging Face seq2seq or
causal language model (hub name or local folder) prompted with the item's facts written as
``title: ... | brand: ... | color: ...`` (:func:`facts_prompt`).  :func:`train_writer`
(``kgwb describe train``) fine-tunes such a model on (facts → catalog description) pairs.

:func:`fact_check` finds the attribute values a description states — every known value of the
KG written in it (whole words, case-insensitive) and, with an extractor, the values it extracts —
outside the item's title, and compares them with the item's facts through the consistency
check's :class:`~kgwb.kg.facts.ValueMatcher`.  A stated value that agrees with no fact of its
attribute is a hallucination; ``drop_unsupported`` removes the sentences holding one.
"""

from __future__ import annotations

import math
import random
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar

import pandas as pd

from kgwb.errors import KgwbError
from kgwb.kg.facts import ValueMatcher, as_mapping, item_facts
from kgwb.kg.model import KnowledgeGraph
from kgwb.stage import StageConfig, StageResult, option

TEMPLATE = "template"
WRITERS = (TEMPLATE, "<any Hugging Face seq2seq or causal model name or folder>")
#: sentence per attribute; others read "Its <attribute> is <value>."
SENTENCES = {
    "color": "It comes in {value}.",
    "material": "It is made of {value}.",
    "scent": "It has a {value} scent.",
    "size": "Size: {value}.",
    "pack_size": "It comes as a {value}.",
    "country_of_origin": "It is made in {value}.",
    "compatible_with": "It is compatible with {value}.",
    "feature": "Feature: {value}.",
    "ingredient": "Key ingredient: {value}.",
}


def _join(values: Sequence[str]) -> str:
    return values[0] if len(values) == 1 else ", ".join(values[:-1]) + " and " + values[-1]


def template_description(title: str, facts: Mapping[str, Sequence[str]]) -> str:
    """A deterministic description stating exactly ``facts`` (``{attribute: [values]}``)."""
    first = title.strip() or "This product"
    category, brand = facts.get("category"), facts.get("brand")
    if category and brand:
        lead = f"{first} is a {category[0].lower()} product by {brand[0]}."
    elif brand:
        lead = f"{first} is made by {brand[0]}."
    elif category:
        lead = f"{first} is a {category[0].lower()} product."
    else:
        lead = f"{first}."
    parts = [lead]
    for attribute in sorted(facts):
        if attribute in ("category", "brand") or not facts[attribute]:
            continue
        value = _join(list(facts[attribute]))
        sentence = SENTENCES.get(attribute, "Its {attribute} is {value}.")
        parts.append(sentence.format(attribute=attribute.replace("_", " "), value=value))
    return " ".join(parts)


def facts_prompt(title: str, facts: Mapping[str, Sequence[str]]) -> str:
    """The item's facts as one line for a language model: ``title: ... | color: ...``."""
    parts = [f"title: {title}"] + [
        f"{a.replace('_', ' ')}: {', '.join(v)}" for a, v in sorted(facts.items()) if v
    ]
    return " | ".join(parts)


# ---------------------------------------------------------------------------- model writers


def _load_model(name_or_path: str):
    """Tokenizer and model of a seq2seq or causal LM (chosen by its config)."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSeq2SeqLM, AutoTokenizer

    from kgwb.text.encoder import quiet_loading

    source = (
        str(Path(name_or_path).expanduser())
        if Path(name_or_path).expanduser().exists()
        else name_or_path
    )
    try:
        config = AutoConfig.from_pretrained(source)
    except Exception as e:  # OSError / ValueError from the hub or a bad folder
        raise KgwbError(
            f"model {name_or_path!r} is neither a local model folder nor a reachable Hugging Face "
            f"model ({e.__class__.__name__}); pass a folder written by save_pretrained"
        ) from e
    tokenizer = AutoTokenizer.from_pretrained(source)
    with quiet_loading():
        if config.is_encoder_decoder:
            model = AutoModelForSeq2SeqLM.from_pretrained(source)
        else:
            model = AutoModelForCausalLM.from_pretrained(source)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.sep_token
    return tokenizer, model


class ModelWriter:
    """Generates descriptions with a Hugging Face model (greedy decoding, deterministic)."""

    SEPARATOR = " description:"

    def __init__(self, name_or_path: str, *, max_new_tokens: int = 64, device: str | None = None):
        from kgwb.device import resolve_device

        self.name = str(name_or_path)
        self.tokenizer, self.model = _load_model(self.name)
        self.device = resolve_device(device)
        self.model.to(self.device).eval()
        self.max_new_tokens = max_new_tokens
        self.seq2seq = bool(self.model.config.is_encoder_decoder)

    def write(self, prompts: Sequence[str], *, batch_size: int = 8) -> list[str]:
        import torch

        out: list[str] = []
        self.tokenizer.padding_side = "right" if self.seq2seq else "left"
        for b in range(0, len(prompts), batch_size):
            chunk = [p if self.seq2seq else p + self.SEPARATOR for p in prompts[b : b + batch_size]]
            enc = self.tokenizer(
                chunk, return_tensors="pt", padding=True, truncation=True, max_length=256
            )
            enc = {
                k: v.to(self.device) for k, v in enc.items() if k in ("input_ids", "attention_mask")
            }
            with torch.inference_mode():
                generated = self.model.generate(
                    **enc,
                    max_new_tokens=self.max_new_tokens,
                    do_sample=False,
                    pad_token_id=self.tokenizer.pad_token_id,
                )
            if not self.seq2seq:
                generated = generated[:, enc["input_ids"].shape[1] :]
            out.extend(
                t.strip() for t in self.tokenizer.batch_decode(generated, skip_special_tokens=True)
            )
        return out


# ------------------------------------------------------------------------------- fact check

_SENTENCE = re.compile(r"[^.!?]+[.!?]?")


@dataclass
class FactCheck:
    """What one description states and which statements the KG does not support."""

    stated: list[dict]
    unsupported: list[dict]
    checked_text: str

    @property
    def hallucinations(self) -> int:
        return len(self.unsupported)


def value_vocabulary(kg: KnowledgeGraph) -> dict[str, list[str]]:
    """Every value name the KG knows per attribute, and the brand names (longest first), for
    finding the values a text states."""
    from kgwb.kg.catalog import relation_for

    nodes = kg.nodes[kg.nodes["type"].isin(["value", "brand"])]
    vocab: dict[str, set[str]] = {}
    for node, kind, name in zip(nodes["node_id"], nodes["type"], nodes["name"]):
        if not isinstance(name, str) or len(name.strip()) < 2:
            continue
        if kind == "brand":
            attribute = "brand"
        else:
            attribute = relation_for(str(node).removeprefix("value:").partition("=")[0])[4:]
        vocab.setdefault(attribute, set()).add(name.strip())
    return {a: sorted(v, key=lambda x: (-len(x), x)) for a, v in sorted(vocab.items())}


def _mask(text: str, title: str) -> str:
    """``text`` with occurrences of ``title`` blanked (the title is given, not claimed)."""
    if not title.strip():
        return text
    return re.sub(
        re.escape(title.strip()), lambda m: " " * len(m.group(0)), text, flags=re.IGNORECASE
    )


def stated_values(
    text: str, vocabulary: Mapping[str, Sequence[str]], *, title: str = ""
) -> list[dict]:
    """Known values written in ``text`` (outside ``title``): ``attribute, value, start, end``;
    longer values first, overlapping shorter ones of the same attribute skipped."""
    masked = _mask(text, title).casefold()
    found: list[dict] = []
    for attribute, values in vocabulary.items():
        taken: list[tuple[int, int]] = []
        for value in values:
            pattern = r"(?<![0-9a-z])" + re.escape(value.casefold()) + r"(?![0-9a-z])"
            for m in re.finditer(pattern, masked):
                if any(m.start() < e and s < m.end() for s, e in taken):
                    continue
                taken.append((m.start(), m.end()))
                found.append(
                    {
                        "attribute": attribute,
                        "value": text[m.start() : m.end()],
                        "start": m.start(),
                        "end": m.end(),
                    }
                )
    return sorted(found, key=lambda d: (d["start"], d["attribute"]))


def fact_check(
    text: str,
    facts: Mapping[str, Sequence[str]],
    *,
    vocabulary: Mapping[str, Sequence[str]],
    title: str = "",
    matcher: ValueMatcher | None = None,
    extractor: Any = None,
    category: str = "",
    min_confidence: float = 0.5,
) -> FactCheck:
    """Check the values ``text`` states against ``facts`` (see the module docstring)."""
    matcher = matcher or ValueMatcher()
    stated = stated_values(text, vocabulary, title=title)
    if extractor is not None:
        from kgwb.kg.check import sentences

        masked = _mask(text, title)
        pieces = sentences(masked)
        spans = extractor.extract(
            [p for _, p in pieces],
            [category] * len(pieces) if extractor.settings.use_category else "",
        )
        for (offset, _), found in zip(pieces, spans):
            for s in found:
                if s["confidence"] >= min_confidence and s["attribute"] != "category":
                    stated.append(
                        {
                            "attribute": s["attribute"],
                            "value": s["value"],
                            "start": offset + s["start"],
                            "end": offset + s["end"],
                        }
                    )
    # text several attributes' values could be (``Rose``: a scent or a colour) is supported
    # when one reading is a fact of the item (overlapping readings count as one)
    supported_spans = {
        (s["start"], s["end"])
        for s in stated
        if any(matcher.agree(s["attribute"], s["value"], v) for v in facts.get(s["attribute"], ()))
    }
    unsupported = [
        s for s in stated if not any(s["start"] < e and b < s["end"] for b, e in supported_spans)
    ]
    bad = [(s["start"], s["end"]) for s in unsupported]
    kept = [
        m.group(0).strip()
        for m in _SENTENCE.finditer(text)
        if m.group(0).strip() and not any(m.start() <= s < m.end() for s, _ in bad)
    ]
    return FactCheck(stated=stated, unsupported=unsupported, checked_text=" ".join(kept))


# ------------------------------------------------------------------------------ entry point


@dataclass
class DescribeConfig(StageConfig):
    """Settings of :func:`describe_items` (the flags of ``kgwb describe``)."""

    model: str = option(TEMPLATE, "'template' or a Hugging Face model name or folder")
    drop_unsupported: bool = option(True, "drop sentences stating values the KG does not hold")
    max_new_tokens: int = option(64, "tokens a model writes per description")
    min_confidence: float = option(0.5, "extracted facts below this confidence are not stated")


@dataclass(kw_only=True)
class DescribeResult(StageResult):
    """One row per item: description, checked description, stated and unsupported values."""

    STAGE: ClassVar[str] = "describe"
    RECORD: ClassVar[str] = "describe.json"

    descriptions: pd.DataFrame
    config: DescribeConfig
    seconds: float

    @property
    def metrics(self) -> dict[str, Any]:
        d = self.descriptions
        return {
            "items": len(d),
            "writer": self.config.model,
            "stated_values": int(d["stated"].sum()),
            "hallucinations": int(d["hallucinations"].sum()),
            "hallucinations_per_description": round(float(d["hallucinations"].mean()), 4)
            if len(d)
            else None,
            "descriptions_with_hallucination": int((d["hallucinations"] > 0).sum()),
            "seconds": round(self.seconds, 2),
        }

    def record(self) -> dict[str, Any]:
        """``describe.json``: metrics and config."""
        return {"metrics": self.metrics, "config": self.config.to_dict()}

    def write_files(self, folder: Path) -> None:
        from kgwb.atomic import write_with

        write_with(
            folder / "descriptions.jsonl",
            lambda p: self.descriptions.to_json(p, orient="records", lines=True, force_ascii=False),
        )

    def save(self, out_dir: Any) -> Path:
        """Write ``descriptions.jsonl`` and ``describe.json`` (last) into ``out_dir``."""
        return super().save(out_dir)


def describe_items(
    *,
    kg: KnowledgeGraph,
    item_ids: Iterable[str],
    config: DescribeConfig | None = None,
    matcher: ValueMatcher | None = None,
    extractor: Any = None,
    writer: Any = None,
) -> DescribeResult:
    """Write and fact-check a description of each of ``item_ids`` from ``kg``'s facts."""
    config = config or DescribeConfig()
    item_ids = [str(i).removeprefix("item:") for i in item_ids]
    facts = item_facts(kg, item_ids)
    titles = kg.nodes.set_index("node_id")["name"]
    missing = [i for i in item_ids if f"item:{i}" not in titles.index]
    if missing:
        raise KgwbError(f"item(s) not in the KG: {', '.join(missing[:5])}")
    by_item = {
        i: as_mapping(g[g["confidence"] >= config.min_confidence])
        for i, g in facts.groupby("item_id")
    }
    started = time.perf_counter()
    item_facts_list = [by_item.get(i, {}) for i in item_ids]
    item_titles = [str(titles[f"item:{i}"]) for i in item_ids]
    if config.model == TEMPLATE:
        texts = [template_description(t, f) for t, f in zip(item_titles, item_facts_list)]
    else:
        writer = writer or ModelWriter(config.model, max_new_tokens=config.max_new_tokens)
        texts = writer.write([facts_prompt(t, f) for t, f in zip(item_titles, item_facts_list)])
    vocabulary = value_vocabulary(kg)
    rows = []
    for item_id, title, f, text in zip(item_ids, item_titles, item_facts_list, texts):
        check = fact_check(
            text,
            f,
            vocabulary=vocabulary,
            title=title,
            matcher=matcher,
            extractor=extractor,
            category=(f.get("category") or [""])[0],
            min_confidence=config.min_confidence,
        )
        rows.append(
            {
                "item_id": item_id,
                "title": title,
                "description": text,
                "checked_description": check.checked_text if config.drop_unsupported else text,
                "stated": len(check.stated),
                "hallucinations": check.hallucinations,
                "unsupported": check.unsupported,
            }
        )
    return DescribeResult(
        descriptions=pd.DataFrame(rows), config=config, seconds=time.perf_counter() - started
    )


# --------------------------------------------------------------------------------- training


@dataclass
class WriterTrainConfig:
    """Settings of :func:`train_writer`."""

    model: str
    epochs: int = 3
    batch_size: int = 8
    lr: float = 5e-5
    max_length: int = 256
    seed: int = 0
    max_items: int | None = None


def description_pairs(kg: KnowledgeGraph, items: pd.DataFrame) -> list[tuple[str, str]]:
    """(facts prompt, catalog description) per item that has a description."""
    if "description" not in items.columns:
        raise KgwbError("the items have no description column: nothing to learn descriptions from")
    facts = item_facts(kg)
    by_item = {i: as_mapping(g) for i, g in facts.groupby("item_id")}
    titles = kg.nodes.set_index("node_id")["name"]
    pairs = []
    for item_id, text in zip(items["item_id"].astype(str), items["description"]):
        if not isinstance(text, str) or not text.strip() or f"item:{item_id}" not in titles.index:
            continue
        pairs.append(
            (facts_prompt(str(titles[f"item:{item_id}"]), by_item.get(item_id, {})), text.strip())
        )
    return pairs


def train_writer(
    *, pairs: Sequence[tuple[str, str]], config: WriterTrainConfig, out_dir: str | Path | None
) -> dict[str, Any]:
    """Fine-tune ``config.model`` on (prompt, description) ``pairs``; save it to ``out_dir``.

    Causal models learn ``prompt + " description:" + text`` with the loss on the text only;
    seq2seq models map the prompt to the text.  Returns the metrics (losses, seconds, seed)."""
    import torch
    from transformers import set_seed

    if not pairs:
        raise KgwbError("no (facts, description) pairs to train on")
    set_seed(config.seed)
    rng = random.Random(config.seed)
    pairs = list(pairs)
    if config.max_items is not None:
        rng.shuffle(pairs)
        pairs = pairs[: config.max_items]
    tokenizer, model = _load_model(config.model)
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr)
    seq2seq = bool(model.config.is_encoder_decoder)
    losses, started = [], time.perf_counter()
    for _ in range(config.epochs):
        order = list(range(len(pairs)))
        rng.shuffle(order)
        total, count = 0.0, 0
        for b in range(0, len(order), config.batch_size):
            batch = [pairs[i] for i in order[b : b + config.batch_size]]
            loss = _writer_loss(
                tokenizer, model, batch, seq2seq=seq2seq, max_length=config.max_length
            )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.item() * len(batch)
            count += len(batch)
        losses.append(total / count)
    metrics = {
        "pairs": len(pairs),
        "losses": [round(x, 5) for x in losses],
        "train_seconds": round(time.perf_counter() - started, 2),
        "config": asdict(config),
    }
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        model.save_pretrained(out, safe_serialization=True)
        tokenizer.save_pretrained(out)
        from kgwb.atomic import write_json

        write_json(out / "writer_training.json", metrics)
    if not all(math.isfinite(x) for x in losses):
        raise KgwbError(f"training diverged (losses {losses})")
    return metrics


def _writer_loss(tokenizer, model, batch, *, seq2seq: bool, max_length: int):
    import torch

    prompts = [p for p, _ in batch]
    targets = [t for _, t in batch]
    if seq2seq:
        enc = tokenizer(
            prompts, return_tensors="pt", padding=True, truncation=True, max_length=max_length
        )
        labels = tokenizer(
            targets, return_tensors="pt", padding=True, truncation=True, max_length=max_length
        )["input_ids"]
        labels[labels == tokenizer.pad_token_id] = -100
        return model(
            input_ids=enc["input_ids"], attention_mask=enc["attention_mask"], labels=labels
        ).loss
    tokenizer.padding_side = "right"
    rows, masks, label_rows = [], [], []
    for p, t in zip(prompts, targets):
        head = tokenizer(p + ModelWriter.SEPARATOR, add_special_tokens=False)["input_ids"]
        tail = tokenizer(" " + t, add_special_tokens=False)["input_ids"]
        eos = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
        ids = (head + tail + eos)[:max_length]
        rows.append(ids)
        label_rows.append(([-100] * len(head) + tail + eos)[:max_length])
    width = max(len(r) for r in rows)
    pad = tokenizer.pad_token_id
    input_ids = torch.tensor([r + [pad] * (width - len(r)) for r in rows])
    attention = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rows])
    labels = torch.tensor([r + [-100] * (width - len(r)) for r in label_rows])
    masks.append(attention)
    return model(input_ids=input_ids, attention_mask=attention, labels=labels).loss


def check_texts(
    kg: KnowledgeGraph,
    items: pd.DataFrame,
    *,
    field: str = "description",
    matcher: ValueMatcher | None = None,
) -> pd.DataFrame:
    """Fact-check existing texts (e.g. the catalog's own descriptions) against the KG: one row
    per item with ``stated`` and ``hallucinations`` (stated values the KG does not support)."""
    facts = item_facts(kg, items["item_id"].astype(str))
    by_item = {i: as_mapping(g) for i, g in facts.groupby("item_id")}
    vocabulary = value_vocabulary(kg)
    rows = []
    for item_id, title, text in zip(items["item_id"].astype(str), items["title"], items[field]):
        check = fact_check(
            str(text) if isinstance(text, str) else "",
            by_item.get(item_id, {}),
            vocabulary=vocabulary,
            title=str(title) if isinstance(title, str) else "",
            matcher=matcher,
        )
        rows.append((item_id, len(check.stated), check.hallucinations, check.unsupported))
    return pd.DataFrame(rows, columns=["item_id", "stated", "hallucinations", "unsupported"])
