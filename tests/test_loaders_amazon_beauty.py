"""The real amazon-beauty data in both formats: exact published counts and cross-format agreement.

Skipped when the shared datasets folder is absent (a fresh clone).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kgwb.data import Dataset, detect_format
from kgwb.data.loaders.kgat import load_kgat
from kgwb.data.loaders.recbole import load_recbole

pytestmark = pytest.mark.shared

EXPECTED = {
    "users": 22_363,
    "items": 12_101,
    "interactions": {"train": 125_622, "valid": 24_222, "test": 48_658},
    "entities": 120_974,
    "relations": 5,
    "triples": 1_115_329,
    "triples_per_relation": {
        "also_bought": 891_181,
        "also_viewed": 155_350,
        "belongs_to": 49_756,
        "produced_by": 10_021,
        "bought_together": 9_021,
    },
}


def _folder(shared_datasets: Path, fmt: str) -> Path:
    folder = shared_datasets / "amazon-beauty" / fmt
    if not folder.is_dir():
        pytest.skip(f"amazon-beauty/{fmt} not in the shared datasets")
    return folder


@pytest.fixture(scope="module")
def kgat(shared_datasets: Path) -> Dataset:
    return load_kgat(_folder(shared_datasets, "kgat"))


@pytest.fixture(scope="module")
def recbole(shared_datasets: Path) -> Dataset:
    return load_recbole(_folder(shared_datasets, "recbole"))


@pytest.mark.parametrize("fmt", ["kgat", "recbole"])
def test_published_counts(fmt: str, request: pytest.FixtureRequest) -> None:
    ds: Dataset = request.getfixturevalue(fmt)
    summary = ds.summary()
    assert ds.name == "amazon-beauty"
    for key, value in EXPECTED.items():
        assert summary[key] == value, key
    assert ds.users["user_id"].is_unique and ds.items["item_id"].is_unique
    assert ds.entities["entity_id"].is_unique
    assert len(ds.item_entities) == EXPECTED["items"]
    report = ds.report
    assert report.rejected_count == 0
    assert report.rows_loaded + report.rejected_count == report.rows_read
    ds.validate()


def test_entity_types_match_the_entity_list(kgat: Dataset) -> None:
    assert kgat.entities["type"].value_counts().to_dict() == {
        "product": 106_548,
        "item": 12_101,
        "brand": 2_077,
        "category": 248,
    }


def _row_hashes(df: pd.DataFrame) -> np.ndarray:
    """An order-free fingerprint of a table's rows (sorting 1.1M string triples is slow)."""
    return np.sort(pd.util.hash_pandas_object(df, index=False).to_numpy())


def test_both_formats_agree(kgat: Dataset, recbole: Dataset) -> None:
    assert set(kgat.users["user_id"]) == set(recbole.users["user_id"])
    assert set(kgat.items["item_id"]) == set(recbole.items["item_id"])
    membership = ["user_id", "item_id", "split"]
    np.testing.assert_array_equal(
        _row_hashes(kgat.interactions[membership]), _row_hashes(recbole.interactions[membership])
    )
    # both use the type:name entity convention, so the graphs are identical
    triples = ["head", "relation", "tail"]
    np.testing.assert_array_equal(_row_hashes(kgat.kg[triples]), _row_hashes(recbole.kg[triples]))
    np.testing.assert_array_equal(
        _row_hashes(kgat.item_entities), _row_hashes(recbole.item_entities)
    )
    np.testing.assert_array_equal(
        _row_hashes(kgat.entities[["entity_id", "type", "name"]]),
        _row_hashes(recbole.entities[["entity_id", "type", "name"]]),
    )


def test_recbole_item_features(recbole: Dataset) -> None:
    item = recbole.items.set_index("item_id").loc["B003QLRO7W"]
    assert item["brand"] == "Conair"
    assert item["category"] == "Hair Care"
    assert item["category_path"].startswith("Beauty > Curling Irons")


def test_formats_are_detected(shared_datasets: Path) -> None:
    assert detect_format(_folder(shared_datasets, "kgat")) == "kgat"
    assert detect_format(_folder(shared_datasets, "recbole")) == "recbole"
