"""Attribute-value extraction from product titles with a fine-tuned language model.

The extractor is a BIO token classifier (``AutoModelForTokenClassification``) over the pair
``category [SEP] title``: the model sees the product category, and only title tokens carry labels.
This module owns

- the training examples: :func:`read_labeled_jsonl` (OA-Mine / ExtractGPT JSON lines) and
  :func:`examples_from_records` (distant supervision: known ``attribute = value`` facts found in
  the item's text);
- :class:`Extractor` — a fine-tuned model + tokenizer + label map, with batched
  :meth:`Extractor.extract`; :func:`load_extractor` and :func:`extract` wrap it;
- the stage entry points :func:`train_extractor`, :func:`evaluate_extractor` and
  :func:`apply_extractor`, each returning a result dataclass that saves itself.

torch and transformers are imported inside the functions that need them, so importing this module
(and ``kgwb --help``) stays fast.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import random
import time
import warnings
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar, NamedTuple

from kgwb.device import resolve_device
from kgwb.errors import ConfigError, DataError, KgwbError, UnknownNameError
from kgwb.stage import StageConfig, StageResult, option
from kgwb.text.bio import (
    IGNORE_INDEX,
    OUTSIDE,
    Span,
    best_per_attribute,
    bio_transitions,
    decode_spans,
    locate_values,
    merge_fragments,
    tidy_spans,
    token_labels,
    viterbi_batch,
)
from kgwb.text.encoder import DEFAULT_ENCODER, load_tokenizer, quiet_loading, resolve_encoder
from kgwb.text.metrics import category_schema, slot_scores

log = logging.getLogger(__name__)

#: file in a saved extractor folder holding kgwb's label map and settings
EXTRACTOR_FILE = "kgwb_extractor.json"
#: files that mark a folder as an extractor run (older runs carry no kgwb marker)
RUN_MANIFESTS = ("metrics.json", "config.json", "model")
#: joins category and attribute in the ``category_attribute`` label scheme
_SCHEME_SEP = "||"

LABEL_SCHEMES = ("attribute", "category_attribute")
SUBWORD_MODES = ("all", "first")
REFIT_MODES = ("none", "each", "shared")

# Defaults chosen on OA-Mine (train.jsonl -> test.jsonl, CPU, seed 0; slot micro-F1 in percent):
# batch 32 / lr 1e-4 / 15 epochs under-fits (final loss 0.39, F1 72.2 with token arg-max
# decoding, 75.1 with word + Viterbi decoding); lr 4e-4 fits (loss 0.03, F1 76.7).  One label per
# category-attribute pair instead of per attribute scored 76.9 (within seed noise), so the
# simpler shared labels stay.  15 epochs keep training under 20 minutes on 2 busy CPU cores.
DEFAULT_EPOCHS = 15
DEFAULT_BATCH_SIZE = 32
DEFAULT_LR = 4e-4
#: tokens per (category, title) input: no OA-Mine title reaches 64 tokens, but 0.3% of the real
#: amazon-scientific titles pass 64 (none 128); batches are padded to their longest input only
DEFAULT_MAX_LENGTH = 128
# `kgwb extract train` trains this many seeds and averages them (OA-Mine train -> test, slot
# micro-F1, seeds 0/1/2 alone 76.1 / 77.6 / 77.4, two 78.6, three 79.2; the 286-title split
# 61.6 / 62.1 / 61.8 -> 63.5): the largest gain of the recipes tried, for 3x the training
# time.  With the tail weight average as a validation candidate and tidied values (the CLI's
# defaults since): seeds 0/1/2 alone 78.5 / 77.3 / 78.2, three 79.7.  The Python entry point
# keeps 1 (the KG build trains its distant extractor with it).
DEFAULT_CLI_ENSEMBLE = 3
# `kgwb extract train` swaps labelled values with probability 0.5 every epoch (mention
# replacement, `--augment`), chosen on validation carved from OA-Mine train: on the outer dev
# split below (146 titles) the 3-member ensemble scored 74.4 vs 73.9 without it, and each
# member on its own validation split 78.4 / 77.4 / 76.5 vs 77.8 / 75.2 / 75.1 (same seeds and
# splits).  The Python entry point keeps 0 (the KG build's distant extractor learns from
# catalog values, where a swap could pair a value with the wrong item).  With the decoding
# picked on validation as well, OA-Mine train -> test scored once: 80.5 (286-title split 65.5).
DEFAULT_CLI_AUGMENT = 0.5
# `kgwb extract train` keeps each member trained on the titles less its validation split
# (refit "none").  Refitting on all the titles was measured, and is an option only:
# on a fixed outer dev split of OA-Mine train (10% per category, seed 123; the recipes trained
# on the other 1,306 titles), 3 members each kept on its own 90% scored 73.9 slot micro-F1,
# the same 3 seeds refit on all 1,306 titles with seed 0's pick (epoch 15) 74.9 (one model:
# 72.9 / 73.4 / 72.7 -> 75.5 / 73.2 / 74.4); chosen on that, "shared" then scored 78.5 on
# OA-Mine train -> test (seed 0's pick: average of epochs 8-9, so every member stopped at
# epoch 9), below the 79.7 of "none" (why was not measured; one 146-title split picking an
# early stop for all members is a guess).
# Time: the picking run plus K runs stopped at the pick, without validation scoring (0.9x
# the time of "none" for a pick at epoch 9 of 15, 1.3x at epoch 15).
DEFAULT_CLI_REFIT = "none"


# --------------------------------------------------------------------------------------------
# training examples


@dataclass
class LabeledTitle:
    """One title with its category, target values and their character spans.

    ``targets`` maps attribute -> accepted values (for scoring); ``spans`` are those values placed
    on the text (for training); ``unplaced`` lists the ``(attribute, value)`` pairs that could not
    be placed (absent from the text, or only inside another value).
    """

    text: str
    category: str
    targets: dict[str, list[str]]
    spans: list[Span]
    unplaced: list[tuple[str, str]] = field(default_factory=list)
    item_id: str | None = None


def _labeled_title(
    text: str,
    category: str,
    targets: Mapping[str, Sequence[str]],
    *,
    occurrences: str,
    item_id: str | None = None,
) -> LabeledTitle:
    pairs = [(a, v) for a, vs in targets.items() for v in vs]
    spans, unplaced = locate_values(text, pairs, occurrences=occurrences)
    return LabeledTitle(
        text=text,
        category=category,
        targets={a: list(vs) for a, vs in targets.items()},
        spans=spans,
        unplaced=unplaced,
        item_id=item_id,
    )


def _target_values(raw: Any) -> list[str] | None:
    """OA-Mine's ``{value: score}`` (score 1 = accepted), a list, or a string -> values."""
    if isinstance(raw, str):
        values = [raw]
    elif isinstance(raw, Mapping):
        values = [v for v, score in raw.items() if score]
    elif isinstance(raw, (list, tuple)):
        values = list(raw)
    else:
        return None
    if not all(isinstance(v, str) for v in values):
        return None
    return [v for v in values if v.strip() and v.strip().lower() != "n/a"]


def _labeled_from_mapping(
    record: Mapping, *, occurrences: str, file: str | None, line: int | None
) -> LabeledTitle:
    text = record.get("input", record.get("title", record.get("text")))
    if not isinstance(text, str):
        raise DataError(
            "missing or non-text title",
            file=file,
            line=line,
            column="input",
            expected='a string under "input" (or "title"/"text")',
        )
    category = record.get("category", "")
    if category is None:
        category = ""
    if not isinstance(category, str):
        raise DataError(
            f"category is {type(category).__name__}",
            file=file,
            line=line,
            column="category",
            expected="a string",
        )
    raw_targets = record.get("target_scores", record.get("targets", {}))
    if not isinstance(raw_targets, Mapping):
        raise DataError(
            f"target_scores is {type(raw_targets).__name__}",
            file=file,
            line=line,
            column="target_scores",
            expected="an object {attribute: {value: 1}}",
        )
    targets = {}
    for attribute, raw in raw_targets.items():
        values = _target_values(raw)
        if values is None:
            raise DataError(
                f"attribute {attribute!r} has target {raw!r}",
                file=file,
                line=line,
                column="target_scores",
                expected="{value: 1}, a list of strings or a string",
            )
        targets[str(attribute)] = values
    item_id = record.get("item_id", record.get("id"))
    return _labeled_title(
        text,
        category,
        targets,
        occurrences=occurrences,
        item_id=None if item_id is None else str(item_id),
    )


def _json_lines(path: Path, what: str):
    """``(line number, parsed record)`` of each non-blank line; bad JSON names file, line, column."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file (expected {what})")
    with path.open(encoding="utf-8") as f:
        for line_no, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                yield line_no, json.loads(line)
            except json.JSONDecodeError as e:
                raise DataError(
                    f"not valid JSON ({e.msg})",
                    file=path,
                    line=line_no,
                    column=e.colno,
                    expected="one JSON object per line",
                ) from e


def read_labeled_jsonl(
    path: str | os.PathLike[str], *, occurrences: str = "first"
) -> list[LabeledTitle]:
    """Read OA-Mine / ExtractGPT JSON lines: ``{"input", "category", "target_scores"}`` per line.

    ``target_scores`` is ``{attribute: {value: 1}}``; ``n/a`` values mean "not present" and are
    dropped.  Each value is placed on the title with :func:`kgwb.text.bio.locate_values`
    (``occurrences="first"``: one best occurrence per value).  Blank lines are skipped; a bad line
    raises :class:`~kgwb.errors.DataError` naming the file, line and field.
    """
    path = Path(path)
    out = []
    for line_no, record in _json_lines(path, "JSON lines of labelled titles"):
        if not isinstance(record, Mapping):
            raise DataError(
                f"a JSON {type(record).__name__}",
                file=path,
                line=line_no,
                expected="one JSON object per line",
            )
        out.append(
            _labeled_from_mapping(record, occurrences=occurrences, file=str(path), line=line_no)
        )
    return out


_RECORD_COLUMNS = ("item_id", "text", "category", "attribute", "value")


def examples_from_records(
    records: Any, *, occurrences: str = "first", drop_unmatched: bool = False
) -> list[LabeledTitle]:
    """Training examples by distant supervision: known attribute values looked up in item text.

    ``records`` is either

    - long format — a pandas DataFrame (or an iterable of mappings) with columns
      ``item_id, text, category, attribute, value``, one row per known value; or
    - wide format — an iterable of ``(item_id, text, category, {attribute: value})`` tuples.

    Values are matched exactly first, then case-insensitively, preferring whole-word
    occurrences and longer values (see :func:`kgwb.text.bio.locate_values`).  With
    ``occurrences="first"`` (default) one occurrence per value is labelled; ``"all"`` labels every
    whole-word occurrence, which teaches the model that repeated mentions are values too but adds
    noise when a value word also appears in another sense.  Values not found in the text are kept
    in ``unplaced`` and their words stay ``O``; ``drop_unmatched=True`` drops items where no value
    was found at all (otherwise they are negatives: titles with nothing to extract).
    """
    grouped = _group_records(records)
    out = []
    for key, entry in grouped.items():
        example = _labeled_title(
            entry["text"],
            entry["category"],
            dict(entry["targets"]),
            occurrences=occurrences,
            item_id=key,
        )
        if drop_unmatched and not example.spans:
            continue
        out.append(example)
    return out


def _group_records(records: Any) -> dict[str, dict]:
    """Per item id (first-seen order): its text, category and known values by attribute."""
    grouped: dict[str, dict] = {}
    for item_id, text, category, attribute, value, where in _record_rows(records):
        if not isinstance(text, str):
            raise DataError(
                f"{where}: text is {type(text).__name__}", column="text", expected="a string"
            )
        key = str(item_id)
        entry = grouped.get(key)
        if entry is None:
            entry = grouped[key] = {
                "text": text,
                "category": "" if category is None else str(category),
                "targets": defaultdict(list),
            }
        elif entry["text"] != text:
            raise DataError(
                f"{where}: item {key!r} has two different texts",
                column="text",
                expected="one text per item_id",
            )
        if attribute is None or value is None or (isinstance(value, float) and math.isnan(value)):
            continue
        value = str(value)
        if value.strip() and value not in entry["targets"][str(attribute)]:
            entry["targets"][str(attribute)].append(value)
    return grouped


def _record_rows(records: Any) -> Iterator[tuple]:
    """``(item_id, text, category, attribute, value, where)`` per known value of ``records``
    (long or wide format, see :func:`examples_from_records`); a wide row also yields its item
    with no value."""
    try:
        import pandas as pd

        is_frame = isinstance(records, pd.DataFrame)
    except ModuleNotFoundError:  # pragma: no cover - pandas is a core dependency
        is_frame = False
    if is_frame:
        missing = [c for c in _RECORD_COLUMNS if c not in records.columns]
        if missing:
            raise DataError(
                f"records lack column(s) {', '.join(missing)}", expected=", ".join(_RECORD_COLUMNS)
            )
        for row_no, row in enumerate(
            records[list(_RECORD_COLUMNS)].itertuples(index=False), start=1
        ):
            yield (*row, f"row {row_no}")
        return
    for row_no, row in enumerate(records, start=1):
        where = f"row {row_no}"
        if isinstance(row, Mapping):
            missing = [c for c in _RECORD_COLUMNS if c not in row]
            if missing:
                raise DataError(
                    f"row {row_no} lacks {', '.join(missing)}",
                    expected=", ".join(_RECORD_COLUMNS),
                )
            yield (*(row[c] for c in _RECORD_COLUMNS), where)
        elif isinstance(row, (tuple, list)) and len(row) == 4 and isinstance(row[3], Mapping):
            item_id, text, category, values = row
            yield item_id, text, category, None, None, where
            for attribute, value in values.items():
                yield item_id, text, category, attribute, value, where
        else:
            raise DataError(
                f"row {row_no} is {type(row).__name__}",
                expected="(item_id, text, category, {attribute: value}) or a mapping with "
                + ", ".join(_RECORD_COLUMNS),
            )


def _as_examples(data: Any, *, what: str, occurrences: str = "first") -> list[LabeledTitle]:
    """A path to JSON lines, a list of :class:`LabeledTitle`, OA-Mine-like dicts, or records."""
    if isinstance(data, (str, os.PathLike)):
        return read_labeled_jsonl(data, occurrences=occurrences)
    try:
        import pandas as pd

        if isinstance(data, pd.DataFrame):
            return examples_from_records(data, occurrences=occurrences)
    except ModuleNotFoundError:  # pragma: no cover
        pass
    items = list(data)
    if not items:
        raise KgwbError(f"{what} is empty: no labelled titles to use")
    if all(isinstance(x, LabeledTitle) for x in items):
        return items
    if all(isinstance(x, Mapping) and ("input" in x or "title" in x) for x in items):
        return [
            _labeled_from_mapping(x, occurrences=occurrences, file=what, line=None) for x in items
        ]
    return examples_from_records(items, occurrences=occurrences)


# --------------------------------------------------------------------------------------------
# the model


DTYPES = ("float32", "bfloat16", "auto")


def resolve_dtype(dtype: str, device: str) -> str:
    """``float32`` or ``bfloat16``; ``auto`` picks bfloat16 where the hardware runs it natively."""
    if dtype not in DTYPES:
        raise KgwbError(f"unknown dtype {dtype!r}; choose one of: {', '.join(DTYPES)}")
    if dtype != "auto":
        return dtype
    import torch

    if device.startswith("cuda"):
        return "bfloat16" if torch.cuda.is_bf16_supported() else "float32"
    native = (
        getattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)()
        or getattr(torch.cpu, "_is_amx_tile_supported", lambda: False)()
    )
    return "bfloat16" if native else "float32"


def _label_key(scheme: str, category: str, attribute: str) -> str:
    return f"{category}{_SCHEME_SEP}{attribute}" if scheme == "category_attribute" else attribute


def _attribute_of(key: str) -> str:
    return key.split(_SCHEME_SEP, 1)[1] if _SCHEME_SEP in key else key


@dataclass
class ExtractorSettings:
    """What a saved extractor needs besides the weights (stored in ``kgwb_extractor.json``)."""

    labels: list[str]
    schema: dict[str, list[str]]
    use_category: bool = True
    label_scheme: str = "attribute"
    subwords: str = "all"
    max_length: int = DEFAULT_MAX_LENGTH
    base_model: str = DEFAULT_ENCODER
    format_version: int = 1
    #: sub-folders holding the weights of an ensemble's members ("" is the folder itself;
    #: empty list: one model)
    members: list[str] = field(default_factory=list)
    #: decoding picked on validation by :func:`train_extractor` (see :func:`pick_decoding`):
    #: spans less confident than this are dropped (0: keep all) ...
    min_confidence: float = 0.0
    #: ... and adjacent fragments of one attribute are merged (:func:`~kgwb.text.bio.merge_fragments`)
    merge_fragments: bool = False


class Extractor:
    """A fine-tuned BIO token classifier with its tokenizer, label map and category schema.

    ``restrict_to_schema`` (default on): for a known category, labels of attributes outside the
    category's schema (attributes seen with it in training) are masked before the arg-max.
    ``decode="word"`` (default): the continuation pieces of a word follow the prediction of its
    first piece, so spans never start or end inside a word; ``"token"``: every piece's own
    prediction counts (models trained with ``subwords="first"`` always decode by word).
    ``dtype="bfloat16"`` runs the network in bfloat16 (``"auto"``: when the device supports it
    natively, e.g. CPUs with AVX512-BF16 or AMX, else float32): on such a CPU about 2x the
    titles/second of float32 for about -0.15 slot micro-F1 on OA-Mine.  A freshly trained
    extractor stays float32 (its scores are the same on every machine); :meth:`load` (and so
    ``kgwb extract apply`` and ``kgwb kg build --extract-model``) defaults to ``"auto"`` for speed:
    pass ``dtype="float32"`` for bit-for-bit comparisons across machines.
    ``viterbi=True`` (default): the labels are the most probable sequence that is valid BIO
    (``I-x`` only after ``B-x``/``I-x``) instead of the per-token arg-max, which stops values
    from breaking into fragments.  On OA-Mine test, word decoding added about 1 point of slot
    micro-F1 and Viterbi about 2 more (see benchmarks/bench_extract.py).
    ``tidy=True`` (default): separator and unbalanced-bracket debris is trimmed from the edges
    of every value (:func:`kgwb.text.bio.tidy_bounds`; about +0.3 micro-F1 on OA-Mine
    validation splits).
    ``merge_fragments``: spans of one attribute parted only by white space or a joiner become
    one (:func:`kgwb.text.bio.merge_fragments`); ``min_confidence``: spans whose confidence is
    below it are then dropped (0 keeps every span).  Both default to the saved settings, which
    :func:`train_extractor` picks on validation (:func:`pick_decoding`).
    """

    def __init__(
        self,
        model,
        tokenizer,
        settings: ExtractorSettings,
        *,
        device: str | None = None,
        restrict_to_schema: bool = True,
        decode: str = "word",
        viterbi: bool = True,
        dtype: str = "float32",
        tidy: bool = True,
        min_confidence: float | None = None,
        merge_fragments: bool | None = None,
    ) -> None:
        if decode not in ("word", "token"):
            raise KgwbError(f"unknown decode {decode!r}; choose one of: token, word")
        self.models = list(model) if isinstance(model, (list, tuple)) else [model]
        self.model = self.models[0]
        self.tokenizer = tokenizer
        self.settings = settings
        self.device = resolve_device(device)
        self.restrict_to_schema = restrict_to_schema
        self.decode = decode
        self.viterbi = viterbi
        self.tidy = tidy
        self.min_confidence = (
            settings.min_confidence if min_confidence is None else float(min_confidence)
        )
        self.merge_fragments = (
            settings.merge_fragments if merge_fragments is None else bool(merge_fragments)
        )
        self.dtype = resolve_dtype(dtype, self.device)
        import torch

        for member in self.models:
            member.to(device=self.device, dtype=getattr(torch, self.dtype))
        self._masks = None
        self._bio = None
        #: how :func:`fine_tune` picked the weights (empty for a loaded extractor)
        self.training: dict = {}

    # -- persistence
    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write weights (safetensors, in the extractor's dtype), tokenizer and
        ``kgwb_extractor.json`` into ``path``."""
        from kgwb.atomic import output_dir, write_json

        path = Path(path)
        # the first model sits in the folder itself, so it stays a plain Hugging Face model
        # folder; further ensemble members go to sub-folders
        self.settings.members = (
            [""] + [f"member_{k}" for k in range(1, len(self.models))]
            if len(self.models) > 1
            else []
        )
        with output_dir(path, kind="extractor", overwrite=True, manifests=(EXTRACTOR_FILE,)) as out:
            for name, member in zip(self.settings.members or [""], self.models):
                member.save_pretrained(out / name, safe_serialization=True)
            self.tokenizer.save_pretrained(out)
            write_json(out / EXTRACTOR_FILE, asdict(self.settings))
        return path

    @classmethod
    def load(
        cls,
        path: str | os.PathLike[str],
        *,
        device: str | None = None,
        dtype: str = "auto",
        **options: Any,
    ) -> Extractor:
        """Load a folder written by :meth:`save` (or by :func:`train_extractor`: its ``model/``).

        ``dtype`` defaults to ``"auto"`` (bfloat16 where the hardware runs it natively);
        ``options``: ``restrict_to_schema``, ``decode``, ``viterbi`` (see the class)."""
        from transformers import AutoModelForTokenClassification

        path = Path(path)
        if (path / "model" / EXTRACTOR_FILE).is_file() and not (path / EXTRACTOR_FILE).is_file():
            path = path / "model"
        settings_file = path / EXTRACTOR_FILE
        if not settings_file.is_file():
            raise FileNotFoundError(
                f"{settings_file}: no such file (expected a folder written by `kgwb extract train`, "
                f"which keeps the model in OUT/model)"
            )
        settings = ExtractorSettings(**json.loads(settings_file.read_text(encoding="utf-8")))
        with quiet_loading():
            models = [
                AutoModelForTokenClassification.from_pretrained(path / name).eval()
                for name in settings.members or [""]
            ]
        tokenizer = load_tokenizer(path)
        return cls(models, tokenizer, settings, device=device, dtype=dtype, **options)

    # -- inference
    def _allowed_mask(self):
        """Additive logit mask per known category (row 0: no restriction)."""
        import torch

        if self._masks is None:
            labels = self.settings.labels
            categories = sorted(self.settings.schema)
            masks = torch.zeros(len(categories) + 1, len(labels))
            for row, category in enumerate(categories, start=1):
                allowed = set(self.settings.schema[category])
                for j, label in enumerate(labels):
                    if label == OUTSIDE:
                        continue
                    key = label[2:]
                    ok = (
                        key.split(_SCHEME_SEP, 1)[0] == category and _attribute_of(key) in allowed
                        if self.settings.label_scheme == "category_attribute"
                        else key in allowed
                    )
                    if not ok:
                        masks[row, j] = float("-inf")
            self._masks = (masks.to(self.device), {c: i for i, c in enumerate(categories, start=1)})
        return self._masks

    def encode(self, titles: Sequence[str], categories: Sequence[str] | None):
        """Tokenize (category, title) pairs, truncating the title to ``max_length`` tokens."""
        kwargs = dict(
            truncation="longest_first" if self.settings.use_category else True,
            max_length=self.settings.max_length,
            return_offsets_mapping=True,
        )
        if self.settings.use_category:
            return self.tokenizer(list(categories), list(titles), **kwargs)
        return self.tokenizer(list(titles), **kwargs)

    def extract(
        self,
        titles: Iterable[str],
        categories: Iterable[str] | str | None = None,
        *,
        batch_size: int = 64,
    ) -> list[list[dict]]:
        """Spans per title: ``{attribute, value, start, end, confidence}``, ``value == title[start:end]``.

        Titles are tokenized once, sorted by length and run in batches padded to the longest
        title of the batch (``torch.inference_mode``); results come back in input order.
        ``confidence`` is the mean, over the span's tokens, of the softmax probability of the
        label chosen for the token (with word decoding a continuation piece counts with its
        word's first piece); when one
        attribute gets several spans, callers keep the most confident (see
        :func:`kgwb.text.bio.best_per_attribute`).  Empty titles give no spans; titles longer than ``max_length`` tokens
        are cut there, with one warning saying how many were.
        """
        import torch

        texts, cats = self._texts_and_categories(titles, categories)
        n = len(texts)
        results: list[list[dict]] = [[] for _ in range(n)]
        todo = [i for i in range(n) if texts[i].strip()]
        if not todo:
            return results
        enc = self.encode([texts[i] for i in todo], [cats[i] for i in todo])
        title_segment = 1 if self.settings.use_category else 0
        self._warn_truncated(enc, [texts[i] for i in todo], n, title_segment)
        masks, mask_row = self._allowed_mask()
        order = sorted(range(len(todo)), key=lambda k: len(enc["input_ids"][k]))
        keys = [key for key in ("input_ids", "token_type_ids", "attention_mask") if key in enc]
        for member in self.models:
            member.eval()
        with torch.inference_mode():
            for b in range(0, len(order), batch_size):
                chunk = order[b : b + batch_size]
                batch = self.tokenizer.pad(
                    [{key: enc[key][k] for key in keys} for k in chunk], return_tensors="pt"
                )
                batch = {key: value.to(self.device) for key, value in batch.items()}
                rows = None
                if self.restrict_to_schema:
                    rows = torch.tensor(
                        [mask_row.get(cats[todo[k]], 0) for k in chunk], device=self.device
                    )
                log_probs = self._log_probs(
                    batch, masks[rows].unsqueeze(1) if rows is not None else None
                )
                probs, predicted = log_probs.exp().max(-1)
                probs, predicted = probs.cpu().tolist(), predicted.cpu().tolist()
                if self.viterbi:
                    self._constrain(
                        enc, chunk, log_probs.cpu().numpy(), predicted, probs, title_segment
                    )
                for row, k in enumerate(chunk):
                    results[todo[k]] = self._spans(
                        texts[todo[k]], enc, k, predicted[row], probs[row], title_segment
                    )
        return results

    def _texts_and_categories(
        self, titles: Iterable[str], categories: Iterable[str] | str | None
    ) -> tuple[list[str], list[str]]:
        """The titles as strings (missing ones empty) and one category per title."""
        texts = [
            "" if t is None or (isinstance(t, float) and math.isnan(t)) else str(t) for t in titles
        ]
        n = len(texts)
        if categories is None or isinstance(categories, str):
            if self.settings.use_category and categories is None:
                raise KgwbError(
                    "this extractor was trained with product categories: pass one category per "
                    "title (categories=[...]) or one string for all"
                )
            return texts, [categories or ""] * n
        cats = ["" if c is None else str(c) for c in categories]
        if len(cats) != n:
            raise KgwbError(f"{n} titles but {len(cats)} categories: pass one category per title")
        return texts, cats

    def _warn_truncated(self, enc, texts: list[str], n: int, title_segment: int) -> None:
        """One warning saying how many of the ``n`` texts were cut at ``max_length``."""
        truncated = 0
        for k, text in enumerate(texts):
            if enc.encodings[k].overflowing:
                ends = [
                    o[1]
                    for o, s in zip(enc["offset_mapping"][k], enc.sequence_ids(k))
                    if s == title_segment
                ]
                if not ends or max(ends) < len(text.rstrip()):
                    truncated += 1
        if truncated:
            warnings.warn(
                f"{truncated} of {n} texts were longer than max_length={self.settings.max_length} "
                f"tokens and were truncated; values after the cut are not extracted",
                stacklevel=3,
            )

    def _log_probs(self, batch, mask):
        """Label log-probabilities per token: the mean of the members' probabilities (one
        member: its log-softmax), after masking labels outside the category's schema."""
        total = None
        for member in self.models:
            logits = member(**batch).logits.float()
            if mask is not None:
                logits = logits + mask
            log_probs = logits.log_softmax(-1)
            if len(self.models) == 1:
                return log_probs
            total = log_probs.exp() if total is None else total + log_probs.exp()
        return (total / len(self.models)).log()

    def _transitions(self):
        if self._bio is None:
            self._bio = bio_transitions(self.settings.labels)
        return self._bio

    def _constrain(self, enc, chunk, log_probs, predicted, probs, title_segment) -> None:
        """Replace the arg-max labels of the title's (first-piece) tokens of every row of a batch
        by the row's most probable valid BIO path (one batched Viterbi pass)."""
        import numpy as np

        by_word = self.settings.subwords == "first" or self.decode == "word"
        positions: list[list[int]] = []
        for k in chunk:
            sequence_ids, word_ids = enc.sequence_ids(k), enc.word_ids(k)
            kept, previous_word = [], None
            for t, segment in enumerate(sequence_ids):
                if segment != title_segment:
                    previous_word = None
                    continue
                if by_word and word_ids[t] is not None and word_ids[t] == previous_word:
                    continue
                previous_word = word_ids[t]
                kept.append(t)
            positions.append(kept)
        lengths = np.array([len(p) for p in positions])
        steps = int(lengths.max(initial=0))
        if steps == 0:
            return
        index = np.zeros((len(chunk), steps), dtype=np.int64)
        for row, kept in enumerate(positions):
            index[row, : len(kept)] = kept
        gathered = np.take_along_axis(log_probs, index[:, :, None], axis=1)
        start, transition = self._transitions()
        paths = viterbi_batch(gathered, lengths, start, transition)
        for row, kept in enumerate(positions):
            for step, t in enumerate(kept):
                label = int(paths[row, step])
                predicted[row][t] = label
                probs[row][t] = math.exp(float(log_probs[row, t, label]))

    def _spans(
        self, text: str, enc, k: int, predicted: list[int], probs: list[float], title_segment: int
    ) -> list[dict]:
        sequence_ids = enc.sequence_ids(k)
        offsets = enc["offset_mapping"][k]
        word_ids = enc.word_ids(k)
        token_labels_: list[str | None] = []
        confidences: list[float] = []
        word_label, word_prob, previous_word = OUTSIDE, 1.0, None
        for t in range(len(offsets)):
            if sequence_ids[t] != title_segment:
                token_labels_.append(None)
                confidences.append(1.0)
                previous_word = None
                continue
            label, prob = self.settings.labels[predicted[t]], probs[t]
            if self.settings.subwords == "first" or self.decode == "word":
                if word_ids[t] is not None and word_ids[t] == previous_word:
                    # continuation piece: same attribute as the word's first piece
                    _, _, key = word_label.partition("-")
                    label, prob = (f"I-{key}" if key else OUTSIDE), word_prob
                else:
                    word_label, word_prob, previous_word = label, prob, word_ids[t]
            token_labels_.append(label)
            confidences.append(prob)
        spans = decode_spans(text, token_labels_, offsets, confidences=confidences)
        if self.tidy:
            spans = tidy_spans(text, spans)
        if self.merge_fragments:
            spans = merge_fragments(text, spans)
        if self.min_confidence > 0:
            spans = [s for s in spans if s["confidence"] >= self.min_confidence]
        for span in spans:
            span["attribute"] = _attribute_of(span["attribute"])
        return spans


def load_extractor(
    model_dir: str | os.PathLike[str], *, device: str | None = None, **options: Any
) -> Extractor:
    """Load a fine-tuned extractor folder (``OUT/model`` of ``kgwb extract train``, or ``OUT``).

    ``options`` go to :class:`Extractor` (``restrict_to_schema``, ``decode``, ``viterbi``,
    ``dtype``)."""
    return Extractor.load(model_dir, device=device, **options)


def extract(
    titles: Iterable[str],
    categories: Iterable[str] | str | None = None,
    *,
    model: Extractor | str | os.PathLike[str],
    batch_size: int = 64,
) -> list[list[dict]]:
    """Extract attribute-value spans from ``titles`` (see :meth:`Extractor.extract`).

    ``model`` is a loaded :class:`Extractor` or the folder of one (loaded on every call: load it
    once with :func:`load_extractor` when calling repeatedly).
    """
    extractor = model if isinstance(model, Extractor) else load_extractor(model)
    return extractor.extract(titles, categories, batch_size=batch_size)


# --------------------------------------------------------------------------------------------
# training


@dataclass
class ExtractorConfig(StageConfig):
    """Every setting of one training run (recorded in ``metrics.json`` and ``config.json``);
    the flags of ``kgwb extract train`` come from these fields."""

    model: str = option(
        DEFAULT_ENCODER, "encoder to start from: a Hugging Face name or local folder"
    )
    epochs: int = option(DEFAULT_EPOCHS, "training epochs")
    batch_size: int = option(DEFAULT_BATCH_SIZE, "titles per batch")
    lr: float = option(DEFAULT_LR, "peak learning rate")
    seed: int = option(0, "random seed")
    max_length: int = option(DEFAULT_MAX_LENGTH, "tokens per input")
    weight_decay: float = option(0.01, "AdamW weight decay (none on biases and norms)")
    warmup_ratio: float = option(0.1, "share of the steps with a linear learning-rate warm-up")
    max_grad_norm: float = option(1.0, "gradient clipping norm")
    use_category: bool = option(True, "give the model the product category with the title")
    label_scheme: str = option(
        "attribute",
        "one label per attribute name (attribute) or per category-attribute pair",
        choices=LABEL_SCHEMES,
    )
    subwords: str = option(
        "all", "label every word piece of a value, or the first only", choices=SUBWORD_MODES
    )
    occurrences: str = option(
        "first", "label the first occurrence of a known value, or all", choices=("first", "all")
    )
    restrict_to_schema: bool = option(
        True, "predict only the attributes seen in the title's category"
    )
    eval_batch_size: int = option(64, "titles per batch when scoring")
    device: str = option("auto", "auto (cuda when present), cpu or cuda")
    num_threads: int | None = option(None, "torch CPU threads", flag="--threads", metavar="THREADS")
    #: share of the training titles held out (per category, seeded) to pick the best epoch;
    #: 0 = no validation, the last epoch is kept (ignored when validation titles are given)
    valid_fraction: float = option(
        0.0,
        "hold out this share of each category's --train titles to pick the best epoch "
        "(e.g. 0.1; 0: keep the last epoch)",
    )
    #: models trained with seeds seed, seed+1, ... (each on its own validation split) whose
    #: label probabilities are averaged before decoding
    ensemble: int = option(
        1,
        "train this many models (seeds SEED, SEED+1, ...) and average their predictions "
        "(3: about +3 slot micro-F1 on OA-Mine for 3x the time; 1 = one model)",
    )
    #: with validation titles, also score the running average of the weights of the epochs
    #: from the middle of the schedule on (see :class:`_TailAverage`) and keep it when it
    #: beats every single epoch on validation
    average_weights: bool = option(
        True,
        "with validation, also try the average of the second half's epoch weights as a "
        "candidate next to the single epochs (keep whichever is best on validation)",
    )
    #: with ``valid_fraction``: retrain on all the training titles once validation has picked
    #: the weights (an epoch or a tail average), stopping the same schedule at that epoch
    refit: str = option(
        "none",
        "with --valid-fraction: none (keep the models trained on the rest), each (every member "
        "picks on its own split, then retrains on all titles up to its pick) or shared (one "
        "validation run picks for all members, each then trains on all titles)",
        choices=REFIT_MODES,
    )
    #: mention replacement (:func:`replace_mentions`): every epoch sees each training title
    #: with each labelled value swapped, with this probability, for another value of the same
    #: attribute in the same category from the training titles (0: the titles as they are)
    augment: float = option(
        0.0,
        "mention replacement: each epoch, swap each labelled value for another training "
        "value of the same category and attribute with this probability (0: off)",
    )
    #: with validation titles, pick the decoding of the saved extractor there (see
    #: :func:`pick_decoding`); off: ``min_confidence`` and ``merge_fragments`` as given
    pick_decoding: bool = option(
        True,
        "with validation, pick on the validation titles whether adjacent fragments of one "
        "attribute are merged and the confidence below which predicted values are dropped "
        "(neither, when nothing beats that)",
    )
    min_confidence: float = option(
        0.0,
        "with --no-pick-decoding (or no validation): drop predicted values less confident "
        "than this (0 = keep all)",
    )
    merge_fragments: bool = option(
        False,
        "with --no-pick-decoding (or no validation): merge values of one attribute parted "
        "only by white space or - / & +",
    )
    #: the labelled titles when they are files (recorded; data given in memory is not)
    train: str | None = option(None, "labelled titles (JSON lines)", required=True)
    test: str | None = option(None, "labelled titles to score on (JSON lines)")
    valid: str | None = option(None, "labelled titles for picking the best epoch (JSON lines)")

    def validate(self) -> None:
        if self.label_scheme not in LABEL_SCHEMES:
            raise ConfigError(
                f"unknown label_scheme {self.label_scheme!r}; choose one of: "
                f"{', '.join(LABEL_SCHEMES)}"
            )
        if self.subwords not in SUBWORD_MODES:
            raise ConfigError(
                f"unknown subwords {self.subwords!r}; choose one of: {', '.join(SUBWORD_MODES)}"
            )
        if self.refit not in REFIT_MODES:
            raise ConfigError(
                f"unknown refit {self.refit!r}; choose one of: {', '.join(REFIT_MODES)}"
            )
        if not 0.0 <= self.augment <= 1.0:
            raise ConfigError(f"augment must be a probability between 0 and 1, not {self.augment}")
        if self.ensemble < 1:
            raise ConfigError(f"ensemble must be at least 1 (models to train), not {self.ensemble}")
        if not 0.0 <= self.min_confidence < 1.0:
            raise ConfigError(
                f"min_confidence must be at least 0 and below 1, not {self.min_confidence}"
            )


def _encode_training(
    tokenizer,
    examples: Sequence[LabeledTitle],
    config: ExtractorConfig,
    label2id: Mapping[str, int],
) -> list[dict]:
    texts = [e.text for e in examples]
    kwargs = dict(max_length=config.max_length, return_offsets_mapping=True)
    if config.use_category:
        enc = tokenizer([e.category for e in examples], texts, truncation="longest_first", **kwargs)
    else:
        enc = tokenizer(texts, truncation=True, **kwargs)
    title_segment = 1 if config.use_category else 0
    features = []
    for k, example in enumerate(examples):
        spans = [
            Span(
                s.start,
                s.end,
                _label_key(config.label_scheme, example.category, s.attribute),
                s.value,
            )
            for s in example.spans
        ]
        in_text = [s == title_segment for s in enc.sequence_ids(k)]
        labels = token_labels(
            spans,
            enc["offset_mapping"][k],
            in_text,
            word_ids=enc.word_ids(k),
            subwords=config.subwords,
        )
        feature = {
            key: enc[key][k]
            for key in ("input_ids", "token_type_ids", "attention_mask")
            if key in enc
        }
        feature["labels"] = [IGNORE_INDEX if lab is None else label2id[lab] for lab in labels]
        features.append(feature)
    return features


def mention_pools(examples: Sequence[LabeledTitle]) -> dict[tuple[str, str], list[str]]:
    """Every labelled value's text per ``(category, attribute)``, one entry per occurrence
    (so a swap draws values as often as the titles state them)."""
    pools: dict[tuple[str, str], list[str]] = defaultdict(list)
    for e in examples:
        for s in e.spans:
            pools[(e.category, s.attribute)].append(e.text[s.start : s.end])
    return dict(pools)


def replace_mentions(
    example: LabeledTitle,
    pools: Mapping[tuple[str, str], Sequence[str]],
    rng: random.Random,
    probability: float,
) -> LabeledTitle:
    """``example`` with each labelled value, with ``probability``, replaced by a value drawn
    from ``pools`` for its category and attribute (mention replacement, Dai & Adel, COLING
    2020); the spans move with the text.  Values without a pool stay as they are."""
    text, out, spans, at = example.text, [], [], 0
    for s in sorted(example.spans, key=lambda s: s.start):
        out.append(text[at : s.start])
        value = text[s.start : s.end]
        pool = pools.get((example.category, s.attribute))
        if pool and rng.random() < probability:
            value = rng.choice(pool)
        start = sum(map(len, out))
        out.append(value)
        spans.append(Span(start, start + len(value), s.attribute, value))
        at = s.end
    out.append(text[at:])
    return LabeledTitle(
        text="".join(out), category=example.category, targets=example.targets, spans=spans
    )


def _length_bucketed_batches(
    lengths: Sequence[int], batch_size: int, rng: random.Random
) -> list[list[int]]:
    """Shuffled batches of similar length: shuffle, sort within pools of 50 batches, split, shuffle."""
    index = list(range(len(lengths)))
    rng.shuffle(index)
    pool = batch_size * 50
    batches = []
    for p in range(0, len(index), pool):
        part = sorted(index[p : p + pool], key=lambda i: lengths[i])
        batches.extend(part[b : b + batch_size] for b in range(0, len(part), batch_size))
    rng.shuffle(batches)
    return batches


def _label_space(
    examples: Sequence[LabeledTitle], scheme: str
) -> tuple[list[str], dict[str, list[str]]]:
    keys = sorted({_label_key(scheme, e.category, s.attribute) for e in examples for s in e.spans})
    labels = [OUTSIDE] + [f"{p}-{k}" for k in keys for p in ("B", "I")]
    schema = category_schema([e.category for e in examples], [e.targets for e in examples])
    return labels, {c: sorted(a) for c, a in schema.items()}


def split_validation(
    examples: Sequence[LabeledTitle], fraction: float, seed: int = 0
) -> tuple[list[LabeledTitle], list[LabeledTitle]]:
    """``(train, valid)``: about ``fraction`` of each category's titles held out, chosen with
    ``random.Random(seed)``; categories with fewer than 2 titles stay whole in train."""
    if not 0.0 < fraction < 1.0:
        raise KgwbError(f"valid_fraction must be between 0 and 1 (exclusive), not {fraction}")
    by_category: dict[str, list[int]] = defaultdict(list)
    for i, e in enumerate(examples):
        by_category[e.category].append(i)
    rng = random.Random(seed)
    held: set[int] = set()
    for category in sorted(by_category):
        index = by_category[category]
        if len(index) < 2:
            continue
        rng.shuffle(index)
        held.update(index[: max(1, round(fraction * len(index)))])
    train = [e for i, e in enumerate(examples) if i not in held]
    valid = [e for i, e in enumerate(examples) if i in held]
    return train, valid


class FineTuned(NamedTuple):
    """What :func:`fine_tune` returns (unpacks as the 4-tuple it used to be)."""

    extractor: Extractor
    losses: list[float]  # mean training loss per epoch
    seconds: float
    valid_curve: list[float]  # validation micro-F1 per epoch (empty without validation)


class _TailAverage:
    """Running uniform average of the weights at the end of every epoch from ``start`` on
    (stochastic weight averaging over the tail of a linearly decaying schedule).

    Fine-tuning on a few thousand titles ends on a noisy plateau (validation micro-F1 moves by
    about a point from epoch to epoch); the average of the plateau's weights is one model, as
    fast as any of them.  :func:`fine_tune` scores it on validation after every epoch, like
    the epochs themselves, and keeps whichever is best there."""

    def __init__(self, epochs: int, start: int | None = None) -> None:
        self.start = max(2, epochs // 2 + 1) if start is None else start
        self.first: int | None = None
        self.count = 0
        self.state: dict | None = None
        self.curve: list[float] = []

    def add(self, model, epoch: int) -> bool:
        """Fold in the current weights (from epoch ``start`` on); True once two or more are in."""
        if epoch < self.start:
            return False
        current = model.state_dict()
        if self.state is None:
            self.state = {k: v.detach().clone() for k, v in current.items()}
            self.first = epoch
        else:
            for key, value in current.items():
                if value.is_floating_point():
                    self.state[key].add_(
                        value.detach() - self.state[key], alpha=1 / (self.count + 1)
                    )
        self.count += 1
        return self.count >= 2

    def score(self, model, scorer) -> float:
        """``scorer()`` with the averaged weights loaded; the model's own weights are restored."""
        backup = {k: v.detach().clone() for k, v in model.state_dict().items()}
        model.load_state_dict(self.state)
        try:
            value = scorer()
        finally:
            model.load_state_dict(backup)
            model.train()
        self.curve.append(value)
        return value


def fine_tune(
    examples: Sequence[LabeledTitle],
    config: ExtractorConfig,
    *,
    valid: Sequence[LabeledTitle] | None = None,
    schema_examples: Sequence[LabeledTitle] = (),
    label_examples: Sequence[LabeledTitle] | None = None,
    pick: Pick | None = None,
) -> FineTuned:
    """Fine-tune a token classifier on ``examples``; returns (extractor, mean loss per epoch,
    seconds, validation micro-F1 per epoch).

    With ``valid`` titles the model is scored (slot micro-F1) after every epoch and the weights
    of the best epoch (the earliest on ties) are the ones returned; ``label_examples`` (default
    ``examples``) fix the label map and category schema, so that models trained on different
    subsets of one training set share them (an ensemble); ``schema_examples`` add to
    the category schema used for that scoring (e.g. the test titles' categories).
    ``pick`` (a :class:`Pick` made on validation by an earlier run; ``valid`` is then not
    used) refits: the same schedule, stopped at the picked epoch, keeping the picked weights.

    A plain loop rather than ``transformers.Trainer``: the pieces that match it come from
    transformers (``Trainer``'s weight-decay groups through ``get_parameter_names``,
    ``get_linear_schedule_with_warmup``, ``DataCollatorForTokenClassification``); the loop
    itself keeps length-bucketed batches with its own ``random.Random(seed)`` (the Trainer's
    sampler draws from torch's generator, so the same seed would give other numbers), the
    fused AdamW and best-epoch selection on slot micro-F1 in one pass.
    ``transformers.set_seed(config.seed)`` seeds python, numpy and torch (the classifier
    head's initialisation and dropout), so the same seed on CPU gives the same numbers.
    """
    import torch
    from transformers import DataCollatorForTokenClassification, set_seed

    config.validate()
    if config.num_threads:
        torch.set_num_threads(config.num_threads)
    if not any(e.spans for e in examples):
        raise KgwbError("no training title has a value that occurs in its text: nothing to learn")
    set_seed(config.seed)
    encoder = resolve_encoder(config.model)
    tokenizer = load_tokenizer(encoder)
    labels, schema = _label_space(
        examples if label_examples is None else label_examples, config.label_scheme
    )
    label2id = {label: i for i, label in enumerate(labels)}
    model = _token_classifier(encoder, labels, label2id)
    device = resolve_device(config.device)
    model.to(device)

    features = _encode_training(tokenizer, examples, config, label2id)
    collator = DataCollatorForTokenClassification(tokenizer, return_tensors="pt")
    optimizer, scheduler = _optimizer_and_schedule(
        model, config, math.ceil(len(features) / config.batch_size) * config.epochs
    )
    settings = ExtractorSettings(
        labels=labels,
        schema=schema,
        use_category=config.use_category,
        label_scheme=config.label_scheme,
        subwords=config.subwords,
        max_length=config.max_length,
        base_model=str(config.model),
    )
    extractor = Extractor(
        model,
        tokenizer,
        settings,
        device=device,
        restrict_to_schema=config.restrict_to_schema,
        dtype="float32",
    )
    augmenter = None
    if config.augment:
        pools = mention_pools(examples)

        def augmenter(epoch: int) -> list[dict]:
            rng = random.Random(config.seed * 1_000_003 + epoch)
            swapped = [replace_mentions(e, pools, rng, config.augment) for e in examples]
            return _encode_training(tokenizer, swapped, config, label2id)

    started = time.perf_counter()
    losses, valid_curve = _run_epochs(
        extractor,
        _Training(collator, features, optimizer, scheduler),
        config,
        valid=valid,
        schema=list(examples) + list(schema_examples),
        pick=pick,
        augmenter=augmenter,
    )
    return FineTuned(extractor, losses, time.perf_counter() - started, valid_curve)


class _Training(NamedTuple):
    """What one fine-tuning run steps through: batches are collated from ``features``."""

    collator: Any
    features: list[dict]
    optimizer: Any
    scheduler: Any


class Pick(NamedTuple):
    """The weights validation chose: those at the end of ``epoch``, or (``averaged_from``
    set) the average of the weights at the end of epochs ``averaged_from`` .. ``epoch``."""

    epoch: int
    averaged_from: int | None = None

    def __str__(self) -> str:
        if self.averaged_from is None:
            return f"epoch {self.epoch}"
        return f"average of epochs {self.averaged_from}-{self.epoch}"


def _run_epochs(
    extractor: Extractor,
    training: _Training,
    config: ExtractorConfig,
    *,
    valid: Sequence[LabeledTitle] | None,
    schema: list[LabeledTitle],
    pick: Pick | None = None,
    augmenter=None,
) -> tuple[list[float], list[float]]:
    """``config.epochs`` passes over the length-bucketed batches; with ``valid`` titles the
    weights of the best epoch (the earliest on ties) are restored at the end.  With ``pick``
    (a refit: no validation) training stops at ``pick.epoch`` of the same schedule and keeps
    the weights ``pick`` names.  ``augmenter(epoch)`` (mention replacement) gives each epoch
    its own features.  Returns the mean loss and the validation micro-F1 per epoch."""
    collator, features, optimizer, scheduler = training
    model, device = extractor.model, extractor.device
    rng = random.Random(config.seed)
    lengths = [len(f["input_ids"]) for f in features]
    losses: list[float] = []
    valid_curve: list[float] = []
    best_state, best_score = None, -math.inf
    tail, selected = _TailAverage(config.epochs), None
    if pick is not None:
        valid, selected = None, pick
        tail = _TailAverage(config.epochs, start=pick.averaged_from or pick.epoch + 1)
    started = time.perf_counter()
    model.train()
    for epoch in range(1, (pick.epoch if pick is not None else config.epochs) + 1):
        total, count = 0.0, 0
        if augmenter is not None:
            features = augmenter(epoch)
            lengths = [len(f["input_ids"]) for f in features]
        for batch_index in _length_bucketed_batches(lengths, config.batch_size, rng):
            batch = collator([features[i] for i in batch_index])
            loss = _train_step(model, batch, optimizer, scheduler, config.max_grad_norm, device)
            total += loss * len(batch_index)
            count += len(batch_index)
        losses.append(total / count)
        note = ""
        if pick is not None:
            tail.add(model, epoch)
        elif valid:
            score = _valid_score(extractor, valid, schema, config)
            valid_curve.append(score)
            if score > best_score:
                best_score, selected = score, Pick(epoch)
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            if config.average_weights and tail.add(model, epoch):
                averaged = tail.score(
                    model,
                    lambda: _valid_score(extractor, valid, schema, config),
                )
                if averaged > best_score:
                    best_score, selected = averaged, Pick(epoch, tail.first)
                    best_state = {k: v.clone() for k, v in tail.state.items()}
                note = f", average of epochs {tail.first}-{epoch} {averaged:.2f}"
            note = f", valid micro-F1 {score:.2f}{note} (best {best_score:.2f}: {selected})"
            model.train()
        log.info(
            "epoch %d/%d loss %.4f%s (%.0f s)",
            epoch,
            config.epochs,
            losses[-1],
            note,
            time.perf_counter() - started,
        )
    if pick is not None and pick.averaged_from is not None:
        best_state = tail.state
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    extractor.training = {
        "selected": None if selected is None else str(selected),
        "pick": selected,
        "refit": pick is not None,
        "valid_average_curve": [] if pick is not None else tail.curve,
    }
    return losses, valid_curve


def _token_classifier(encoder: str, labels: list[str], label2id: dict[str, int]):
    from transformers import AutoModelForTokenClassification

    with quiet_loading():  # "newly initialized classifier weights" is expected here
        return AutoModelForTokenClassification.from_pretrained(
            encoder,
            num_labels=len(labels),
            id2label=dict(enumerate(labels)),
            label2id=label2id,
        )


def _optimizer_and_schedule(model, config: ExtractorConfig, total_steps: int):
    """AdamW with ``transformers.Trainer``'s weight-decay groups (none on biases and inside
    LayerNorm layers: ``get_parameter_names``) and a linear warm-up then linear decay."""
    import torch
    from transformers import get_linear_schedule_with_warmup
    from transformers.pytorch_utils import ALL_LAYERNORM_LAYERS
    from transformers.trainer_pt_utils import get_parameter_names

    # (``Trainer.get_decay_parameter_names`` gives the same groups but importing the Trainer
    # costs about 4 s per run)
    decay = {n for n in get_parameter_names(model, ALL_LAYERNORM_LAYERS) if "bias" not in n}
    groups = [
        {
            "params": [p for n, p in model.named_parameters() if n in decay],
            "weight_decay": config.weight_decay,
        },
        {
            "params": [p for n, p in model.named_parameters() if n not in decay],
            "weight_decay": 0.0,
        },
    ]
    # the fused kernel (CPU and CUDA since torch 2.4) makes the optimizer step several times
    # cheaper than the per-tensor loop, which matters on a 22M-parameter model and small batches
    try:
        optimizer = torch.optim.AdamW(groups, lr=config.lr, fused=True)
    except (RuntimeError, TypeError):
        optimizer = torch.optim.AdamW(groups, lr=config.lr)
    scheduler = get_linear_schedule_with_warmup(
        optimizer, int(config.warmup_ratio * total_steps), total_steps
    )
    return optimizer, scheduler


def _train_step(model, batch, optimizer, scheduler, max_grad_norm: float, device) -> float:
    """One optimisation step on ``batch`` (clipped gradients); returns the batch's loss."""
    import torch

    batch = {key: value.to(device) for key, value in batch.items()}
    loss = model(**batch).loss
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
    optimizer.step()
    scheduler.step()
    return loss.item()


def _valid_score(
    extractor: Extractor, valid: Sequence[LabeledTitle], schema: list, config: ExtractorConfig
) -> float:
    """Slot micro-F1 on the validation titles (category schema from ``schema`` too)."""
    return evaluate_extractor(
        model=extractor, test=valid, train=schema, batch_size=config.eval_batch_size
    ).metrics["micro_f1"]


# --------------------------------------------------------------------------------------------
# stage entry points and their results


def _environment() -> dict:
    from kgwb.runinfo import environment_info

    return environment_info()


def _torch_threads() -> int:
    import torch

    return torch.get_num_threads()


def _write_json(path: Path, obj: Any) -> None:
    from kgwb.atomic import write_json

    write_json(path, obj, ensure_ascii=False)


@dataclass
class ExtractorEvalResult:
    """Slot scores of an extractor on labelled titles, with its predictions."""

    metrics: dict
    predictions: list[dict] = field(repr=False)

    def save(self, out_dir: str | os.PathLike[str]) -> Path:
        """Write ``metrics.json`` and ``predictions.jsonl`` into ``out_dir``."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        _write_json(out / "metrics.json", self.metrics)
        _write_jsonl(out / "predictions.jsonl", self.predictions)
        return out


def _write_jsonl(path: Path, rows: Iterable[Mapping]) -> None:
    from kgwb.atomic import atomic_file

    with atomic_file(path) as tmp, tmp.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


def evaluate_extractor(
    *,
    model: Extractor | str | os.PathLike[str],
    test: Any,
    train: Any = None,
    batch_size: int = 64,
    unit: str = "percent",
) -> ExtractorEvalResult:
    """Slot micro-F1 (:mod:`kgwb.text.metrics`) of ``model`` on labelled ``test`` titles.

    The category schema is the attributes seen per category in the targets of ``test`` and, when
    given, ``train``.  Several spans of one attribute in a title: the most confident one is the
    slot's prediction.  Also records ``titles_per_second`` of the extraction.
    """
    extractor = model if isinstance(model, Extractor) else load_extractor(model)
    test_examples = _as_examples(test, what="test")
    train_examples = _as_examples(train, what="train") if train is not None else []
    everything = list(train_examples) + list(test_examples)
    schema = category_schema([e.category for e in everything], [e.targets for e in everything])
    started = time.perf_counter()
    spans = extractor.extract(
        [e.text for e in test_examples], [e.category for e in test_examples], batch_size=batch_size
    )
    seconds = time.perf_counter() - started
    predictions = [best_per_attribute(s) for s in spans]
    scores = slot_scores(
        [e.targets for e in test_examples],
        predictions,
        [e.category for e in test_examples],
        schema=schema,
        unit=unit,
    )
    metrics = scores.to_dict()
    metrics["n_test"] = len(test_examples)
    metrics["inference_seconds"] = round(seconds, 3)
    metrics["titles_per_second"] = round(len(test_examples) / seconds, 2) if seconds > 0 else None
    rows = [
        {
            **({"item_id": e.item_id} if e.item_id is not None else {}),
            "input": e.text,
            "category": e.category,
            "target": e.targets,
            "prediction": p,
            "spans": s,
        }
        for e, p, s in zip(test_examples, predictions, spans)
    ]
    return ExtractorEvalResult(metrics=metrics, predictions=rows)


@dataclass(kw_only=True)
class ExtractorTrainResult(StageResult):
    """A fine-tuned extractor, its training curve and (with a test set) its slot scores.

    ``save(out_dir)`` writes ``metrics.json`` (scores, timings, seed, model, epochs, config,
    package versions; the stage record, written last), ``config.json``,
    ``test_predictions.jsonl`` (with a test set) and the model under ``out_dir/model``
    (safetensors weights, tokenizer, ``kgwb_extractor.json``).
    """

    STAGE: ClassVar[str] = "extract"
    RECORD: ClassVar[str] = "metrics.json"

    config: ExtractorConfig
    losses: list[float]
    train_seconds: float
    n_train: int
    n_train_values: int
    n_train_unplaced: int
    evaluation: ExtractorEvalResult | None
    extractor: Extractor = field(repr=False)
    n_valid: int = 0
    valid_curve: list[float] = field(default_factory=list)
    inference: dict | None = None
    environment: dict = field(default_factory=dict, repr=False)
    out_dir: Path | None = None
    members: list[dict] = field(default_factory=list)
    #: the decoding settings and how they were chosen (see :func:`pick_decoding`)
    decoding: dict = field(default_factory=dict)

    @property
    def metrics(self) -> dict:
        out: dict[str, Any] = {}
        if self.evaluation is not None:
            out.update(self.evaluation.metrics)
        out.update(
            {
                "train_seconds": round(self.train_seconds, 2),
                "seed": self.config.seed,
                "model": self.config.model,
                "epochs": self.config.epochs,
                "n_train": self.n_train,
                "n_train_values": self.n_train_values,
                "n_train_values_unplaced": self.n_train_unplaced,
                "n_valid": self.n_valid,
                "valid_micro_f1_per_epoch": self.valid_curve,
                "best_epoch": (
                    1 + self.valid_curve.index(max(self.valid_curve))
                    if self.valid_curve
                    else self.config.epochs
                ),
                "losses": [round(x, 5) for x in self.losses],
                # the first member's weights: "epoch N" or "average of epochs A-B"
                "selected": self.members[0].get("selected") if self.members else None,
                "ensemble": [
                    {
                        "seed": m["seed"],
                        "best_epoch": m["best_epoch"],
                        "valid_micro_f1_per_epoch": m["valid_curve"],
                        "selected": m.get("selected"),
                        "valid_micro_f1_average": m.get("valid_average_curve", []),
                        "train_seconds": round(m["train_seconds"], 2),
                        "validation_seconds": round(m.get("validation_seconds", 0.0), 2),
                        "refit": bool(m.get("refit")),
                    }
                    for m in self.members
                ],
                "config": self.config.to_dict(),
                "environment": self.environment,
            }
        )
        out.setdefault("titles_per_second", None)
        if self.decoding:
            out["decoding"] = self.decoding
        if self.inference is not None:
            out["inference"] = self.inference
        out.setdefault("unit", "percent")
        return out

    def record(self) -> dict[str, Any]:
        """``metrics.json``: the metrics, with the config and environment inside."""
        return self.metrics

    def save(self, out_dir: Any, *, overwrite: bool = True) -> Path:
        """Write ``model/``, ``config.json``, predictions and ``metrics.json`` (last) into
        ``out_dir`` (a folder or a :class:`~kgwb.rundir.RunDir`); an earlier run there is
        replaced as a whole once the new one is complete."""
        from kgwb.atomic import output_dir
        from kgwb.stage import _folder_for

        final = _folder_for(out_dir, self.STAGE)
        with output_dir(
            final, kind="extractor run", overwrite=overwrite, manifests=RUN_MANIFESTS
        ) as out:
            self.extractor.save(out / "model")
            _write_json(out / "config.json", self.config.to_dict())
            if self.evaluation is not None:
                _write_jsonl(out / "test_predictions.jsonl", self.evaluation.predictions)
            _write_json(out / self.RECORD, self.record())
        self.out_dir = final
        return final

    @classmethod
    def load(cls, run: Any) -> ExtractorTrainResult:
        """A saved run: its config, curves and scores from ``metrics.json``, the model from
        ``model/`` (test predictions are not reloaded)."""
        from kgwb.stage import _folder_for

        folder = _folder_for(run, cls.STAGE)
        m = cls.read_record(run)
        members = [
            {
                "seed": e["seed"],
                "best_epoch": e["best_epoch"],
                "valid_curve": e["valid_micro_f1_per_epoch"],
                "train_seconds": e["train_seconds"],
                "validation_seconds": e.get("validation_seconds", 0.0),
                "refit": e.get("refit", False),
            }
            for e in m.get("ensemble", [])
        ]
        scored = "micro_f1" in m
        skip = {
            "train_seconds",
            "losses",
            "ensemble",
            "config",
            "environment",
            "inference",
            "decoding",
        }
        return cls(
            config=ExtractorConfig.from_dict(m["config"]),
            losses=list(m["losses"]),
            train_seconds=float(m["train_seconds"]),
            n_train=m["n_train"],
            n_train_values=m["n_train_values"],
            n_train_unplaced=m["n_train_values_unplaced"],
            evaluation=(
                ExtractorEvalResult({k: v for k, v in m.items() if k not in skip}, [])
                if scored
                else None
            ),
            extractor=load_extractor(folder / "model"),
            n_valid=m["n_valid"],
            valid_curve=list(m["valid_micro_f1_per_epoch"]),
            inference=m.get("inference"),
            environment=m.get("environment", {}),
            out_dir=folder,
            members=members,
            decoding=m.get("decoding") or {},
        )


def _fit_member(
    train_examples: list[LabeledTitle],
    config: ExtractorConfig,
    valid: list[LabeledTitle] | None,
    test_examples: list[LabeledTitle] | None,
    pick: Pick | None = None,
) -> dict:
    """One member: fine-tuned on ``train_examples`` less its seeded validation split (with
    ``valid_fraction`` and no ``valid`` titles), or on all of them with ``pick`` (a refit).
    Returns its record (seed, losses, validation curve, pick, seconds, extractor)."""
    member_train, member_valid = train_examples, valid
    if pick is None and valid is None and config.valid_fraction:
        member_train, member_valid = split_validation(
            train_examples, config.valid_fraction, config.seed
        )
    extractor, losses, seconds, curve = fine_tune(
        member_train,
        config,
        valid=None if pick is not None else member_valid,
        schema_examples=test_examples or (),
        label_examples=train_examples,
        pick=pick,
    )
    return {
        "seed": config.seed,
        "losses": losses,
        "train_seconds": seconds,
        "validation_seconds": 0.0,
        "valid_curve": curve,
        "best_epoch": 1 + curve.index(max(curve)) if curve else config.epochs,
        **extractor.training,
        "n_valid": 0 if pick is not None else len(member_valid or []),
        "extractor": extractor,
        # titles this member never trained on (for picking decode settings; not saved)
        "valid_titles": [] if pick is not None else list(member_valid or []),
    }


def _refit_member(
    train_examples: list[LabeledTitle],
    config: ExtractorConfig,
    picked: dict,
    test_examples: list[LabeledTitle] | None,
    validation_seconds: float,
) -> dict:
    """``config.seed``'s model trained on all ``train_examples`` with the weights ``picked``
    (a validation run's record) chose; the record keeps that run's curve and pick."""
    member = _fit_member(train_examples, config, None, test_examples, pick=picked["pick"])
    for key in ("valid_curve", "best_epoch", "valid_average_curve", "n_valid"):
        member[key] = picked[key]
    member["selected"] = f"{picked['selected']}, refit on all {len(train_examples)} titles"
    member["validation_seconds"] = validation_seconds
    return member


#: keys of a member's record that stay in memory (not in ``metrics.json``)
_UNSAVED = ("extractor", "valid_titles")
# Decoding picked on validation (ExtractorConfig.pick_decoding, default on).  OA-Mine train, each
# member of the default ensemble alone on its own split (438 titles, pooled): plain 78.29,
# merged fragments 78.43, min_confidence 0.5 78.59, both 78.78 (picked); train -> test with
# that pick 80.4 (P 82.6, R 78.3) vs 79.7 (P 80.5, R 78.9) plain.  On an outer dev split the
# gains were within noise (+0.01 for that run's own pick), so the pick keeps the plain decoding
# unless something beats it on validation.
#: thresholds :func:`pick_decoding` tries (0: keep every span)
MIN_CONFIDENCE_GRID = (0.0, 0.3, 0.4, 0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9)


def _decoding_key(merge: bool, threshold: float) -> str:
    return f"{'merge' if merge else 'no merge'}, min_confidence {threshold}"


def _unmerged_unfiltered_spans(
    extractor: Extractor, titles: Sequence[LabeledTitle], batch_size: int
) -> list[list[dict]]:
    kept = extractor.min_confidence, extractor.merge_fragments
    extractor.min_confidence, extractor.merge_fragments = 0.0, False
    try:
        return extractor.extract(
            [e.text for e in titles], [e.category for e in titles], batch_size=batch_size
        )
    finally:
        extractor.min_confidence, extractor.merge_fragments = kept


def pick_decoding(
    scored: Sequence[tuple[Extractor, Sequence[LabeledTitle]]],
    schema_examples: Sequence[LabeledTitle] = (),
    *,
    grid: Sequence[float] = MIN_CONFIDENCE_GRID,
    merge: Sequence[bool] = (False, True),
    batch_size: int = 64,
) -> dict:
    """The decoding with the best slot micro-F1 on validation titles: whether adjacent
    fragments of one attribute are merged (:func:`kgwb.text.bio.merge_fragments`) and the
    span-confidence threshold.

    ``scored``: pairs of an extractor and titles it never trained on (an ensemble's members
    each with its own validation split: cross-fitted; or one extractor with given validation
    titles).  Each extractor's spans are extracted once; for every setting the spans are
    merged or not, those below the threshold dropped, the most confident per attribute is the
    slot's prediction, and the slot counts of all pairs are pooled into one micro-F1.  The
    best setting wins; on ties no merging, then the smallest threshold (so the plain
    decoding stays unless something beats it).  The category schema comes from the titles
    and ``schema_examples``.  Returns ``{"min_confidence", "merge_fragments",
    "valid_micro_f1": {setting: F1}, "n_valid"}``.
    """
    from kgwb.text.metrics import _prf

    grid = sorted({0.0, *(float(t) for t in grid)})
    merge = sorted({False, *(bool(m) for m in merge)})
    settings = [(m, t) for m in merge for t in grid]
    everything = list(schema_examples) + [e for _, titles in scored for e in titles]
    schema = category_schema([e.category for e in everything], [e.targets for e in everything])
    counts = {setting: defaultdict(int) for setting in settings}
    n_valid = 0
    for extractor, titles in scored:
        if not titles:
            continue
        n_valid += len(titles)
        plain = _unmerged_unfiltered_spans(extractor, titles, batch_size)
        targets = [e.targets for e in titles]
        categories = [e.category for e in titles]
        for m in merge:
            spans = (
                [merge_fragments(e.text, found) for e, found in zip(titles, plain)] if m else plain
            )
            for t in grid:
                predictions = [
                    best_per_attribute(x for x in found if x["confidence"] >= t) for found in spans
                ]
                scores = slot_scores(targets, predictions, categories, schema=schema)
                for outcome, n in scores.counts.items():
                    counts[(m, t)][outcome] += n
    f1 = {setting: round(100.0 * _prf(counts[setting])[2], 4) for setting in settings}
    best = max(settings, key=lambda st: (f1[st], not st[0], -st[1])) if n_valid else (False, 0.0)
    return {
        "min_confidence": best[1],
        "merge_fragments": best[0],
        "valid_micro_f1": {_decoding_key(*st): f1[st] for st in settings},
        "n_valid": n_valid,
    }


def _decoding_choice(
    extractor: Extractor,
    members: list[dict],
    config: ExtractorConfig,
    given_valid: list[LabeledTitle] | None,
    schema_examples: list[LabeledTitle],
) -> dict:
    """Set the extractor's decoding (``merge_fragments``, ``min_confidence``: picked on
    validation or as configured) and return the record of how."""
    chosen: dict[str, Any] = {
        "min_confidence": config.min_confidence,
        "merge_fragments": config.merge_fragments,
        "picked_on": "config",
    }
    if config.pick_decoding:
        if given_valid:
            scored, where = [(extractor, given_valid)], "the given validation titles"
        else:
            scored = [(m["extractor"], m["valid_titles"]) for m in members if m["valid_titles"]]
            where = (
                "each member's own validation split (cross-fitted)"
                if len(members) > 1
                else "the validation split"
            )
        if scored:
            started = time.perf_counter()
            picked = pick_decoding(scored, schema_examples, batch_size=config.eval_batch_size)
            chosen = picked | {
                "picked_on": where,
                "seconds": round(time.perf_counter() - started, 2),
            }
            log.info(
                "decoding picked on %s: %s (valid micro-F1 %.2f; %.2f without merging or a "
                "threshold)",
                where,
                _decoding_key(picked["merge_fragments"], picked["min_confidence"]),
                picked["valid_micro_f1"][
                    _decoding_key(picked["merge_fragments"], picked["min_confidence"])
                ],
                picked["valid_micro_f1"][_decoding_key(False, 0.0)],
            )
        else:
            chosen["picked_on"] = "config (no validation titles to pick on)"
    for target in (extractor.settings, extractor):
        target.min_confidence = float(chosen["min_confidence"])
        target.merge_fragments = bool(chosen["merge_fragments"])
    return chosen


def _train_members(
    train_examples: list[LabeledTitle],
    config: ExtractorConfig,
    valid: list[LabeledTitle] | None,
    test_examples: list[LabeledTitle] | None,
) -> tuple[Extractor, list[dict]]:
    """Fine-tune ``config.ensemble`` models (seeds ``seed, seed+1, ...``) sharing one label map
    and schema (from all of ``train_examples``); returns the extractor over all of them and one
    record per member (seed, losses, validation curve, best epoch, seconds).

    ``refit`` (with ``valid_fraction`` only): ``each`` member is retrained on all the titles
    after picking its weights on its own split; ``shared``: one validation run (seed ``seed``)
    picks, then every member trains on all the titles with that pick (its seconds are the
    first member's ``validation_seconds``)."""
    from dataclasses import replace

    refit = config.refit if valid is None and config.valid_fraction else "none"
    shared = None
    if refit == "shared":
        shared = _fit_member(train_examples, config, None, test_examples)
        log.info("validation run picked %s (%.0f s)", shared["selected"], shared["train_seconds"])
    members = []
    for k in range(config.ensemble):
        member_config = replace(config, seed=config.seed + k)
        if shared is not None:
            spent = shared["train_seconds"] if k == 0 else 0.0
            member = _refit_member(train_examples, member_config, shared, test_examples, spent)
        else:
            member = _fit_member(train_examples, member_config, valid, test_examples)
            if refit == "each":
                member = _refit_member(
                    train_examples, member_config, member, test_examples, member["train_seconds"]
                )
        members.append(member)
        if config.ensemble > 1:
            log.info(
                "ensemble member %d/%d trained (%.0f s)",
                k + 1,
                config.ensemble,
                member["train_seconds"] + member["validation_seconds"],
            )
    first = members[0]["extractor"]
    if config.ensemble == 1:
        return first, members
    combined = Extractor(
        [m["extractor"].model for m in members],
        first.tokenizer,
        first.settings,
        device=first.device,
        restrict_to_schema=first.restrict_to_schema,
        dtype="float32",
    )
    return combined, members


def train_extractor(
    config: ExtractorConfig | None = None,
    *,
    train: Any = None,
    test: Any = None,
    valid: Any = None,
    out_dir: Any = None,
    overwrite: bool = True,
    **options: Any,
) -> ExtractorTrainResult:
    """Fine-tune the attribute-value extractor and, with ``test``, score it (slot micro-F1).

    ``config`` (:class:`ExtractorConfig`) holds every setting; its fields can also be given as
    keywords (``train_extractor(train=..., epochs=2, seed=1)``), which override the config's.
    ``train``/``test``/``valid``: a JSON-lines file in OA-Mine format, a list of
    :class:`LabeledTitle`, OA-Mine-like dicts, or distant-supervision records (see
    :func:`examples_from_records`); files may also be named in the config (recorded there).
    ``model``: the encoder to start from (default: the bundled all-MiniLM-L6-v2; any Hugging
    Face name or local folder).  ``label_scheme="attribute"`` has one B/I label pair per
    attribute name, shared across categories; ``"category_attribute"`` one per
    (category, attribute).  ``subwords``: see :func:`kgwb.text.bio.token_labels`.
    ``out_dir``: where :meth:`ExtractorTrainResult.save` writes (a folder or a
    :class:`~kgwb.rundir.RunDir`; ``None``: keep in memory); the model goes to
    ``out_dir/model``.
    ``valid`` (titles, as ``train``) or ``valid_fraction`` (a seeded per-category share of
    ``train`` held out, see :func:`split_validation`): the epoch with the best validation
    micro-F1 is kept, so ``test`` is only used for the final score.
    ``ensemble=K`` trains K models with seeds ``seed .. seed+K-1`` (with ``valid_fraction``, each
    holds out its own seeded split, so every title trains most members) and averages their label
    probabilities before decoding: K times the training and inference time.
    ``average_weights`` (default on; needs validation): the running average of the weights
    of the second half of the epochs is a candidate next to every single epoch, and the one
    best on validation is kept (see :class:`_TailAverage`).
    ``refit`` (with ``valid_fraction``): once validation has picked the weights, retrain on
    all of ``train`` with the same schedule, stopped at the picked epoch: ``"each"`` member
    after its own validation run (about 1.65x the time), or one validation run picks for
    every member (``"shared"``: about the time of no refit); see :func:`_train_members`.

    The test score is computed in float32 (the same on every machine); where the hardware runs
    bfloat16 natively, ``metrics["inference"]`` also gives the speed and score of the bfloat16
    inference that ``kgwb extract apply`` uses by default there.
    """
    config, data = _training_config(config, options, train=train, test=test, valid=valid)
    train_examples = _as_examples(data["train"], what="train", occurrences=config.occurrences)
    test_examples = _as_examples(data["test"], what="test") if data["test"] is not None else None
    given_valid = _as_examples(data["valid"], what="valid") if data["valid"] is not None else None
    if given_valid is not None and not given_valid:
        raise KgwbError("the validation set is empty: nothing to pick the best epoch with")
    extractor, members = _train_members(train_examples, config, given_valid, test_examples)
    decoding = _decoding_choice(
        extractor, members, config, given_valid, train_examples + list(test_examples or [])
    )
    first = members[0]
    n_valid = first["n_valid"]
    evaluation = inference = None
    if test_examples is not None:
        schema_examples = train_examples + list(given_valid or [])
        evaluation, inference = _score_on_test(
            extractor, test_examples, schema_examples, config.eval_batch_size
        )
    result = ExtractorTrainResult(
        config=config,
        losses=first["losses"],
        train_seconds=sum(m["train_seconds"] + m["validation_seconds"] for m in members),
        n_train=(
            len(train_examples) - n_valid
            if config.valid_fraction and not first["refit"]
            else len(train_examples)
        ),
        n_train_values=sum(len(e.spans) + len(e.unplaced) for e in train_examples),
        n_train_unplaced=sum(len(e.unplaced) for e in train_examples),
        evaluation=evaluation,
        extractor=extractor,
        n_valid=n_valid,
        valid_curve=first["valid_curve"],
        members=[{k: v for k, v in m.items() if k not in _UNSAVED} for m in members],
        decoding=decoding,
        inference=inference,
        environment=_environment()
        | {"torch_threads": _torch_threads(), "device": resolve_device(config.device)},
    )
    if out_dir is not None:
        result.save(out_dir, overwrite=overwrite)
    return result


def build_extractor_stage(config: ExtractorConfig, run: Any) -> ExtractorTrainResult:
    """The ``extract`` stage of :data:`kgwb.rundir.STAGES`: trained from the config's files,
    saved into ``run.extractor``."""
    return train_extractor(config, out_dir=run)


def _training_config(
    config: ExtractorConfig | None, options: dict[str, Any], **data: Any
) -> tuple[ExtractorConfig, dict[str, Any]]:
    """The run's config (keywords over ``config``; data given as files recorded in it) and its
    ``train``/``test``/``valid`` data (given, else the config's files).  The device stays as
    asked (``auto``); the one used goes into the result's environment."""
    options = {k: v for k, v in options.items() if not (k in ("model", "device") and v is None)}
    if "model" in options:
        options["model"] = str(options["model"])
    known = {f.name for f in dataclasses.fields(ExtractorConfig)}
    unknown = sorted(set(options) - known)
    if unknown:
        raise TypeError(f"train_extractor() got unexpected keyword(s): {', '.join(unknown)}")
    config = (config or ExtractorConfig()).replace(**options)
    for name in ("train", "test", "valid"):
        if data[name] is None and getattr(config, name) is not None:
            data[name] = getattr(config, name)
    if data["train"] is None:
        raise ConfigError("no training titles: pass train= (a JSON-lines file, titles or records)")
    files = {
        name: str(value) if isinstance(value, (str, os.PathLike)) else None
        for name, value in data.items()
    }
    config = config.replace(
        **files, valid_fraction=0.0 if data["valid"] is not None else float(config.valid_fraction)
    )
    return config, data


def _score_on_test(
    extractor: Extractor,
    test_examples: list[LabeledTitle],
    schema_examples: list[LabeledTitle],
    batch_size: int,
) -> tuple[ExtractorEvalResult, dict]:
    """The float32 test scores and the inference record (speed, and the bfloat16 scores where
    the hardware runs it natively)."""
    evaluation = evaluate_extractor(
        model=extractor, test=test_examples, train=schema_examples, batch_size=batch_size
    )
    fast = resolve_dtype("auto", extractor.device)
    if fast == "float32":
        return evaluation, {
            "dtype": "float32",
            "titles_per_second": evaluation.metrics["titles_per_second"],
        }
    import copy

    twin = Extractor(
        [copy.deepcopy(m) for m in extractor.models],
        extractor.tokenizer,
        extractor.settings,
        device=extractor.device,
        restrict_to_schema=extractor.restrict_to_schema,
        dtype=fast,
    )
    scored = evaluate_extractor(
        model=twin, test=test_examples, train=schema_examples, batch_size=batch_size
    ).metrics
    return evaluation, {
        "dtype": fast,
        "titles_per_second": scored["titles_per_second"],
        "micro_f1": scored["micro_f1"],
        "precision": scored["precision"],
        "recall": scored["recall"],
    }


@dataclass
class ExtractorApplyResult:
    """What :func:`apply_extractor` wrote: counts and speed."""

    model_dir: str
    input: str
    out: str
    n_titles: int
    n_spans: int
    seconds: float
    titles_per_second: float | None
    dtype: str = "float32"
    environment: dict = field(default_factory=dict, repr=False)
    engine: str = "local"

    def to_dict(self) -> dict:
        return asdict(self)


def _read_titles(path: Path) -> list[dict]:
    rows = []
    for line_no, record in _json_lines(path, 'JSON lines with an "input" title'):
        if isinstance(record, str):
            record = {"input": record}
        if not isinstance(record, Mapping):
            raise DataError(
                f"a JSON {type(record).__name__}",
                file=path,
                line=line_no,
                expected='an object with "input" (or a JSON string)',
            )
        text = record.get("input", record.get("title", record.get("text")))
        if text is not None and not isinstance(text, str):
            raise DataError(
                f"title is {type(text).__name__}",
                file=path,
                line=line_no,
                column="input",
                expected="a string",
            )
        if text is None:
            raise DataError(
                "no title",
                file=path,
                line=line_no,
                column="input",
                expected='a string under "input" (or "title"/"text")',
            )
        rows.append(record | {"_text": text})
    return rows


def apply_extractor(
    *,
    model_dir: str | os.PathLike[str],
    input: str | os.PathLike[str],
    out: str | os.PathLike[str],
    batch_size: int = 64,
    device: str | None = None,
    dtype: str = "auto",
    engine: str = "local",
    address: str | None = None,
    workers: int | None = None,
) -> ExtractorApplyResult:
    """Extract spans from every title of ``input`` (JSON lines) into ``out`` (JSON lines).

    ``engine="ray"`` runs the same batches on Ray Data actors (:mod:`kgwb.text.ray_engine`:
    a local Ray, or the cluster at ``address``; ``workers`` actors) and writes the same spans.

    Input lines: ``{"input": title, "category": ...}`` (``title``/``text`` also accepted; other
    keys such as ``item_id`` are copied through) or a bare JSON string.  Each output line adds
    ``spans`` (``attribute, value, start, end, confidence``) and ``prediction`` (the most
    confident value per attribute).  ``dtype``: see :class:`Extractor` (default ``"auto"``:
    bfloat16 where the hardware runs it natively; ``"float32"`` to match other machines exactly).
    """
    from kgwb.atomic import atomic_file, check_output_not_input

    if engine == "ray":  # before any work: says how to install Ray when it is missing
        from kgwb.text.ray_engine import require_ray

        require_ray()
    elif engine != "local":
        raise UnknownNameError("engine", engine, ["local", "ray"])
    check_output_not_input(out, [input, model_dir])
    extractor = load_extractor(model_dir, device=device, dtype=dtype)
    input_path, out_path = Path(input), Path(out)
    rows = _read_titles(input_path)
    categories = (
        [r.get("category") or "" for r in rows] if extractor.settings.use_category else None
    )
    started = time.perf_counter()
    if engine == "ray":
        from kgwb.text.ray_engine import ray_extract

        spans = ray_extract(
            extractor,
            [r["_text"] for r in rows],
            categories,
            model_dir=model_dir,
            batch_size=batch_size,
            address=address,
            workers=workers,
            device=device,
        )
    else:
        spans = extractor.extract([r["_text"] for r in rows], categories, batch_size=batch_size)
    seconds = time.perf_counter() - started
    with atomic_file(out_path) as tmp, tmp.open("w", encoding="utf-8") as f:
        for row, found in zip(rows, spans):
            row = {k: v for k, v in row.items() if k != "_text"}
            row["spans"] = found
            row["prediction"] = best_per_attribute(found)
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    return ExtractorApplyResult(
        model_dir=str(model_dir),
        input=str(input_path),
        out=str(out_path),
        n_titles=len(rows),
        n_spans=sum(len(s) for s in spans),
        seconds=round(seconds, 3),
        titles_per_second=round(len(rows) / seconds, 2) if seconds > 0 and rows else None,
        dtype=extractor.dtype,
        environment=_environment(),
        engine=engine,
    )
