"""Character spans <-> BIO tags <-> sub-word token labels, in plain Python (no torch).

This module owns the three translations an extractor needs:

1. :func:`locate_values` — where in a title each labelled ``attribute: value`` is (the value may
   occur several times, or inside another word, or inside another value);
2. :func:`char_bio_tags` and :func:`token_labels` — the character spans as BIO tags, then as one
   label per sub-word token using the fast tokenizer's offset mapping;
3. :func:`decode_spans` — token predictions back to character spans, so that every returned
   ``value`` is exactly ``text[start:end]`` with the title's original case (the default encoder is
   uncased; offsets point into the original string).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass

from kgwb.errors import ConfigError

OUTSIDE = "O"
#: label id that the loss ignores (special tokens, category tokens, padding)
IGNORE_INDEX = -100


@dataclass(frozen=True, order=True)
class Span:
    """``text[start:end] == value`` holds the value of ``attribute`` (end is exclusive)."""

    start: int
    end: int
    attribute: str
    value: str

    def to_dict(self) -> dict:
        return asdict(self)


def _occurrences(text: str, value: str, *, ignore_case: bool) -> list[int]:
    """Start offsets of every (possibly overlapping) occurrence of ``value`` in ``text``.

    Case-insensitive matching uses a regular expression so offsets stay those of ``text`` even
    for characters whose lower case has another length (``"İ".lower()`` is two characters).
    """
    if not value:
        return []
    if not ignore_case:
        found, i = [], text.find(value)
        while i >= 0:
            found.append(i)
            i = text.find(value, i + 1)
        return found
    pattern = re.compile(f"(?=({re.escape(value)}))", re.IGNORECASE)
    return [m.start() for m in pattern.finditer(text)]


def _at_word_boundary(text: str, start: int, end: int) -> bool:
    before_ok = start == 0 or not text[start - 1].isalnum() or not text[start].isalnum()
    after_ok = end >= len(text) or not text[end].isalnum() or not text[end - 1].isalnum()
    return before_ok and after_ok


def locate_values(
    text: str,
    values: Iterable[tuple[str, str]],
    *,
    occurrences: str = "first",
    ignore_case: bool = True,
) -> tuple[list[Span], list[tuple[str, str]]]:
    """Place ``(attribute, value)`` pairs on ``text`` as non-overlapping character spans.

    Values are stripped of surrounding white space and matched case-insensitively (exactly when
    ``ignore_case=False``).  Longer values are placed first, so ``"Organic"`` inside the brand
    ``"Great River Organic Milling"`` does not take the brand's place.  Among the occurrences of
    one value, those that overlap no span placed so far and are whole words win (``"10"`` in
    ``"105-saddle, Black, 10"`` is the last one), then those in the value's exact case, then the
    earliest.

    ``occurrences="first"`` labels that one best occurrence; ``"all"`` labels every whole-word,
    non-overlapping occurrence (all non-overlapping ones when none is a whole word).  BIO tags
    cannot hold overlapping spans, so a value that only occurs inside spans already placed is
    returned in the second list (not placed), as is a value that does not occur at all.

    Returns ``(spans sorted by start, unplaced pairs)``.
    """
    if occurrences not in ("first", "all"):
        raise ConfigError(f"occurrences must be 'first' or 'all', not {occurrences!r}")
    pairs = [(str(a), str(v).strip()) for a, v in values]
    order = sorted(range(len(pairs)), key=lambda k: -len(pairs[k][1]))
    taken = [False] * len(text)
    spans: list[Span] = []
    unplaced: list[tuple[str, str]] = []
    for k in order:
        attribute, value = pairs[k]
        starts = _occurrences(text, value, ignore_case=ignore_case)
        free = [s for s in starts if not any(taken[s : s + len(value)])]
        if not free:
            unplaced.append((attribute, value))
            continue
        whole = [s for s in free if _at_word_boundary(text, s, s + len(value))]
        candidates = whole or free
        if occurrences == "first":
            # whole word first, then the exact case, then the earliest
            candidates = sorted(candidates, key=lambda s: (text[s : s + len(value)] != value, s))
        chosen: list[int] = []
        for s in candidates:
            if any(taken[s : s + len(value)]):  # overlaps an occurrence chosen a moment ago
                continue
            chosen.append(s)
            for i in range(s, s + len(value)):
                taken[i] = True
            if occurrences == "first":
                break
        for s in chosen:
            spans.append(Span(s, s + len(value), attribute, text[s : s + len(value)]))
    return sorted(spans), unplaced


def char_bio_tags(text: str, spans: Iterable[Span]) -> list[str]:
    """One tag per character of ``text``: ``B-attr`` on a span's first character, ``I-attr`` on
    the rest, ``O`` elsewhere.  Spans must not overlap (see :func:`locate_values`)."""
    tags = [OUTSIDE] * len(text)
    for span in spans:
        if not (0 <= span.start < span.end <= len(text)):
            raise ValueError(f"span {span} lies outside a text of {len(text)} characters")
        if any(t != OUTSIDE for t in tags[span.start : span.end]):
            raise ValueError(f"span {span} overlaps another span")
        tags[span.start] = f"B-{span.attribute}"
        for i in range(span.start + 1, span.end):
            tags[i] = f"I-{span.attribute}"
    return tags


def token_labels(
    spans: Sequence[Span],
    offsets: Sequence[tuple[int, int]],
    in_text: Sequence[bool],
    *,
    word_ids: Sequence[int | None] | None = None,
    subwords: str = "all",
) -> list[str | None]:
    """One BIO label per token (``None`` = ignored by the loss) from character spans.

    ``offsets`` is the tokenizer's offset mapping and ``in_text[i]`` says whether token ``i``
    belongs to the text the spans refer to (the title: not a special token, not the category of a
    ``category [SEP] title`` pair); tokens outside the text get ``None``.

    A token takes the attribute of the first span that overlaps its characters: ``B-`` when the
    span starts at or inside the token (the span's first token), ``I-`` when the span started in
    an earlier token; a token overlapping no span is ``O``.  So every sub-word of a word inside a
    value is labelled, the first one ``B-``/``I-`` and the continuation pieces ``I-``.

    ``subwords="first"`` labels only the first sub-word of each word (``word_ids`` from the
    tokenizer required) and gives ``None`` to the continuation pieces, the usual BERT-NER recipe;
    ``"all"`` (the default) labels every piece.
    """
    if subwords not in ("all", "first"):
        raise ConfigError(f"subwords must be 'all' or 'first', not {subwords!r}")
    if subwords == "first" and word_ids is None:
        raise ConfigError("subwords='first' needs the tokenizer's word_ids")
    ordered = sorted(spans)
    labels: list[str | None] = []
    previous_word = None
    for i, ((start, end), inside) in enumerate(zip(offsets, in_text)):
        if not inside or end <= start:
            labels.append(None)
            previous_word = None
            continue
        if subwords == "first":
            word = word_ids[i]
            if word is not None and word == previous_word:
                labels.append(None)
                continue
            previous_word = word
        label = OUTSIDE
        for span in ordered:
            if span.start < end and start < span.end:
                label = ("B-" if span.start >= start else "I-") + span.attribute
                break
            if span.start >= end:
                break
        labels.append(label)
    return labels


def split_label(label: str) -> tuple[str, str | None]:
    """``"B-Brand"`` -> ``("B", "Brand")``; ``"O"`` -> ``("O", None)``."""
    if label == OUTSIDE or len(label) < 3 or label[1] != "-":
        return OUTSIDE, None
    return label[0], label[2:]


def decode_spans(
    text: str,
    labels: Sequence[str | None],
    offsets: Sequence[tuple[int, int]],
    *,
    confidences: Sequence[float] | None = None,
) -> list[dict]:
    """Character spans from one predicted label per token.

    ``labels[i]`` is the predicted BIO label of token ``i`` or ``None`` for tokens outside the
    text (special and category tokens); with ``subwords="first"`` models, callers pass the first
    piece's label for the continuation pieces.  A span opens at ``B-x`` — or at ``I-x`` that does
    not continue an ``x`` span (the usual lenient reading) — and grows over the following ``I-x``
    tokens; ``start``/``end`` come from the first and last token's offsets, so
    ``value == text[start:end]`` in the title's original case.

    ``confidence`` is the mean over the span's tokens of the probability the model gave to the
    label it predicted (1.0 when ``confidences`` is not given).
    """
    spans: list[dict] = []
    current: dict | None = None
    probs: list[float] = []

    def close() -> None:
        nonlocal current, probs
        if current is not None:
            current["value"] = text[current["start"] : current["end"]]
            current["confidence"] = float(sum(probs) / len(probs)) if probs else 1.0
            spans.append(current)
        current, probs = None, []

    for i, label in enumerate(labels):
        start, end = offsets[i]
        if label is None or end <= start:
            close()
            continue
        prefix, attribute = split_label(label)
        if prefix == OUTSIDE:
            close()
            continue
        if prefix == "I" and current is not None and current["attribute"] == attribute:
            current["end"] = max(current["end"], end)
        else:
            close()
            current = {"attribute": attribute, "value": "", "start": start, "end": end}
        if confidences is not None:
            probs.append(float(confidences[i]))
    close()
    return spans


#: characters a value never starts or ends with (separators between two values of a title)
_EDGE_SEPARATORS = " \t,;:|"
#: joiners that belong to a value when attached to it ("SPF 50+", "Omega-"), debris when
#: standing apart ("Amla -", "Cate &")
_EDGE_JOINERS = "/&+-\u2013\u2014"
_BRACKETS = {"(": ")", "[": "]", "{": "}"}


def tidy_bounds(text: str, start: int, end: int) -> tuple[int, int]:
    """``(start, end)`` of a predicted value with separator and bracket debris at its edges
    removed: attribute values are balanced and do not start or end with a separator.

    Leading/trailing white space and separators (``, ; : |``) go, and so do the joiners
    ``/ & + - – —`` when white space parts them from the value (``Amla -``, but not
    ``SPF 50+``); a bracket
    wrapping the whole value goes (``(X-Large)`` -> ``X-Large``); an unmatched closing bracket
    at the end (``Acid)``) or opening bracket at the start goes, and an unmatched opening one
    inside (``8 Ounce (237ml``) takes the title's closing bracket when it follows right after.
    Dots stay (``Co.``, ``oz.``, ``.35 oz``).  Returns the input when nothing would be left.
    """
    s, e = start, end
    for _ in range(8):  # each pass removes at least one character or stops
        before = (s, e)
        while s < e and (
            text[s] in _EDGE_SEPARATORS
            or (text[s] in _EDGE_JOINERS and s + 1 < e and text[s + 1].isspace())
        ):
            s += 1
        while e > s and (
            text[e - 1] in _EDGE_SEPARATORS
            or (text[e - 1] in _EDGE_JOINERS and e - 1 > s and text[e - 2].isspace())
        ):
            e -= 1
        for opening, closing in _BRACKETS.items():
            value = text[s:e]
            if (
                len(value) >= 2
                and value[0] == opening
                and value[-1] == closing
                and (value[1:-1].count(opening) == value[1:-1].count(closing))
            ):
                s, e = s + 1, e - 1
                continue
            surplus = value.count(opening) - value.count(closing)
            if surplus > 0:
                if value.startswith(opening):
                    s += 1
                elif e < len(text) and text[e] == closing and surplus == 1:
                    e += 1
            elif surplus < 0 and value.endswith(closing):
                e -= 1
        if (s, e) == before:
            break
    return (s, e) if s < e else (start, end)


def tidy_spans(text: str, spans: Iterable[dict]) -> list[dict]:
    """:func:`tidy_bounds` applied to decoded spans (``value`` stays ``text[start:end]``)."""
    out = []
    for span in spans:
        start, end = tidy_bounds(text, span["start"], span["end"])
        out.append({**span, "start": start, "end": end, "value": text[start:end]})
    return out


#: what may part two fragments of one value: white space and the joiners ``- / & +``
FRAGMENT_GAP = " -/&+"


def merge_fragments(text: str, spans: Iterable[dict], gap: str = FRAGMENT_GAP) -> list[dict]:
    """Spans of one attribute that follow each other with only ``gap`` characters (or nothing)
    between them become one span (``Philips Sonicare`` + ``DiamondClean`` ->
    ``Philips Sonicare DiamondClean``; ``1700mcg/`` + ``1000mcg`` -> ``1700mcg/1000mcg``):
    BIO decoding can break one value into several (``B I B``), and a slot takes one value.
    The merged span's ``confidence`` is the mean of its fragments'; spans come back in title
    order, ``value == text[start:end]``."""
    out: list[dict] = []
    parts: list[float] = []
    for span in sorted(spans, key=lambda x: (x["start"], x["end"])):
        last = out[-1] if out else None
        if (
            last is not None
            and last["attribute"] == span["attribute"]
            and last["end"] <= span["start"]
            and all(c in gap for c in text[last["end"] : span["start"]])
        ):
            parts.append(span.get("confidence", 1.0))
            out[-1] = {
                **last,
                "end": span["end"],
                "value": text[last["start"] : span["end"]],
                "confidence": sum(parts) / len(parts),
            }
        else:
            out.append(dict(span))
            parts = [span.get("confidence", 1.0)]
    return out


def best_per_attribute(spans: Iterable[dict]) -> dict[str, str]:
    """One value per attribute (one per slot): the most confident span, the first on ties."""
    best: dict[str, dict] = {}
    for span in spans:
        kept = best.get(span["attribute"])
        if kept is None or span.get("confidence", 1.0) > kept.get("confidence", 1.0):
            best[span["attribute"]] = span
    return {attribute: span["value"] for attribute, span in best.items()}


def bio_transitions(labels: Sequence[str]):
    """Allowed BIO moves as additive scores: ``(start[L], transition[L_prev, L_next])``.

    ``I-x`` may only follow ``B-x`` or ``I-x`` (and may not open a sequence); everything else is
    allowed.  Entries are 0 (allowed) or ``-inf``.
    """
    import numpy as np

    n = len(labels)
    parts = [split_label(label) for label in labels]
    start = np.zeros(n)
    transition = np.zeros((n, n))
    for j, (prefix, attribute) in enumerate(parts):
        if prefix != "I":
            continue
        start[j] = -np.inf
        for i, (prev_prefix, prev_attribute) in enumerate(parts):
            if prev_prefix == OUTSIDE or prev_attribute != attribute:
                transition[i, j] = -np.inf
    return start, transition


def viterbi(log_probs, start, transition) -> list[int]:
    """Most probable label sequence under the BIO constraints (``log_probs``: ``[T, L]``)."""
    import numpy as np

    steps = len(log_probs)
    if steps == 0:
        return []
    score = log_probs[0] + start
    back = np.zeros((steps, log_probs.shape[1]), dtype=np.int64)
    for t in range(1, steps):
        candidates = score[:, None] + transition
        back[t] = candidates.argmax(axis=0)
        score = candidates.max(axis=0) + log_probs[t]
    path = [int(score.argmax())]
    for t in range(steps - 1, 0, -1):
        path.append(int(back[t, path[-1]]))
    return path[::-1]


def viterbi_batch(log_probs, lengths, start, transition):
    """:func:`viterbi` for a batch at once: ``log_probs`` ``[B, T, L]`` (rows padded past their
    length with anything), ``lengths`` ``[B]``; returns the paths as a ``[B, T]`` int array
    (entries past a row's length are meaningless).

    One vectorised step per position instead of one per position and sequence: past a row's
    length its score is carried unchanged and its back-pointers are the identity, so one
    backtrack from the last position serves every row.
    """
    import numpy as np

    log_probs = np.asarray(log_probs, dtype=np.float64)
    batch, steps, n = log_probs.shape
    lengths = np.asarray(lengths)
    paths = np.zeros((batch, steps), dtype=np.int64)
    if batch == 0 or steps == 0:
        return paths
    score = log_probs[:, 0] + start
    back = np.broadcast_to(np.arange(n), (steps, batch, n)).copy()
    for t in range(1, steps):
        candidates = score[:, :, None] + transition[None]
        best = candidates.argmax(axis=1)
        new = np.take_along_axis(candidates, best[:, None, :], axis=1)[:, 0] + log_probs[:, t]
        live = t < lengths
        back[t, live] = best[live]
        score = np.where(live[:, None], new, score)
    paths[:, steps - 1] = score.argmax(axis=1)
    rows = np.arange(batch)
    for t in range(steps - 1, 0, -1):
        paths[:, t - 1] = back[t, rows, paths[:, t]]
    return paths
