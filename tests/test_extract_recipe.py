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
    assert args.refit == "none" and args.augment == 0.5
    args = parser.parse_args(
        ["extract", "train", "--train", "t.jsonl", "--out", "o", "--no-average-weights"]
    )
    assert args.average_weights is False


# ------------------------------------------------------------------------------------------
# refit: retrain on all titles once validation has picked the weights


def _titles():
    from kgwb.text.extract import LabeledTitle, _labeled_title

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


@pytest.fixture()
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_refit_stops_at_the_picked_epoch_and_keeps_the_picked_average(tiny_encoder, one_thread):
    from kgwb.text.extract import ExtractorConfig, Pick, fine_tune

    config = ExtractorConfig(model=tiny_encoder, epochs=4, batch_size=4, max_length=24, seed=5)
    titles = _titles()
    runs = {p: fine_tune(titles, config, pick=p) for p in (Pick(2), Pick(3), Pick(3, 2))}
    assert [len(runs[p].losses) for p in runs] == [2, 3, 3]  # the schedule stops at the pick
    assert runs[Pick(3)].losses[:2] == runs[Pick(2)].losses  # same schedule, same batches
    assert runs[Pick(3, 2)].extractor.training["selected"] == "average of epochs 2-3"
    weights = {p: r.extractor.model.classifier.weight.detach() for p, r in runs.items()}
    assert torch.allclose(weights[Pick(3, 2)], (weights[Pick(2)] + weights[Pick(3)]) / 2)
    assert not torch.allclose(weights[Pick(2)], weights[Pick(3)])


@pytest.mark.parametrize("refit", ["shared", "each"])
def test_train_extractor_refits_members_on_all_titles(tiny_encoder, one_thread, refit, tmp_path):
    from kgwb.text.extract import ExtractorTrainResult, train_extractor

    titles = _titles()
    result = train_extractor(
        train=titles,
        test=titles[:4],
        model=tiny_encoder,
        epochs=3,
        batch_size=4,
        max_length=24,
        seed=2,
        ensemble=2,
        valid_fraction=0.25,
        refit=refit,
        out_dir=tmp_path,
    )
    metrics = result.metrics
    members = metrics["ensemble"]
    assert [m["seed"] for m in members] == [2, 3] and all(m["refit"] for m in members)
    assert metrics["n_train"] == len(titles) and metrics["n_valid"] > 0
    assert all(m["selected"].endswith(f"refit on all {len(titles)} titles") for m in members)
    assert all(len(m["valid_micro_f1_per_epoch"]) == 3 for m in members)
    spent = [m["validation_seconds"] for m in members]
    if refit == "shared":  # one validation run (seed 2) picked for both
        assert spent[0] > 0 and spent[1] == 0
        assert members[0]["selected"] == members[1]["selected"]
    else:
        assert all(s > 0 for s in spent)
    total = sum(m["train_seconds"] + m["validation_seconds"] for m in members)
    assert metrics["train_seconds"] == pytest.approx(total, abs=0.05)
    assert len(result.extractor.models) == 2 and "micro_f1" in metrics
    again = ExtractorTrainResult.load(tmp_path)
    assert [m["refit"] for m in again.members] == [True, True]


def test_refit_needs_a_split_of_train_and_a_known_mode(tiny_encoder, one_thread):
    from kgwb.errors import ConfigError
    from kgwb.text.extract import ExtractorConfig, train_extractor

    titles = _titles()
    result = train_extractor(  # given validation titles: the members already train on all
        train=titles[4:],
        valid=titles[:4],
        model=tiny_encoder,
        epochs=1,
        batch_size=4,
        max_length=24,
        refit="each",
    )
    assert result.metrics["ensemble"][0]["refit"] is False
    with pytest.raises(ConfigError, match="refit"):
        ExtractorConfig(refit="always").validate()


# ------------------------------------------------------------------------------------------
# mention replacement (--augment)


def test_replace_mentions_swaps_values_within_category_and_attribute_and_moves_spans():
    import random

    from kgwb.text.extract import _labeled_title, mention_pools, replace_mentions

    titles = _titles()
    pools = mention_pools(titles)
    assert sorted(set(pools[("Shoes", "Color")])) == ["Green", "Red"]  # category-wise
    rng = random.Random(0)
    swapped = [replace_mentions(t, pools, rng, 1.0) for t in titles]
    changed = 0
    for before, after in zip(titles, swapped):
        assert after.category == before.category and after.targets == before.targets
        assert [s.attribute for s in after.spans] == [s.attribute for s in before.spans]
        for s in after.spans:  # every span still names its own text
            assert after.text[s.start : s.end] == s.value
            assert s.value in pools[(after.category, s.attribute)]
        assert after.text.endswith(before.text[before.spans[-1].end :])  # the rest is kept
        changed += after.text != before.text
    assert changed > len(titles) // 2
    # probability 0, or a value without a pool, leaves the title as it is
    assert [replace_mentions(t, pools, rng, 0.0).text for t in titles] == [t.text for t in titles]
    odd = _labeled_title("Acme Widget", "Tools", {"Brand": ["Acme"]}, occurrences="first")
    assert replace_mentions(odd, pools, rng, 1.0).text == "Acme Widget"


def test_augment_gives_every_epoch_its_own_titles_and_is_seeded(tiny_encoder, one_thread):
    from kgwb.errors import ConfigError
    from kgwb.text.extract import ExtractorConfig, fine_tune

    titles = _titles()
    config = ExtractorConfig(
        model=tiny_encoder, epochs=2, batch_size=4, max_length=24, seed=1, augment=0.5
    )
    a, b = fine_tune(titles, config), fine_tune(titles, config)
    assert a.losses == b.losses  # seeded
    plain = fine_tune(titles, ExtractorConfig(**{**config.to_dict(), "augment": 0.0}))
    assert plain.losses != a.losses
    with pytest.raises(ConfigError, match="augment"):
        ExtractorConfig(model=tiny_encoder, augment=1.5).validate()
