"""The extractor's training recipe and span clean-up: tail weight averaging picked on
validation, separator/bracket debris trimmed from predicted values, the CLI defaults."""

from __future__ import annotations

import pytest
import torch

from kgwb.text.bio import tidy_bounds, tidy_spans
from kgwb.text.extract import _TailAverage


@pytest.mark.parametrize(
    ("text", "value", "expected"),
    [
        ("Vitamin C Crystals (Ascorbic Acid), 1-Pound", "Ascorbic Acid)", "Ascorbic Acid"),
        ("Mask - Pack of 3 (X-Large Size) 2 Layer", "(X-Large Size)", "X-Large Size"),
        ("Spray Gel 8 Ounce (237ml) (2 Pack)", "8 Ounce (237ml", "8 Ounce (237ml)"),
        ("Sunblock 30 SPF - 4 Fl. Oz", "30 SPF -", "30 SPF"),
        ("Cream 100ml, 3.38Oz", "100ml,", "100ml"),
        ("Cate & Levi Mask", "Cate &", "Cate"),
        # joiners attached to the value and dots belong to it
        ("Lotion SPF 50+ Kids", "SPF 50+", "SPF 50+"),
        ("Multivitamin + Omega-3", "Omega-", "Omega-"),
        ("Antioxidant Protection*, 8-Ounce", "Antioxidant Protection*", "Antioxidant Protection*"),
        ("The Humble Co. Brush", "The Humble Co.", "The Humble Co."),
        ("Candy .35 oz bag", ".35 oz", ".35 oz"),
        ("Tea (Green) Bags", "Tea (Green)", "Tea (Green)"),
        # nothing left: keep the prediction as it was
        (" - , ", " - ,", " - ,"),
    ],
)
def test_tidy_bounds_trims_separator_and_bracket_debris(text, value, expected):
    start = text.index(value)
    s, e = tidy_bounds(text, start, start + len(value))
    assert text[s:e] == expected


def test_tidy_spans_keeps_values_slices_of_the_title():
    text = "Brand X (Ascorbic Acid), Red"
    spans = [
        {"attribute": "A", "value": "Ascorbic Acid)", "start": 9, "end": 23, "confidence": 0.5}
    ]
    (span,) = tidy_spans(text, spans)
    assert span["value"] == text[span["start"] : span["end"]] == "Ascorbic Acid"
    assert span["confidence"] == 0.5 and spans[0]["value"] == "Ascorbic Acid)"  # input untouched


def test_tail_average_is_the_mean_of_the_second_half_and_restores_the_model():
    model = torch.nn.Linear(2, 2)
    tail = _TailAverage(epochs=6)
    assert tail.start == 4
    ready = []
    for epoch in range(1, 7):
        with torch.no_grad():
            model.weight.fill_(float(epoch))
        ready.append(tail.add(model, epoch))
    assert ready == [False, False, False, False, True, True]
    assert tail.first == 4 and torch.allclose(tail.state["weight"], torch.full((2, 2), 5.0))
    seen = tail.score(model, lambda: float(model.weight[0, 0].detach()))
    assert seen == 5.0 and tail.curve == [5.0]
    assert float(model.weight[0, 0].detach()) == 6.0  # the training weights are back


def test_cli_train_defaults_hold_out_validation_and_average_weights():
    import argparse

    from kgwb.text.cli import register

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    args = parser.parse_args(["extract", "train", "--train", "t.jsonl", "--out", "o"])
    assert args.valid_fraction == 0.1 and args.average_weights is True and args.ensemble == 3
    args = parser.parse_args(
        ["extract", "train", "--train", "t.jsonl", "--out", "o", "--no-average-weights"]
    )
    assert args.average_weights is False
