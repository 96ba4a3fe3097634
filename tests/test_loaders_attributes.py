"""Attribute-extraction JSON-lines loader (OA-Mine layout): tiny files, bad input, real OA-Mine."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kgwb.data import detect_format, load_dataset
from kgwb.data.loaders.attributes import load_attributes
from kgwb.errors import DataError


def line(title: str, category: str = "Shoes", **targets: str) -> str:
    scores = {attr.replace("_", " "): {value: 1} for attr, value in targets.items()}
    return json.dumps({"input": title, "category": category, "target_scores": scores})


TRAIN = [
    line(
        "Ellie Shoes Women's 8400, Red Patent",
        Brand="Ellie Shoes",
        Gender="Women's",
        Color="Red Patent",
    ),
    line("Crocs Unisex Clog Navy", Brand="Crocs", Color="Navy"),
    line("Acme Red Red Pen", category="Office", Color="Red"),
]
TEST = [line("Nike Air Zoom White", Brand="Nike", Model_name="Air Zoom")]


def write(path: Path, lines: list[str] | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(lines if isinstance(lines, bytes) else ("\n".join(lines) + "\n").encode())
    return path


def test_loads_items_attributes_and_spans(tmp_path: Path) -> None:
    train = write(tmp_path / "train.jsonl", TRAIN)
    test = write(tmp_path / "test.jsonl", TEST)
    ds = load_attributes([train, test])
    assert ds.items["item_id"].tolist() == ["train:1", "train:2", "train:3", "test:1"]
    assert ds.items["split"].tolist() == ["train"] * 3 + ["test"]
    assert ds.items["category"].tolist() == ["Shoes", "Shoes", "Office", "Shoes"]
    assert ds.items["title"].iloc[1] == "Crocs Unisex Clog Navy"
    assert len(ds.item_attributes) == 8
    assert ds.item_attributes.iloc[-1].tolist() == ["test:1", "Model name", "Air Zoom"]
    spans = ds.truth["attribute_spans"]
    assert list(spans.columns) == ["item_id", "field", "attribute", "value", "start", "end"]
    assert set(spans["field"]) == {"title"}
    for row in spans.itertuples():
        title = ds.items.set_index("item_id").loc[row.item_id, "title"]
        assert title[row.start : row.end] == row.value
    # the first occurrence of a repeated value
    red = spans[spans["item_id"] == "train:3"].iloc[0]
    assert (red.start, red.end) == (5, 8)
    assert len(ds.interactions) == 0 and len(ds.users) == 0
    assert ds.meta["schema"] == {
        "Office": ["Color"],
        "Shoes": ["Brand", "Color", "Gender", "Model name"],
    }
    assert ds.report.rows_read == ds.report.rows_loaded == 4
    ds.validate()


def test_folder_id_field_and_registry(tmp_path: Path) -> None:
    records = [
        json.dumps({"id": "p-7", "input": "Blue Mug", "target_scores": {"Color": {"Blue": 1}}})
    ]
    write(tmp_path / "data" / "train.jsonl", records)
    write(tmp_path / "data" / "test.jsonl", TEST)
    ds = load_attributes(tmp_path / "data")
    assert ds.items["item_id"].tolist() == ["p-7", "test:1"]
    assert ds.name == "data"
    other = write(tmp_path / "extra_titles.jsonl", TRAIN[:1])
    assert detect_format(other) == "attributes"
    single = load_dataset(other)
    assert single.items["split"].isna().all()
    assert single.items["item_id"].tolist() == ["extra_titles:1"]


def test_blank_lines_are_not_rows(tmp_path: Path) -> None:
    path = write(tmp_path / "train.jsonl", ["", TRAIN[0], "   ", TRAIN[1]])
    ds = load_attributes(path)
    assert ds.items["item_id"].tolist() == ["train:2", "train:4"]
    assert ds.report.rows_read == 2


BAD_ROWS = [
    # (content of train.jsonl, line, column, reason)
    ([TRAIN[0], '{"input": "Broken", "target_scores": {', TRAIN[1]], 2, 39, "invalid JSON"),
    (
        [TRAIN[0], TRAIN[1], line("Crocs Clog", Color="Navy")],
        3,
        "target_scores.Color",
        "value not found in title",
    ),
    (
        [TRAIN[0], json.dumps({"category": "Shoes", "target_scores": {}}), TRAIN[1]],
        2,
        "input",
        "missing field",
    ),
    ([TRAIN[0], "[1, 2]", TRAIN[1]], 2, None, "not a JSON object"),
    (
        [json.dumps({"id": "a", "input": "x"}), json.dumps({"id": "a", "input": "y"}), TRAIN[1]],
        2,
        "id",
        "duplicate item_id",
    ),
    (
        (TRAIN[0] + "\n" + TRAIN[1] + "\n").encode() + b'{"input": "Caf\xe9"}\n',
        3,
        15,
        "invalid UTF-8",
    ),
]


@pytest.mark.parametrize(("content", "line_no", "column", "reason"), BAD_ROWS)
def test_bad_rows(tmp_path, check_bad_input, content, line_no, column, reason) -> None:
    path = write(tmp_path / "train.jsonl", content)
    ds = check_bad_input(
        lambda errors: load_attributes(path, errors=errors),
        file="train.jsonl",
        line=line_no,
        column=column,
        reason=reason,
    )
    assert len(ds.items) == 2


@pytest.mark.parametrize("errors", ["raise", "skip"])
def test_missing_and_empty_files_raise_even_under_skip(tmp_path: Path, errors: str) -> None:
    with pytest.raises(DataError, match="missing file"):
        load_attributes(tmp_path / "train.jsonl", errors=errors)
    write(tmp_path / "empty.jsonl", b"\n\n")
    with pytest.raises(DataError, match=r"empty.jsonl: empty file"):
        load_attributes(tmp_path / "empty.jsonl", errors=errors)


@pytest.mark.shared
def test_oa_mine_counts(shared_datasets: Path) -> None:
    folder = shared_datasets / "oa-mine"
    if not folder.is_dir():
        pytest.skip("oa-mine not in the shared datasets")
    ds = load_attributes([folder / "train.jsonl", folder / "test.jsonl"])
    per_split = ds.items["split"].value_counts().to_dict()
    assert per_split == {"train": 1452, "test": 491}
    values = ds.item_attributes.merge(ds.items[["item_id", "split"]], on="item_id")
    assert values["split"].value_counts().to_dict() == {"train": 7360, "test": 2451}
    assert ds.items["category"].nunique() == 10
    assert sum(len(attrs) for attrs in ds.meta["schema"].values()) == 115
    assert ds.report.rejected_count == 0 and ds.report.balanced
    spans = ds.truth["attribute_spans"]
    titles = ds.items.set_index("item_id")["title"]
    assert all(titles[r.item_id][r.start : r.end] == r.value for r in spans.itertuples())
