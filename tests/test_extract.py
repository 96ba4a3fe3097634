"""The language-model attribute-value extractor: BIO alignment, span decoding, the slot micro-F1,
a tiny fine-tuning run, inference edge cases, errors and the CLI.

Everything runs on CPU in seconds: the one training run is a few dozen synthetic titles for a
few epochs, shared by the tests through a module fixture.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach for the hub from tests
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

import pytest
import torch  # noqa: E402

from kgwb.paths import shared_datasets_dir
from kgwb.text.bio import (
    Span,
    best_per_attribute,
    char_bio_tags,
    decode_spans,
    locate_values,
    token_labels,
)
from kgwb.text.metrics import slot_scores


@pytest.fixture(scope="module")
def tokenizer():
    from kgwb.text.encoder import load_tokenizer

    return load_tokenizer()


def _labels_by_token(tokenizer, text, spans, *, category=None, subwords="all"):
    """[(token, label)] for the title tokens, the way the trainer builds them."""
    enc = (
        tokenizer(category, text, return_offsets_mapping=True)
        if category
        else tokenizer(text, return_offsets_mapping=True)
    )
    segment = 1 if category else 0
    in_text = [s == segment for s in enc.sequence_ids()]
    labels = token_labels(
        spans, enc["offset_mapping"], in_text, word_ids=enc.word_ids(), subwords=subwords
    )
    tokens = enc.tokens()
    return [(t, lab) for t, lab, inside in zip(tokens, labels, in_text) if inside], [
        lab for lab, inside in zip(labels, in_text) if not inside
    ]


# ------------------------------------------------------------------------------------------
# placing values on titles


def test_locate_prefers_whole_word_occurrence_that_overlaps_nothing():
    text = "Ellie Shoes Men's 105-saddle, Black/White, 10"
    spans, unplaced = locate_values(
        text, [("Model name", "105-saddle"), ("Size", "10"), ("Color", "Black/White")]
    )
    assert unplaced == []
    assert [(s.attribute, s.start, s.end) for s in spans] == [
        ("Model name", 18, 28),
        ("Color", 30, 41),
        ("Size", 43, 45),
    ]
    assert all(text[s.start : s.end] == s.value for s in spans)


def test_locate_longer_value_first_then_the_duplicate_goes_to_the_free_occurrence():
    text = "Great River Organic Milling, Oatmeal, Organic"
    spans, _ = locate_values(
        text, [("Specialty", "Organic"), ("Brand", "Great River Organic Milling")]
    )
    assert [(s.attribute, s.start) for s in spans] == [("Brand", 0), ("Specialty", 38)]


def test_locate_nested_value_without_free_occurrence_is_unplaced():
    spans, unplaced = locate_values(
        "Organic Valley Whole Milk", [("Brand", "Organic Valley"), ("Specialty", "Organic")]
    )
    assert [s.attribute for s in spans] == ["Brand"]
    assert unplaced == [("Specialty", "Organic")]


def test_locate_all_occurrences_and_case_insensitive_match_keeps_title_case():
    text = "ORGANIC green tea, organic, 20 bags"
    spans, _ = locate_values(text, [("Specialty", "Organic")], occurrences="all")
    assert [(s.start, s.end, s.value) for s in spans] == [(0, 7, "ORGANIC"), (19, 26, "organic")]
    first, _ = locate_values(text, [("Specialty", "Organic")])
    assert [(s.start, s.value) for s in first] == [(0, "ORGANIC")]


def test_locate_strips_values_and_reports_missing_ones():
    spans, unplaced = locate_values(
        "Tea 20 bags", [("Net content", " 20 bags "), ("Brand", "Lipton")]
    )
    assert [(s.start, s.end) for s in spans] == [(4, 11)]
    assert unplaced == [("Brand", "Lipton")]


def test_distant_supervision_from_wide_tuples_and_long_records():
    from kgwb.text.extract import examples_from_records

    wide = [
        (
            "a1",
            "Acme green tea, GREEN TEA bags",
            "Tea",
            {"Tea variety": "green tea", "Brand": "Acme"},
        ),
        ("a2", "Plain title", "Tea", {"Brand": "Nowhere"}),
    ]
    first = examples_from_records(wide)
    assert [(s.attribute, s.value) for s in first[0].spans] == [
        ("Brand", "Acme"),
        ("Tea variety", "green tea"),
    ]
    assert first[1].spans == [] and first[1].unplaced == [("Brand", "Nowhere")]
    every = examples_from_records(wide, occurrences="all", drop_unmatched=True)
    assert len(every) == 1
    assert [s.value for s in every[0].spans] == ["Acme", "green tea", "GREEN TEA"]
    long = [
        {"item_id": 7, "text": "Acme tea", "category": "Tea", "attribute": "Brand", "value": "acme"}
    ]
    (example,) = examples_from_records(long)
    assert (example.item_id, example.spans[0].value) == ("7", "Acme")


def test_char_bio_tags():
    tags = char_bio_tags("ab cd", [Span(3, 5, "X", "cd")])
    assert tags == ["O", "O", "O", "B-X", "I-X"]
    with pytest.raises(ValueError, match="overlaps"):
        char_bio_tags("abcd", [Span(0, 3, "X", "abc"), Span(2, 4, "Y", "cd")])


# ------------------------------------------------------------------------------------------
# BIO labels per sub-word token (real MiniLM tokenizer, hand-written expectations)


def test_token_labels_values_at_start_and_end_with_category_pair(tokenizer):
    text = "Nike Air Max Red"
    spans, _ = locate_values(text, [("Brand", "Nike"), ("Model name", "Air Max"), ("Color", "Red")])
    title, outside = _labels_by_token(tokenizer, text, spans, category="Shoes")
    assert title == [
        ("nike", "B-Brand"),
        ("air", "B-Model name"),
        ("max", "I-Model name"),
        ("red", "B-Color"),
    ]
    assert outside == [None] * 4  # [CLS] shoes [SEP] ... [SEP]: ignored by the loss


def test_token_labels_multi_subword_values(tokenizer):
    text = "Coppertone Kids Sunscreen SPF 50, 6 oz"
    spans, _ = locate_values(text, [("Brand", "Coppertone"), ("Protection level", "SPF 50")])
    title, _ = _labels_by_token(tokenizer, text, spans)
    assert title == [
        ("copper", "B-Brand"),
        ("##tone", "I-Brand"),
        ("kids", "O"),
        ("suns", "O"),
        ("##creen", "O"),
        ("sp", "B-Protection level"),
        ("##f", "I-Protection level"),
        ("50", "I-Protection level"),
        (",", "O"),
        ("6", "O"),
        ("oz", "O"),
    ]
    first, _ = _labels_by_token(tokenizer, text, spans, subwords="first")
    assert [lab for _, lab in first][:2] == ["B-Brand", None]
    assert [lab for _, lab in first][5:8] == ["B-Protection level", None, "I-Protection level"]


def test_token_labels_unicode_emoji_and_html(tokenizer):
    text = "<b>Café Bustelo</b> ☕ Espresso 😀 10 oz"
    spans, _ = locate_values(text, [("Brand", "Café Bustelo"), ("Net content", "10 oz")])
    title, _ = _labels_by_token(tokenizer, text, spans)
    labelled = [(t, lab) for t, lab in title if lab != "O"]
    assert labelled == [
        ("cafe", "B-Brand"),
        ("bust", "I-Brand"),
        ("##elo", "I-Brand"),
        ("10", "B-Net content"),
        ("oz", "I-Net content"),
    ]
    assert ("[UNK]", "O") in title  # the emoji


def test_token_labels_value_inside_a_longer_token_labels_that_token():
    # a value that starts inside a token still opens the span on that token
    spans = [Span(2, 4, "Size", "00")]
    assert token_labels(spans, [(0, 4), (5, 7)], [True, True]) == ["B-Size", "O"]


# ------------------------------------------------------------------------------------------
# decoding token predictions back to spans


def test_decode_spans_values_are_slices_of_the_original_text():
    text = "NIKE Air Max, Red"
    offsets = [(0, 0), (0, 4), (5, 8), (9, 12), (12, 13), (14, 17), (0, 0)]
    labels = [None, "B-Brand", "B-Model", "I-Model", "O", "I-Color", None]
    probs = [1.0, 0.9, 0.8, 0.6, 0.99, 0.5, 1.0]
    spans = decode_spans(text, labels, offsets, confidences=probs)
    assert [(s["attribute"], s["value"], s["start"], s["end"]) for s in spans] == [
        ("Brand", "NIKE", 0, 4),
        ("Model", "Air Max", 5, 12),
        ("Color", "Red", 14, 17),  # an I- without a B- opens a span (lenient)
    ]
    assert spans[1]["confidence"] == pytest.approx(0.7)
    assert all(text[s["start"] : s["end"]] == s["value"] for s in spans)


def test_decode_spans_switching_attribute_closes_the_span():
    labels = ["B-A", "I-B", "I-B", "O", "B-A", "B-A"]
    offsets = [(0, 1), (2, 3), (4, 5), (6, 7), (8, 9), (10, 11)]
    spans = decode_spans("a b c d e f", labels, offsets)
    assert [(s["attribute"], s["value"]) for s in spans] == [
        ("A", "a"),
        ("B", "b c"),
        ("A", "e"),
        ("A", "f"),
    ]


def test_viterbi_repairs_an_i_tag_without_b_tag():
    import numpy as np

    from kgwb.text.bio import bio_transitions, viterbi

    labels = ["O", "B-A", "I-A", "B-B", "I-B"]
    tiny = 1e-9
    probs = np.array(
        [
            [0.6, 0.3, 0.1, tiny, tiny],  # arg-max O ...
            [0.1, 0.1, 0.8, tiny, tiny],  # ... then I-A: not valid BIO
        ]
    )
    start, transition = bio_transitions(labels)
    assert start[2] == -np.inf and transition[0, 2] == -np.inf and transition[1, 2] == 0
    assert transition[3, 2] == -np.inf  # I-A cannot follow B-B
    # valid paths: B-A I-A = 0.3 * 0.8 = 0.24 beats O O = 0.06, O B-A = 0.06, B-A B-A = 0.03
    assert viterbi(np.log(probs), start, transition) == [1, 2]
    assert viterbi(np.log(probs[:0]), start, transition) == []


def test_batched_viterbi_matches_one_sequence_at_a_time():
    import numpy as np

    from kgwb.text.bio import bio_transitions, viterbi, viterbi_batch

    labels = ["O", "B-A", "I-A", "B-B", "I-B"]
    start, transition = bio_transitions(labels)
    rng = np.random.default_rng(0)
    for _ in range(100):
        batch, steps = int(rng.integers(1, 6)), int(rng.integers(1, 9))
        lengths = rng.integers(1, steps + 1, size=batch)
        log_probs = np.log(rng.dirichlet(np.ones(len(labels)), size=(batch, steps)))
        paths = viterbi_batch(log_probs, lengths, start, transition)
        for row in range(batch):
            n = lengths[row]
            assert list(paths[row, :n]) == viterbi(log_probs[row, :n], start, transition)


def test_best_per_attribute_keeps_the_most_confident_span():
    spans = [
        {"attribute": "Brand", "value": "Acme", "confidence": 0.6},
        {"attribute": "Brand", "value": "Bolt", "confidence": 0.9},
        {"attribute": "Size", "value": "10", "confidence": 0.5},
    ]
    assert best_per_attribute(spans) == {"Brand": "Bolt", "Size": "10"}


# ------------------------------------------------------------------------------------------
# the slot micro-F1 on a hand-computed example


def test_slot_micro_f1_hand_computed():
    schema = {"Shoes": ["Brand", "Color", "Size"]}
    categories = ["Shoes"] * 3
    targets = [
        {"Brand": {"Nike": 1}, "Color": {"Red": 1}},
        {"Brand": {"Adidas": 1}, "Size": {"9": 1}},
        {"Color": {"Black": 1}},
    ]
    predictions = [
        {"Brand": "Nike", "Color": "Blue", "Size": "10"},  # vc, vw, nv
        {"Brand": "Adidas", "Flavor": "Mint"},  # vc, nn (Color), vn (Size); Flavor: no slot
        {"Brand": "Puma", "Color": " Black "},  # nv, vc (stripped), nn (Size)
    ]
    scores = slot_scores(targets, predictions, categories, schema=schema)
    assert scores.counts == {"nn": 2, "nv": 2, "vn": 1, "vc": 3, "vw": 1}
    # precision = vc / (vc + vw + nv) = 3 / 6; recall = vc / (vc + vw + vn) = 3 / 5
    # F1 = 2 * 0.5 * 0.6 / 1.1 = 0.545454...
    assert scores.unit == "percent"
    assert scores.precision == pytest.approx(50.0)
    assert scores.recall == pytest.approx(60.0)
    assert scores.micro_f1 == pytest.approx(54.5455, abs=1e-3)
    # ExtractGPT's script skips slots without a target: precision = 3 / 4, F1 = 0.9 / 1.35
    assert scores.extractgpt_protocol()["precision"] == pytest.approx(75.0)
    assert scores.extractgpt_protocol()["micro_f1"] == pytest.approx(66.6667, abs=1e-3)
    # Brand: vc 2, nv 1 -> P 2/3, R 1, F1 0.8; Color: vc 1, vw 1 -> 0.5; Size: nv 1, vn 1 -> 0
    table = scores.per_attribute
    assert table["Brand"]["precision"] == pytest.approx(66.6667, abs=1e-3)
    assert table["Brand"]["f1"] == pytest.approx(80.0)
    assert table["Color"]["f1"] == pytest.approx(50.0)
    assert table["Size"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    as_fraction = slot_scores(targets, predictions, categories, schema=schema, unit="fraction")
    assert as_fraction.micro_f1 == pytest.approx(0.545455, abs=1e-5)
    assert as_fraction.to_dict()["unit"] == "fraction"


def test_slot_metric_is_case_sensitive():
    scores = slot_scores([{"Brand": ["Nike"]}], [{"Brand": "nike"}], ["Shoes"])
    assert scores.counts["vw"] == 1 and scores.micro_f1 == 0.0


# ------------------------------------------------------------------------------------------
# a tiny fine-tuning run (distant supervision from records), shared by the inference tests

_BRANDS = ["Zantrix", "Velmora", "Quorbin", "Astelle", "Brixley", "Kendaro"]
_COLORS = ["Red", "Blue", "Green", "Black"]
_TEMPLATES = [
    "{b} Men's Running Shoe, {c}, Size {n}",
    "{b} Women's Trail Sneaker {c} {n} M US",
    "{b} Kids Canvas Slip-On - {c}",
]


def _tiny_records():
    rows = []
    k = 0
    for b in _BRANDS:
        for t in _TEMPLATES:
            c = _COLORS[k % len(_COLORS)]
            text = t.format(b=b, c=c, n=6 + k % 6)
            rows.append(
                {
                    "item_id": f"i{k}",
                    "text": text,
                    "category": "Shoes",
                    "attribute": "Brand",
                    "value": b,
                }
            )
            rows.append(
                {
                    "item_id": f"i{k}",
                    "text": text,
                    "category": "Shoes",
                    "attribute": "Color",
                    "value": c,
                }
            )
            k += 1
    return rows


#: what `kgwb extract train` must write into metrics.json
ISSUE_METRICS = (
    "micro_f1",
    "precision",
    "recall",
    "per_attribute",
    "train_seconds",
    "titles_per_second",
    "unit",
)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    import pandas as pd

    from kgwb.text.extract import examples_from_records, train_extractor

    # one thread: on a shared 2-core machine, two OpenMP threads per process thrash (6x slower)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    train = examples_from_records(pd.DataFrame(_tiny_records()))
    test = [
        {
            "input": "Velmora Men's Trail Sneaker, Green, Size 8",
            "category": "Shoes",
            "target_scores": {"Brand": {"Velmora": 1}, "Color": {"Green": 1}},
        },
    ]
    out = tmp_path_factory.mktemp("extractor")
    result = train_extractor(
        train=train, test=test, out_dir=out, epochs=6, batch_size=8, lr=3e-4, seed=0, max_length=32
    )
    yield result, out
    torch.set_num_threads(threads)


def test_tiny_fine_tuning_loss_falls_and_finds_the_planted_value(tiny_run):
    result, _ = tiny_run
    assert len(result.losses) == 6
    assert result.losses[-1] < 0.5 * result.losses[0]
    spans = result.extractor.extract(["Kendaro Kids Canvas Slip-On - Blue"], ["Shoes"])[0]
    assert best_per_attribute(spans).get("Brand") == "Kendaro"


def test_saved_run_has_metrics_config_and_model(tiny_run):
    result, out = tiny_run
    metrics = json.loads((out / "metrics.json").read_text())
    for key in (
        *ISSUE_METRICS,
        "seed",
        "model",
        "epochs",
        "config",
        "environment",
    ):
        assert key in metrics, key
    assert metrics["unit"] == "percent" and metrics["seed"] == 0 and metrics["epochs"] == 6
    assert (out / "model" / "model.safetensors").is_file()
    assert (out / "model" / "kgwb_extractor.json").is_file()
    assert (out / "config.json").is_file() and (out / "test_predictions.jsonl").is_file()


def test_extract_recovers_original_case_and_offsets(tiny_run):
    from kgwb.text.extract import extract, load_extractor

    _, out = tiny_run
    extractor = load_extractor(out)  # OUT or OUT/model both work
    titles = [
        "QUORBIN Men's Running Shoe, BLACK, Size 9",
        "astelle women's trail sneaker red 7 m us",
    ]
    results = extract(titles, ["Shoes", "Shoes"], model=extractor, batch_size=1)
    for title, spans in zip(titles, results):
        for span in spans:
            assert set(span) == {"attribute", "value", "start", "end", "confidence"}
            assert span["value"] == title[span["start"] : span["end"]]
            assert 0.0 < span["confidence"] <= 1.0
    assert best_per_attribute(results[0]).get("Brand") == "QUORBIN"


def test_bfloat16_extractor_and_decoding_options(tiny_run):
    from kgwb.errors import KgwbError
    from kgwb.text.extract import load_extractor

    _, out = tiny_run
    title = "Brixley Women's Trail Sneaker Green 9 M US"
    for options in ({"dtype": "bfloat16"}, {"decode": "token", "viterbi": False}):
        extractor = load_extractor(out, **options)
        spans = extractor.extract([title], "Shoes")[0]
        assert all(span["value"] == title[span["start"] : span["end"]] for span in spans)
        assert best_per_attribute(spans).get("Brand") == "Brixley"
    with pytest.raises(KgwbError, match="dtype"):
        load_extractor(out, dtype="float8")


def test_empty_html_emoji_and_overlong_titles(tiny_run):
    extractor = tiny_run[0].extractor
    long_title = "Zantrix Men's Running Shoe " + "wide fit " * 1_111  # 10,026 characters
    titles = ["", "   ", None, "<b>Brixley</b> Kids Canvas Slip-On &amp; 😀🔥 - Red", long_title]
    with pytest.warns(UserWarning, match=r"1 of 5 texts were longer than max_length=32 tokens"):
        results = extractor.extract(titles, ["Shoes"] * 5, batch_size=2)
    assert results[0] == [] and results[1] == [] and results[2] == []
    for title, spans in zip(titles[3:], results[3:]):
        assert all(span["value"] == title[span["start"] : span["end"]] for span in spans)
    assert all(span["end"] <= 200 for span in results[4])


def test_extract_without_categories_is_a_clear_error(tiny_run):
    from kgwb.errors import KgwbError

    with pytest.raises(KgwbError, match="categories"):
        tiny_run[0].extractor.extract(["Zantrix Men's Running Shoe"])


def test_cli_apply_writes_spans(tiny_run, tmp_path, capsys):
    from kgwb.cli import main

    _, out = tiny_run
    src = tmp_path / "titles.jsonl"
    src.write_text(
        json.dumps(
            {"item_id": "a", "input": "Astelle Kids Canvas Slip-On - Red", "category": "Shoes"}
        )
        + "\n\n"
        + json.dumps("Brixley Men's Running Shoe, Blue, Size 10")
        + "\n"
    )
    dest = tmp_path / "spans.jsonl"
    assert (
        main(
            [
                "extract",
                "apply",
                "--model",
                str(out / "model"),
                "--input",
                str(src),
                "--out",
                str(dest),
            ]
        )
        == 0
    )
    summary = json.loads(capsys.readouterr().out)
    assert summary["n_titles"] == 2
    rows = [json.loads(line) for line in dest.read_text().splitlines()]
    assert rows[0]["item_id"] == "a" and rows[0]["prediction"].get("Brand") == "Astelle"
    assert all("spans" in r for r in rows)


def test_cli_apply_bad_input_line_names_file_and_line(tiny_run, tmp_path, capsys):
    from kgwb.cli import main

    src = tmp_path / "bad.jsonl"
    src.write_text('{"input": "ok"}\n{"input": 3}\n')
    code = main(
        [
            "extract",
            "apply",
            "--model",
            str(tiny_run[1]),
            "--input",
            str(src),
            "--out",
            str(tmp_path / "o"),
        ]
    )
    assert code == 2
    assert f"{src}:2:column input" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------
# errors and the command line


def test_model_not_found_message_says_hub_and_local_path():
    from kgwb.text.encoder import EncoderNotFoundError, resolve_encoder

    with pytest.raises(EncoderNotFoundError) as e:
        resolve_encoder("kgwb-test/no-such-model-anywhere")
    message = str(e.value)
    assert "kgwb-test/no-such-model-anywhere" in message
    assert "hub" in message and "local folder" in message
    with pytest.raises(EncoderNotFoundError, match="no such model folder"):
        resolve_encoder("./no/such/folder")


def test_loading_weights_prints_no_progress_bar_and_restores_the_settings(tiny_run):
    # a fresh interpreter with progress bars on (the test environment turns them off through
    # variables that tqdm and huggingface_hub read when they are imported)
    script = (
        "import sys\n"
        "from transformers.utils import logging as hf\n"
        "from kgwb.text.extract import Extractor\n"
        "before = (hf.is_progress_bar_enabled(), hf.get_verbosity())\n"
        "Extractor.load(sys.argv[1], device='cpu')\n"
        "assert (hf.is_progress_bar_enabled(), hf.get_verbosity()) == before, before\n"
        "assert before[0]\n"
    )
    quiet = ("TQDM_DISABLE", "HF_HUB_DISABLE_PROGRESS_BARS")
    env = {k: v for k, v in os.environ.items() if k not in quiet}
    proc = subprocess.run(
        [sys.executable, "-c", script, str(tiny_run[1])], capture_output=True, text=True, env=env
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Loading weights" not in proc.stderr


def test_bundled_encoder_is_the_default():
    from kgwb.text.encoder import bundled_encoder_dir, resolve_encoder

    assert resolve_encoder() == str(bundled_encoder_dir()) == resolve_encoder("minilm")


def test_labeled_jsonl_bad_line_names_file_line_and_field(tmp_path):
    from kgwb.errors import DataError
    from kgwb.text.extract import read_labeled_jsonl

    path = tmp_path / "bad.jsonl"
    path.write_text(
        '{"input": "Tea", "category": "Tea", "target_scores": {}}\n{"category": "Tea"}\n'
    )
    with pytest.raises(DataError) as e:
        read_labeled_jsonl(path)
    assert str(e.value).startswith(f"{path}:2:column input:")


def test_cli_registers_without_importing_torch():
    code = (
        "import argparse, sys; from kgwb.text.cli import register; "
        "p = argparse.ArgumentParser(); register(p.add_subparsers()); "
        "p.parse_args(['extract', 'train', '--train', 'a', '--out', 'b']); "
        "print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# ------------------------------------------------------------------------------------------
# the real OA-Mine data (skipped when ../shared/datasets is absent)


def _oa_mine():
    root = shared_datasets_dir()
    if root is None or not (root / "oa-mine" / "train.jsonl").is_file():
        pytest.skip("../shared/datasets/oa-mine is absent")
    return root / "oa-mine"


@pytest.mark.shared
def test_oa_mine_loads_and_nearly_every_value_is_placed():
    from kgwb.text.extract import read_labeled_jsonl

    folder = _oa_mine()
    train = read_labeled_jsonl(folder / "train.jsonl")
    test = read_labeled_jsonl(folder / "test.jsonl")
    assert (len(train), len(test)) == (1452, 491)
    assert sum(len(e.targets) for e in train) == 7360
    assert sum(len(e.targets) for e in test) == 2451
    assert len({e.category for e in train}) == 10
    placed = sum(len(e.spans) for e in train)
    assert placed >= 0.99 * 7360
    for e in train + test:
        assert all(e.text[s.start : s.end] == s.value for s in e.spans)


# ------------------------------------------------------------------------------------------
# validation split and best-epoch selection


def test_split_validation_is_per_category_seeded_and_disjoint():
    from kgwb.errors import KgwbError
    from kgwb.text.extract import LabeledTitle, split_validation

    examples = [
        LabeledTitle(text=f"title {i}", category=c, targets={}, spans=[], unplaced=[])
        for c, n in (("Shoes", 40), ("Bags", 20), ("Hats", 1))
        for i in range(n)
    ]
    train, valid = split_validation(examples, 0.25, seed=3)
    assert len(train) + len(valid) == len(examples)
    assert not {id(e) for e in train} & {id(e) for e in valid}
    by_category = {c: sum(e.category == c for e in valid) for c in ("Shoes", "Bags", "Hats")}
    assert by_category == {"Shoes": 10, "Bags": 5, "Hats": 0}  # a lone title stays in train
    again = split_validation(examples, 0.25, seed=3)[1]
    assert [e.text for e in again] == [e.text for e in valid]
    assert [e.text for e in split_validation(examples, 0.25, seed=4)[1]] != [e.text for e in valid]
    with pytest.raises(KgwbError, match="valid_fraction"):
        split_validation(examples, 1.5)


def test_validation_keeps_the_weights_of_the_best_epoch(tmp_path):
    import pandas as pd

    from kgwb.text.extract import (
        evaluate_extractor,
        examples_from_records,
        split_validation,
        train_extractor,
    )

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        examples = examples_from_records(pd.DataFrame(_tiny_records()))
        train, valid = split_validation(examples, 0.3, seed=0)
        result = train_extractor(
            train=train,
            valid=valid,
            out_dir=tmp_path,
            epochs=4,
            batch_size=8,
            lr=3e-4,
            max_length=32,
        )
    finally:
        torch.set_num_threads(threads)
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    curve = metrics["valid_micro_f1_per_epoch"]
    assert len(curve) == 4 and metrics["n_valid"] == len(valid) > 0
    assert metrics["best_epoch"] == 1 + curve.index(max(curve))
    # the returned (and saved) model is the best candidate's (an epoch, or the average of the
    # second half's epochs): it scores that candidate's validation micro-F1 again
    averaged = metrics["ensemble"][0]["valid_micro_f1_average"]
    assert len(averaged) == 1  # epochs 3-4 of 4
    best = max(curve + averaged)
    assert metrics["selected"] == (
        f"epoch {metrics['best_epoch']}" if max(curve) >= max(averaged) else "average of epochs 3-4"
    )
    rescored = evaluate_extractor(model=result.extractor, test=valid, train=train)
    assert rescored.metrics["micro_f1"] == pytest.approx(best)
    reloaded = evaluate_extractor(model=tmp_path, test=valid, train=train)  # loads OUT/model
    assert reloaded.metrics["micro_f1"] == pytest.approx(best, abs=2.0)  # may be bfloat16


def test_cli_train_with_validation_fraction_writes_the_metrics(tmp_path, capsys):
    from kgwb.cli import main

    def oa_mine_line(row_brand, row_color, text):
        return json.dumps(
            {
                "input": text,
                "category": "Shoes",
                "target_scores": {"Brand": {row_brand: 1}, "Color": {row_color: 1}},
            }
        )

    lines = []
    for k, brand in enumerate(_BRANDS * 2):
        color = _COLORS[k % len(_COLORS)]
        lines.append(oa_mine_line(brand, color, _TEMPLATES[k % 3].format(b=brand, c=color, n=7)))
    train_file, test_file = tmp_path / "train.jsonl", tmp_path / "test.jsonl"
    train_file.write_text("\n".join(lines[2:]) + "\n")
    test_file.write_text("\n".join(lines[:2]) + "\n")
    out = tmp_path / "run"
    argv = ["extract", "train", "--train", str(train_file), "--test", str(test_file)]
    argv += ["--out", str(out), "--epochs", "2", "--valid-fraction", "0.2", "--threads", "1"]
    assert main(argv) == 0
    printed = json.loads(capsys.readouterr().out)
    metrics = json.loads((out / "metrics.json").read_text())
    for key in (*ISSUE_METRICS, "best_epoch", "n_valid", "inference"):
        assert key in metrics, key
    assert metrics["unit"] == "percent" and metrics["n_valid"] == 2
    assert metrics["n_train"] == len(lines) - 2 - 2 and metrics["config"]["refit"] == "none"
    assert metrics["config"]["valid_fraction"] == 0.2
    assert printed["best_epoch"] == metrics["best_epoch"] in (1, 2)
    assert (out / "model" / "kgwb_extractor.json").is_file()


def test_ensemble_averages_members_and_reloads_the_same_predictions(tmp_path):
    import pandas as pd

    from kgwb.text.extract import examples_from_records, load_extractor, train_extractor

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        result = train_extractor(
            train=examples_from_records(pd.DataFrame(_tiny_records())),
            out_dir=tmp_path,
            epochs=2,
            batch_size=8,
            seed=3,
            max_length=32,
            ensemble=2,
            valid_fraction=0.25,
        )
    finally:
        torch.set_num_threads(threads)
    assert len(result.extractor.models) == 2
    assert [m["seed"] for m in result.metrics["ensemble"]] == [3, 4]
    first, second = (p.detach() for p in (m.classifier.weight for m in result.extractor.models))
    assert not torch.equal(first, second)  # the members differ (seeds, validation splits)
    assert sorted(p.name for p in (tmp_path / "model").glob("member_*")) == ["member_1"]
    titles = ["Kendaro Kids Canvas Slip-On - Blue", "Velmora Men's Running Shoe, Red, Size 9"]
    again = load_extractor(tmp_path, dtype="float32")
    assert len(again.models) == 2
    assert again.extract(titles, "Shoes") == result.extractor.extract(titles, "Shoes")
