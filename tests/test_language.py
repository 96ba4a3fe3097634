"""Language models over the KG: value matching, the consistency check, grounded Q&A and
fact-checked descriptions (kgwb.kg.facts, kgwb.kg.check, kgwb.qa, kgwb.text.describe).

Logic tests use a hand-built KG and a dictionary "extractor" (no model); the CLI tests share one
KG built from sample:tiny with a one-epoch distant extractor; the model-writer tests build tiny
randomly initialised GPT-2 and T5 models from a config (nothing is downloaded).
"""

from __future__ import annotations

import json
import os
import re
from types import SimpleNamespace

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pandas as pd
import pytest

from kgwb.kg.check import (
    CheckConfig,
    check_catalog,
    find_conflicts,
    inject_contradictions,
    score_conflicts,
    sentences,
)
from kgwb.kg.facts import ValueMatcher, item_facts, quantity
from kgwb.kg.model import KnowledgeGraph
from kgwb.qa import NOT_IN_KG, QA, QAConfig, score_answers
from kgwb.text.describe import (
    describe_items,
    fact_check,
    stated_values,
    template_description,
    value_vocabulary,
)


def _kg() -> KnowledgeGraph:
    nodes = [
        ("item:i1", "item", "Acme Wireless Earbuds, Navy"),
        ("item:i2", "item", "Glow Shampoo 8.5 fl oz"),
        ("item:i3", "item", "Glow Lavender Shampoo"),
        ("brand:acme", "brand", "Acme"),
        ("brand:glow", "brand", "Glow"),
        ("category:Earbuds", "category", "Earbuds"),
        ("category:Shampoo", "category", "Shampoo"),
        ("value:color=navy blue", "value", "Navy Blue"),
        ("value:color=red", "value", "Red"),
        ("value:volume=250 ml", "value", "250 ml"),
        ("value:scent=lavender", "value", "Lavender"),
        ("value:scent=mint", "value", "Mint"),
        ("value:warranty=2 years", "value", "2 Years"),
    ]
    edges = [
        ("item:i1", "produced_by", "brand:acme", "catalog", 1.0),
        ("item:i1", "belongs_to", "category:Earbuds", "catalog", 1.0),
        ("item:i1", "has_color", "value:color=navy blue", "catalog", 1.0),
        ("item:i1", "has_warranty", "value:warranty=2 years", "catalog", 1.0),
        ("item:i2", "produced_by", "brand:glow", "catalog", 1.0),
        ("item:i2", "belongs_to", "category:Shampoo", "catalog", 1.0),
        ("item:i2", "has_volume", "value:volume=250 ml", "catalog", 1.0),
        ("item:i2", "has_scent", "value:scent=mint", "catalog", 1.0),
        ("item:i3", "produced_by", "brand:glow", "catalog", 1.0),
        ("item:i3", "belongs_to", "category:Shampoo", "catalog", 1.0),
        ("item:i3", "has_scent", "value:scent=mint", "catalog", 1.0),
    ]
    extracted = pd.DataFrame(
        {
            "head": ["item:i3"],
            "relation": ["has_scent"],
            "tail": ["value:scent=lavender"],
            "source": ["extracted"],
            "confidence": [0.92],
            "item_id": ["i3"],
            "field": ["title"],
            "start": pd.array([5], dtype="Int64"),
            "end": pd.array([13], dtype="Int64"),
            "text": ["Lavender"],
            "extractor": ["kgwb-bio"],
        }
    )
    e = pd.DataFrame(edges, columns=["head", "relation", "tail", "source", "confidence"])
    return KnowledgeGraph(
        nodes=pd.DataFrame(nodes, columns=["node_id", "type", "name"]),
        edges=pd.concat([e, extracted], ignore_index=True),
    )


class DictionaryExtractor:
    """Finds known values as words (stands in for the fine-tuned tagger in logic tests)."""

    settings = SimpleNamespace(use_category=False, schema={})
    VALUES = {"color": ["Navy", "Red"], "volume": ["8.5 fl oz"], "scent": ["Lavender", "Mint"]}

    def extract(self, texts, categories=None, batch_size=64):
        out = []
        for text in texts:
            spans = []
            for attribute, values in self.VALUES.items():
                for v in values:
                    for m in re.finditer(re.escape(v), text):
                        spans.append(
                            {
                                "attribute": attribute,
                                "value": v,
                                "start": m.start(),
                                "end": m.end(),
                                "confidence": 0.9,
                            }
                        )
            out.append(spans)
        return out


# ------------------------------------------------------------------------- value matching


def test_values_agree_by_case_units_containment_and_learned_synonyms():
    m = ValueMatcher()
    assert m.agree("color", "NAVY", "navy")
    assert m.agree("volume", "8.5 fl oz", "250 ml")  # 251.4 ml, within 3 %
    assert not m.agree("volume", "50 ml", "250 ml")
    assert not m.agree("weight", "8 oz", "8 lb")
    assert m.agree("color", "Navy", "Navy Blue")
    assert not m.agree("color", "Maroon", "Burgundy")
    assert quantity("12 hrs") == ("time", 12.0)
    learned = m.learn(
        [("color", "Burgundy", "Maroon")] * 3
        + [("color", "Red", "Maroon"), ("color", "Red", "Teal")]
    )
    assert [(a, c, t) for a, c, t, _ in learned] == [("color", "burgundy", "maroon")]
    assert m.agree("color", "Maroon", "Burgundy")
    assert not m.agree("color", "Teal", "Red")  # a one-off pairing stays a contradiction


def test_item_facts_list_catalog_and_extracted_values_with_evidence():
    facts = item_facts(_kg(), ["i3"])
    assert set(zip(facts["attribute"], facts["value"], facts["source"])) == {
        ("brand", "Glow", "catalog"),
        ("category", "Shampoo", "catalog"),
        ("scent", "Mint", "catalog"),
        ("scent", "Lavender", "extracted"),
    }
    row = facts[facts["source"] == "extracted"].iloc[0]
    assert (row["field"], row["start"], row["end"]) == ("title", 5, 13)


# ---------------------------------------------------------------------- consistency check


def test_check_reports_the_contradiction_and_nothing_else():
    kg = _kg()
    items = pd.DataFrame(
        {
            "item_id": ["i1", "i2", "i3"],
            "title": [
                "Acme Wireless Earbuds, Navy",
                "Glow Shampoo 8.5 fl oz",
                "Glow Lavender Shampoo",
            ],
            "description": ["In NAVY. Two years of warranty.", "Fresh. Smells of Mint!", ""],
        }
    )
    result = check_catalog(
        kg=kg,
        items=items,
        extractor=DictionaryExtractor(),
        config=CheckConfig(synonym_min_support=0),
    )
    assert result.conflicts[["item_id", "attribute", "text_value"]].values.tolist() == [
        ["i3", "scent", "Lavender"]
    ]
    row = result.conflicts.iloc[0]
    assert items.at[2, row["field"]][row["start"] : row["end"]] == "Lavender"
    assert result.n_compared == 4  # i1 color, i2 volume, i2 scent, i3 scent


def test_sentences_keep_offsets():
    text = "Soft. • Colour: Navy | 250 ml; done"
    assert all(text[s : s + len(p)] == p for s, p in sentences(text))
    assert [p.strip() for _, p in sentences(text)] == ["Soft.", "Colour: Navy", "250 ml", "done"]


def test_injected_contradictions_are_seeded_found_and_scored():
    kg = _kg()
    stated = pd.DataFrame({"item_id": ["i1", "i2", "i3"], "attribute": ["color", "scent", "scent"]})
    corrupted, injected = inject_contradictions(kg, stated, rate=1.0, seed=0)
    again, injected_again = inject_contradictions(kg, stated, rate=1.0, seed=0)
    assert injected.equals(injected_again)
    assert set(zip(injected["item_id"], injected["attribute"])) == {
        ("i1", "color"),
        ("i2", "scent"),
        ("i3", "scent"),
    }
    assert (injected["old_value"] != injected["new_value"]).all()
    assert len(corrupted.edges) == len(kg.edges)
    spans = pd.DataFrame(
        [
            ("i1", "title", "color", "Navy", 22, 26, 0.9),
            ("i2", "description", "scent", "Mint", 10, 14, 0.8),
        ],
        columns=["item_id", "field", "attribute", "value", "start", "end", "confidence"],
    )
    conflicts, _, _ = find_conflicts(
        corrupted.edges.pipe(lambda e: item_facts(corrupted)).query("source == 'catalog'")[
            ["item_id", "attribute", "value"]
        ],
        spans,
        config=CheckConfig(synonym_min_support=0),
    )
    scores = score_conflicts(conflicts, injected)
    assert scores["precision"] == 1.0 and scores["recall"] == round(2 / 3, 4)


# ---------------------------------------------------------------------------- Q&A


def test_answers_come_from_facts_with_evidence_or_not_in_the_kg():
    qa = QA(_kg(), config=QAConfig())
    a = qa.ask("What colour is the Acme Wireless Earbuds, Navy?")
    assert (a.item_id, a.attribute, a.answer, a.found) == ("i1", "color", "Navy Blue", True)
    assert a.evidence[0]["source"] == "catalog"
    a = qa.ask("Who makes it?", item="i2")
    assert a.answer == "Glow"
    a = qa.ask("What scent does it have?", item="i3")
    assert a.answer == "Mint" and {e["value"] for e in a.evidence} == {"Mint", "Lavender"}
    extracted = [e for e in a.evidence if e["source"] == "extracted"][0]
    assert (extracted["field"], extracted["start"], extracted["end"]) == ("title", 5, 13)
    a = qa.ask("What is the warranty?", item="i2")  # the KG has no warranty for i2
    assert (a.answer, a.found) == (NOT_IN_KG, False)


def test_hostile_questions_are_plain_text():
    qa = QA(_kg(), config=QAConfig())
    hostile = "'; MATCH (n) DETACH DELETE n; // <script>alert(1)</script> what colour {{7*7}}"
    a = qa.ask(hostile, item="i1")
    assert a.question == hostile and a.answer == "Navy Blue"
    assert len(qa.kg.nodes) == len(_kg().nodes)


def test_score_answers_counts_invented_values():
    questions = pd.DataFrame(
        {
            "item_id": ["i1", "i1"],
            "attribute": ["color", "warranty"],
            "expected": ["navy blue", None],
        }
    )
    qa = QA(_kg())
    answers = [qa.ask("colour?", item="i1"), qa.ask("what is the size?", item="i1")]
    scores = score_answers(questions, answers)
    assert scores["accuracy"] == 1.0 and scores["answers_for_unsupported"] == 0


# ------------------------------------------------------------------------ descriptions


def test_template_states_only_facts_and_the_check_finds_invented_values():
    kg = _kg()
    result = describe_items(kg=kg, item_ids=["i1", "i2", "i3"])
    assert result.metrics["hallucinations"] == 0
    assert "Navy Blue" in result.descriptions.at[0, "description"]
    vocabulary = value_vocabulary(kg)
    facts = {"color": ["Navy Blue"], "brand": ["Acme"]}
    check = fact_check(
        "Acme Wireless Earbuds, Navy in navy blue. It comes in Red. Sold by Glow.",
        facts,
        vocabulary=vocabulary,
        title="Acme Wireless Earbuds, Navy",
    )
    assert sorted(s["value"] for s in check.unsupported) == ["Glow", "Red"]
    assert check.checked_text == "Acme Wireless Earbuds, Navy in navy blue."
    assert template_description("T", {}) == "T."
    assert stated_values("Earbuds", vocabulary, title="Earbuds") == []


@pytest.fixture(scope="module")
def tiny_writers(tmp_path_factory):
    """A tiny random GPT-2 and T5 saved with the bundled MiniLM tokenizer (no download)."""
    from transformers import GPT2Config, GPT2LMHeadModel, T5Config, T5ForConditionalGeneration

    from kgwb.text.encoder import load_tokenizer

    tokenizer = load_tokenizer()
    base = tmp_path_factory.mktemp("writers")
    ids = dict(
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.sep_token_id,
        bos_token_id=tokenizer.cls_token_id,
    )
    gpt = GPT2LMHeadModel(
        GPT2Config(
            vocab_size=len(tokenizer), n_embd=32, n_layer=1, n_head=2, n_positions=512, **ids
        )
    )
    t5 = T5ForConditionalGeneration(
        T5Config(
            vocab_size=len(tokenizer),
            d_model=32,
            d_ff=64,
            d_kv=16,
            num_layers=1,
            num_heads=2,
            decoder_start_token_id=tokenizer.pad_token_id,
            **ids,
        )
    )
    paths = {}
    for name, model in (("gpt2", gpt), ("t5", t5)):
        paths[name] = base / name
        model.save_pretrained(paths[name])
        tokenizer.save_pretrained(paths[name])
    return paths


@pytest.mark.parametrize("kind", ["gpt2", "t5"])
def test_model_writer_trains_generates_and_is_fact_checked(tiny_writers, tmp_path, kind):
    from kgwb.text.describe import DescribeConfig, WriterTrainConfig, train_writer

    pairs = [("title: Acme Earbuds | color: Navy Blue", "Navy blue earbuds by Acme.")] * 4
    metrics = train_writer(
        pairs=pairs,
        config=WriterTrainConfig(model=str(tiny_writers[kind]), epochs=2, batch_size=2),
        out_dir=tmp_path / "w",
    )
    assert len(metrics["losses"]) == 2 and (tmp_path / "w" / "config.json").is_file()
    result = describe_items(
        kg=_kg(),
        item_ids=["i1"],
        config=DescribeConfig(model=str(tmp_path / "w"), max_new_tokens=8),
    )
    row = result.descriptions.iloc[0]
    assert isinstance(row["description"], str)
    assert row["hallucinations"] == len(row["unsupported"])


def test_unknown_writer_model_is_a_clear_error():
    from kgwb.errors import KgwbError
    from kgwb.text.describe import DescribeConfig

    with pytest.raises(KgwbError, match="neither a local model folder"):
        describe_items(kg=_kg(), item_ids=["i1"], config=DescribeConfig(model="./no/such/model"))


# --------------------------------------------------------------------------------- CLI


@pytest.fixture(scope="module")
def tiny_build(tmp_path_factory):
    import torch

    from kgwb.data import load_dataset
    from kgwb.kg.build import build_kg

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        out = tmp_path_factory.mktemp("kg")
        build_kg(
            dataset=load_dataset("sample:tiny"),
            extractor_epochs=1,
            out_dir=out,
            store=False,
        )
    finally:
        torch.set_num_threads(threads)
    return out


def test_cli_check_ask_describe_on_a_built_sample(tiny_build, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("KGWB_CACHE", str(tmp_path / "cache"))
    from kgwb.cli import main

    assert main(["kg", "check", str(tiny_build), "--out", str(tmp_path / "check")]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["items"] == 150 and summary["compared"] >= summary["conflicts"] >= 0
    saved = json.loads((tmp_path / "check" / "check.json").read_text())
    assert saved["conflicts"] == summary["conflicts"]
    assert (tmp_path / "check" / "conflicts.csv").is_file()

    assert main(["ask", str(tiny_build), "What is the brand?", "--item", "I00001"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["found"] and answer["attribute"] == "brand" and answer["evidence"]
    assert main(["ask", str(tiny_build), "What is the thread count?", "--item", "I00001"]) == 0
    assert json.loads(capsys.readouterr().out)["answer"] == NOT_IN_KG

    # no id and no quoted title: semantic search over the titles, k candidates, index cached
    assert (
        main(["ask", str(tiny_build), "who makes the noise cancelling earbuds?", "--k", "2"]) == 0
    )
    answer = json.loads(capsys.readouterr().out)
    assert answer["how"]["item_found_by"] == "search" and len(answer["candidates"]) == 2
    assert answer["item_id"] == answer["candidates"][0]["item_id"]
    # cached outside the KG folder (which may be read-only)
    assert len(list((tmp_path / "cache").rglob("qa-*/index.json"))) == 1
    assert not (tiny_build / "qa_index").exists()

    assert main(["describe", str(tiny_build), "I00001", "I00002"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["metrics"]["items"] == 2 and out["metrics"]["hallucinations"] == 0


def test_kg_values_decide_where_found_and_the_extractor_adds_unknown_spellings():
    from kgwb.kg.check import read_spans

    items = pd.DataFrame(
        {
            "item_id": ["i1", "i2"],
            "title": ["Acme Earbuds in Teal", "Glow Shampoo, Mint"],
            "description": ["", ""],
        }
    )
    extractor = DictionaryExtractor()
    extractor.VALUES = {"color": ["Teal"], "scent": ["Min"]}  # a new spelling, a fragment
    spans = read_spans(_kg(), items, extractor, CheckConfig())
    got = set(zip(spans["item_id"], spans["attribute"], spans["value"]))
    assert got - {("i1", "brand", "Acme"), ("i2", "brand", "Glow")} == {
        ("i1", "color", "Teal"),
        ("i2", "scent", "Mint"),
    }
    result = check_catalog(kg=_kg(), items=items, extractor=None, config=CheckConfig(), spans=spans)
    assert result.conflicts[["item_id", "text_value"]].values.tolist() == [["i1", "Teal"]]
