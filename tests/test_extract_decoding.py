"""Decoding picked on validation: adjacent fragments of one attribute merged, spans below
``min_confidence`` dropped; ``train_extractor`` picks both on titles the models never trained
on."""

from __future__ import annotations

import pytest
import torch

from kgwb.text.bio import merge_fragments
from kgwb.text.extract import LabeledTitle, _labeled_title, pick_decoding


def _titles() -> list[LabeledTitle]:
    brands = ["Zantrix", "Velmora", "Quorbin", "Astelle", "Brixley", "Kendaro"]
    colors = ["Red", "Blue", "Green", "Black"]
    out: list[LabeledTitle] = []
    for k, brand in enumerate(brands * 3):
        color = colors[k % len(colors)]
        category = ("Shoes", "Bags")[k % 2]
        text = f"{brand} Running Shoe, {color}, Size {5 + k % 6}"
        out.append(
            _labeled_title(
                text, category, {"Brand": [brand], "Color": [color]}, occurrences="first"
            )
        )
    return out


class _Canned:
    """Stands in for an extractor: the same spans for every call, whatever its threshold."""

    def __init__(self, spans: list[list[dict]]) -> None:
        self.spans = spans
        self.min_confidence = 0.7
        self.merge_fragments = True
        self.thresholds_seen: list[tuple[float, bool]] = []

    def extract(self, titles, categories, batch_size=64):
        self.thresholds_seen.append((self.min_confidence, self.merge_fragments))
        assert len(titles) == len(self.spans)
        return self.spans


def _span(title: LabeledTitle, attribute: str, value: str, confidence: float) -> dict:
    start = title.text.index(value)
    return {
        "attribute": attribute,
        "value": value,
        "start": start,
        "end": start + len(value),
        "confidence": confidence,
    }


def test_pick_decoding_drops_weak_wrong_values():
    titles = _titles()[:4]
    # right brands (confident), wrong colours (weak): dropping the colours lifts precision
    spans = [
        [_span(t, "Brand", t.text.split()[0], 0.95), _span(t, "Color", "Running", 0.45)]
        for t in titles
    ]
    extractor = _Canned(spans)
    picked = pick_decoding([(extractor, titles)], grid=(0.3, 0.5, 0.9))
    assert extractor.thresholds_seen == [(0.0, False)]  # extracted once, plain
    assert (extractor.min_confidence, extractor.merge_fragments) == (0.7, True)  # restored
    assert picked["min_confidence"] == 0.5  # the smallest of the best
    assert picked["merge_fragments"] is False  # merging changes nothing here: left out
    f1 = {
        k.removeprefix("no merge, min_confidence "): v for k, v in picked["valid_micro_f1"].items()
    }
    assert len(f1) == 8 and {"0.0", "0.3", "0.5", "0.9"} <= set(f1)
    assert f1["0.5"] == f1["0.9"] > f1["0.3"] == f1["0.0"]
    # precision 4/4, recall 4/8 once the colours go
    assert f1["0.5"] == pytest.approx(100 * 2 * 1.0 * 0.5 / 1.5, abs=1e-3)
    assert picked["n_valid"] == 4


def test_pick_decoding_keeps_every_span_unless_a_threshold_wins():
    titles = _titles()[:4]
    spans = [
        [_span(t, "Brand", t.text.split()[0], 0.4), _span(t, "Color", t.text.split(", ")[1], 0.9)]
        for t in titles
    ]
    # every value right: any threshold above 0.4 loses the brands
    picked = pick_decoding([(_Canned(spans), titles)], grid=(0.3, 0.5))
    assert picked["min_confidence"] == 0.0 and picked["merge_fragments"] is False
    f1 = picked["valid_micro_f1"]
    assert f1["no merge, min_confidence 0.0"] == f1["no merge, min_confidence 0.3"] == 100.0


def test_pick_decoding_pools_the_slots_of_several_extractors():
    titles = _titles()[:6]
    good = [[_span(t, "Brand", t.text.split()[0], 0.6)] for t in titles[:3]]
    bad = [[_span(t, "Brand", "Shoe", 0.6)] for t in titles[3:]]
    picked = pick_decoding(
        [(_Canned(good), titles[:3]), (_Canned(bad), titles[3:])], grid=(0.5, 0.7)
    )
    # pooled: 3 right, 3 wrong of 6 brand slots (+6 colour slots unanswered)
    assert picked["n_valid"] == 6
    f1 = picked["valid_micro_f1"]
    assert f1["no merge, min_confidence 0.5"] == f1["no merge, min_confidence 0.0"] > 0
    assert f1["no merge, min_confidence 0.7"] == 0.0
    assert picked["min_confidence"] == 0.0


@pytest.fixture()
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_min_confidence_filters_spans_and_is_saved_with_the_model(
    tiny_encoder, one_thread, tmp_path
):
    from kgwb.text.extract import ExtractorConfig, fine_tune, load_extractor

    titles = _titles()
    config = ExtractorConfig(model=tiny_encoder, epochs=2, batch_size=4, max_length=24, lr=1e-3)
    extractor = fine_tune(titles, config).extractor
    texts, categories = [t.text for t in titles], [t.category for t in titles]
    everything = extractor.extract(texts, categories)
    confidences = sorted(s["confidence"] for found in everything for s in found)
    assert confidences, "the tiny model predicted no span at all"
    cut = confidences[len(confidences) // 2]
    extractor.min_confidence = cut
    kept = extractor.extract(texts, categories)
    assert kept == [[s for s in found if s["confidence"] >= cut] for found in everything]
    extractor.settings.min_confidence = cut
    extractor.save(tmp_path / "model")
    again = load_extractor(tmp_path / "model", dtype="float32")
    assert again.min_confidence == cut
    assert again.extract(texts, categories) == kept
    override = load_extractor(tmp_path / "model", dtype="float32", min_confidence=0.0)
    assert override.extract(texts, categories) == everything


def test_train_extractor_picks_the_threshold_on_the_members_splits(
    tiny_encoder, one_thread, tmp_path
):
    from kgwb.text.extract import MIN_CONFIDENCE_GRID, ExtractorTrainResult, train_extractor

    titles = _titles()
    common = dict(
        train=titles,
        test=titles[:4],
        model=tiny_encoder,
        epochs=2,
        batch_size=4,
        max_length=24,
        lr=1e-3,
        ensemble=2,
        valid_fraction=0.25,
    )
    result = train_extractor(**common, out_dir=tmp_path / "auto")
    chosen = result.metrics["decoding"]
    assert chosen["picked_on"] == "each member's own validation split (cross-fitted)"
    assert chosen["min_confidence"] in MIN_CONFIDENCE_GRID
    assert chosen["n_valid"] == sum(m["n_valid"] for m in result.members) > 0
    assert len(chosen["valid_micro_f1"]) == 2 * len(MIN_CONFIDENCE_GRID)
    assert chosen["merge_fragments"] in (False, True)
    assert result.extractor.merge_fragments == chosen["merge_fragments"]
    assert result.extractor.min_confidence == chosen["min_confidence"]
    assert all("valid_titles" not in m for m in result.members)
    again = ExtractorTrainResult.load(tmp_path / "auto")
    assert again.extractor.min_confidence == chosen["min_confidence"]
    assert again.decoding["min_confidence"] == chosen["min_confidence"]

    fixed = train_extractor(**common, pick_decoding=False, min_confidence=0.5)
    assert fixed.metrics["decoding"] == {
        "min_confidence": 0.5,
        "merge_fragments": False,
        "picked_on": "config",
    }
    assert fixed.extractor.min_confidence == 0.5
    assert all(s["confidence"] >= 0.5 for row in fixed.evaluation.predictions for s in row["spans"])


@pytest.mark.parametrize(
    ("text", "fragments", "expected"),
    [
        (
            "Philips Sonicare DiamondClean Brush",
            ["Philips Sonicare", "DiamondClean"],
            ["Philips Sonicare DiamondClean"],
        ),
        ("Folate 1700mcg/1000mcg, 100 Tablets", ["1700mcg/", "1000mcg"], ["1700mcg/1000mcg"]),
        ("Tea Peach - Mango Flavor", ["Peach", "Mango"], ["Peach - Mango"]),
        # a comma (or a word of another attribute) parts two values
        ("Shoe Red, Blue", ["Red", "Blue"], ["Red", "Blue"]),
        ("Shoe Red Suede Blue", ["Red", "Blue"], ["Red", "Blue"]),
    ],
)
def test_merge_fragments_joins_adjacent_pieces_of_one_attribute(text, fragments, expected):
    spans = []
    for k, value in enumerate(fragments):
        start = text.index(value)
        spans.append(
            {
                "attribute": "A",
                "value": value,
                "start": start,
                "end": start + len(value),
                "confidence": 0.5 + 0.4 * k,
            }
        )
    other = {"attribute": "B", "value": "Tea", "start": 0, "end": 3, "confidence": 0.3}
    merged = merge_fragments(
        text, list(reversed(spans)) + ([other] if text.startswith("Tea") else [])
    )
    values = [s["value"] for s in merged if s["attribute"] == "A"]
    assert values == expected
    assert all(text[s["start"] : s["end"]] == s["value"] for s in merged)
    if len(expected) == 1 and len(fragments) == 2:
        assert [s["confidence"] for s in merged if s["attribute"] == "A"] == [pytest.approx(0.7)]


def test_min_confidence_flags_and_their_check():
    import argparse

    from kgwb.errors import ConfigError
    from kgwb.text.cli import register
    from kgwb.text.extract import ExtractorConfig

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    args = parser.parse_args(["extract", "train", "--train", "t.jsonl", "--out", "o"])
    assert args.pick_decoding is True and args.min_confidence == 0.0
    assert args.merge_fragments is False
    args = parser.parse_args(
        ["extract", "train", "--train", "t.jsonl", "--out", "o", "--no-pick-decoding"]
        + ["--min-confidence", "0.6", "--merge-fragments"]
    )
    assert args.pick_decoding is False and args.min_confidence == 0.6
    assert args.merge_fragments is True
    with pytest.raises(ConfigError, match="min_confidence"):
        ExtractorConfig(min_confidence=1.5).validate()
