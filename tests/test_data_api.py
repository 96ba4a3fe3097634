"""load_dataset's format detection and the saved-dataset round trip."""

from __future__ import annotations

import pandas as pd
import pytest

from kgwb.data import detect_format, load_dataset
from kgwb.data.schema import Dataset
from kgwb.errors import DataError, UnknownNameError


def test_detect_format_by_shape(tmp_path):
    assert detect_format("sample:tiny") == "sample"
    (tmp_path / "kgat").mkdir()
    (tmp_path / "kgat" / "train.txt").write_text("0 1\n")
    assert detect_format(tmp_path / "kgat") == "kgat"
    (tmp_path / "rb").mkdir()
    (tmp_path / "rb" / "x.inter").write_text("user_id:token\titem_id:token\n")
    assert detect_format(tmp_path / "rb") == "recbole"
    attrs = tmp_path / "titles.jsonl"
    attrs.write_text('{"input": "Red shoe", "category": "Shoes", "target_scores": {}}\n')
    assert detect_format(attrs) == "attributes"
    reviews = tmp_path / "reviews_Beauty.json"
    reviews.write_text('{"reviewerID": "A1", "asin": "B1", "overall": 5.0}\n')
    assert detect_format(reviews) == "table"
    (tmp_path / "x.csv").write_text("user,item\n")
    assert detect_format(tmp_path / "x.csv") == "table"
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="cannot tell the format"):
        detect_format(tmp_path / "empty")
    with pytest.raises(DataError, match="no such file"):
        detect_format(tmp_path / "missing")


def test_unknown_format_and_errors_option():
    with pytest.raises(UnknownNameError, match="kgat"):
        load_dataset("sample:tiny", format="nope")
    with pytest.raises(ValueError, match="errors must be"):
        load_dataset("sample:tiny", errors="ignore")


def test_saved_dataset_roundtrip_keeps_tables_truth_and_report(tmp_path):
    ds = load_dataset("sample:tiny", seed=1)
    again = load_dataset(ds.save(tmp_path / "ds"))
    assert isinstance(again, Dataset)
    for name, table in ds.tables().items():
        pd.testing.assert_frame_equal(
            table.reset_index(drop=True), again.tables()[name], check_dtype=False
        )
    assert set(again.truth) == set(ds.truth)
    assert again.report.to_dict() == ds.report.to_dict()
    assert again.summary() == ds.summary()


def test_validate_names_table_row_and_column():
    ds = load_dataset("sample:tiny")
    bad = ds.interactions.copy()
    bad.loc[5, "item_id"] = "NOT-AN-ITEM"
    ds.interactions = bad
    with pytest.raises(
        DataError,
        match=r"row 6:column item_id: interactions row refers to unknown item_id 'NOT-AN-ITEM'",
    ):
        ds.validate()
