"""``build_kg`` and ``kgwb kg build`` on whatever a catalog has: attributes, titles only,
brand/categories only (like amazon-beauty), nothing but ids.  Stages with nothing to work on are
skipped with the reason in ``kg_build.json`` (one stderr line each from the CLI); nothing
crashes."""

from __future__ import annotations

import json
import logging

import pandas as pd
import pytest

from kgwb.data.schema import Dataset
from kgwb.errors import KgwbError
from kgwb.kg.build import build_kg, ensure_extractor, item_text_fields
from kgwb.kg.model import KnowledgeGraph
from kgwb.kg.quality import attribute_coverage, quality_report

IDS = ["i1", "i2", "i3", "i4"]


def _dataset(**columns) -> Dataset:
    items = pd.DataFrame({"item_id": IDS, **columns})
    inter = pd.DataFrame({"user_id": ["u1", "u1", "u2", "u2"], "item_id": IDS})
    return Dataset(
        name="t", items=items, users=pd.DataFrame({"user_id": ["u1", "u2"]}), interactions=inter
    )


BRANDS = ["Acme", "ACME", "Zeta", None]
PATHS = ["Beauty > Hair", "Beauty > Hair", "Beauty > Skin", None]
TITLES = ["Acme red shampoo 250 ml", "Acme blue brush", "Zeta face cream", ""]


def _build(ds: Dataset, tmp_path, caplog, **options):
    with caplog.at_level(logging.INFO, logger="kgwb.kg.build"):
        result = build_kg(dataset=ds, out_dir=tmp_path / "kg", seed=0, **options)
    saved = json.loads((tmp_path / "kg" / "kg_build.json").read_text())
    assert saved["skipped"] == result.skipped
    for note in result.skipped.values():  # each skip said once in the log
        assert [r.getMessage() for r in caplog.records].count(note) == 1
    assert result.store_path is not None and result.store_path.exists()
    return result


def test_brand_and_categories_only_skip_extraction_and_resolve_brands(tmp_path, caplog):
    ds = _dataset(brand=BRANDS, category_path=PATHS)
    result = _build(ds, tmp_path, caplog)  # default extract_model="distant"
    assert result.skipped == {
        "extraction": "text extraction skipped: the catalog has no title text"
    }
    nodes = result.quality["nodes_by_type"]
    assert nodes["category"] == 3 and nodes["item"] == 4
    assert nodes["brand"] == 2  # "Acme" and "ACME" resolved into one
    assert result.quality["attribute_coverage_mean"] == {
        "catalog": 0.0,
        "extracted": 0.0,
        "any": 0.0,
    }
    summary = result.summary()
    assert "brand 2" in summary and "category 3" in summary
    assert "skipped: text extraction skipped" in summary
    assert result.spans is None


def test_titles_without_attributes_distant_falls_back_to_no_extraction(tmp_path, caplog):
    ds = _dataset(title=TITLES, brand=BRANDS)
    result = _build(ds, tmp_path, caplog)
    note = result.skipped["extraction"]
    assert "distant" in note and "attribute table" in note and "kgwb extract train" in note
    assert set(result.kg.edges["source"]) == {"catalog"}
    assert "extracted" not in result.quality["edges_by_source"]


def test_nothing_but_ids_builds_an_item_only_graph(tmp_path, caplog):
    ds = _dataset()
    result = _build(ds, tmp_path, caplog, extract_model="distant")
    assert set(result.skipped) == {"catalog", "extraction", "resolution"}
    assert "item nodes only" in result.skipped["catalog"]
    assert "no brand or value nodes" in result.skipped["resolution"]
    assert result.quality["nodes"] == 4 and result.quality["edges"] == 0
    assert KnowledgeGraph.load(tmp_path / "kg" / "kg").nodes["node_id"].tolist() == [
        f"item:{i}" for i in IDS
    ]


def test_extraction_off_is_not_reported_as_skipped(tmp_path, caplog):
    ds = _dataset(title=TITLES, brand=BRANDS)
    result = _build(ds, tmp_path, caplog, extract_model=None)
    assert result.skipped == {}


def test_item_text_fields_ignores_blank_columns():
    items = pd.DataFrame({"item_id": ["a", "b"], "title": ["", None], "description": [None, "x"]})
    assert item_text_fields(items, ("title", "description")) == ["description"]
    assert item_text_fields(items, ("title", "summary")) == []


def test_quality_reports_handle_empty_inputs():
    kg = KnowledgeGraph(
        nodes=pd.DataFrame({"node_id": ["item:a"], "type": ["item"], "name": ["a"]}),
        edges=pd.DataFrame(columns=["head", "relation", "tail", "source", "confidence"]),
    )
    items = pd.DataFrame({"item_id": ["a"], "category": ["c"]})
    assert attribute_coverage(kg, items).empty
    assert attribute_coverage(kg, items.iloc[:0]).empty
    report = quality_report(kg, items=items, merged_nodes=0)
    assert report["edges"] == 0 and report["edges_by_source"] == {}
    assert report["duplicate_rate"] == 0.0


def test_missing_extractor_folder_says_how_to_make_one(tmp_path):
    with pytest.raises(KgwbError, match="kgwb extract train"):
        ensure_extractor(tmp_path / "nope")
    with pytest.raises(KgwbError, match="no such file"):
        ensure_extractor(tmp_path / "nope", train=tmp_path / "missing.jsonl")
    assert ensure_extractor(tmp_path) == tmp_path  # an existing folder is used as it is


def test_cli_kg_build_on_a_catalog_without_text(tmp_path, capsys):
    from kgwb.cli import main

    src = tmp_path / "ds"
    _dataset(brand=BRANDS, category_path=PATHS).save(src)
    out = tmp_path / "out"
    rc = main(["kg", "build", "--dataset", str(src), "--no-store", "--out", str(out)])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    # one line for the skipped stage (progress lines may come with it)
    skips = [line for line in captured.err.splitlines() if "skipped" in line]
    assert skips == ["kgwb: text extraction skipped: the catalog has no title text"]
    printed = json.loads(captured.out)
    assert printed["skipped"]["extraction"].startswith("text extraction skipped")
    assert printed["nodes_by_type"]["brand"] == 2


class _ColourExtractor:
    """Stands in for a fine-tuned extractor folder: finds the word "red" in each text."""

    class settings:  # noqa: N801 - mirrors Extractor.settings
        use_category = True
        model = "fake-oa-mine"

    def extract(self, texts, categories, batch_size=64):
        assert categories is not None and len(categories) == len(texts)
        out = []
        for text in texts:
            at = text.lower().find("red")
            out.append(
                []
                if at < 0
                else [
                    {
                        "attribute": "Color",
                        "value": text[at : at + 3],
                        "start": at,
                        "end": at + 3,
                        "confidence": 0.9,
                    }
                ]
            )
        return out


def test_a_trained_extractor_on_titles_without_attributes_writes_spans(
    tmp_path, caplog, monkeypatch
):
    import kgwb.text.extract

    monkeypatch.setattr(kgwb.text.extract, "load_extractor", lambda folder: _ColourExtractor())
    ds = _dataset(
        title=["Acme Red shampoo", "blue brush", "Zeta red cream", None],
        brand=BRANDS,
        category=["Hair", "Hair", "Skin", "Skin"],
    )
    result = _build(ds, tmp_path, caplog, extract_model=tmp_path, resolve=False)
    assert result.skipped == {}
    edges = KnowledgeGraph.load(tmp_path / "kg" / "kg").edges
    got = edges[edges["source"] == "extracted"].sort_values("item_id")
    assert got["item_id"].tolist() == ["i1", "i3"]
    assert got["relation"].unique().tolist() == ["has_color"]
    assert got["tail"].tolist() == ["value:color=red", "value:color=red"]
    for row in got.itertuples():  # the span points into the title it came from
        title = ds.items.set_index("item_id").loc[row.item_id, "title"]
        assert row.field == "title" and title[row.start : row.end] == row.text
    assert result.quality["attribute_coverage_mean"]["extracted"] > 0


def test_a_catalog_file_alone_builds_a_kg(tmp_path, capsys):
    """A catalog with no interactions (one CSV of items, or a RecBole folder with only its .item
    file) loads as items with zero interactions, and `kg build` runs on it."""
    from kgwb.cli import main
    from kgwb.data import load_dataset

    csv_file = tmp_path / "catalog.csv"
    pd.DataFrame({"item_id": IDS, "brand": BRANDS, "title": TITLES}).to_csv(csv_file, index=False)
    ds = load_dataset(csv_file)
    assert ds.items["item_id"].tolist() == IDS and len(ds.interactions) == 0
    # a file of interactions with the same columns plus user_id stays interactions
    (tmp_path / "inter.csv").write_text("user_id,item_id,title\nu1,i1,x\n")
    assert len(load_dataset(tmp_path / "inter.csv").interactions) == 1

    folder = tmp_path / "rb"
    folder.mkdir()
    (folder / "rb.item").write_text(
        "item_id:token\tbrand:token\tcategories:token_seq\ni1\tAcme\tBeauty Hair\n"
        "i2\tZeta\tBeauty Skin\n"
    )
    rb = load_dataset(folder, format="recbole")
    assert rb.items["item_id"].tolist() == ["i1", "i2"] and len(rb.interactions) == 0

    out = tmp_path / "out"
    rc = main(["kg", "build", "--dataset", str(csv_file), "--extract-model", "none",
               "--no-resolve", "--no-store", "--out", str(out)])  # fmt: skip
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert json.loads(captured.out)["nodes_by_type"] == {"brand": 3, "item": 4}
