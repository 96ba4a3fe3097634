"""The notebook pipeline on real data: a seeded user-subsample of amazon-beauty (RecBole layout:
brand and categories, no item text) at smoke size.  Skipped where ../shared is absent."""

from __future__ import annotations

import json

import nbformat
import pytest

from kgwb.data import load_dataset
from kgwb.data.subsample import subsample_users
from kgwb.pipeline import run_pipeline

pytestmark = [pytest.mark.shared, pytest.mark.slow]


def test_subsample_keeps_whole_users_and_their_items(shared_datasets):
    ds = load_dataset(shared_datasets / "amazon-beauty" / "recbole", format="recbole")
    small = subsample_users(ds, 50, seed=0)
    assert small.users["user_id"].nunique() == 50
    full = ds.interactions[ds.interactions["user_id"].isin(set(small.users["user_id"]))]
    assert len(small.interactions) == len(full)  # every split of every kept user
    assert set(small.items["item_id"]) == set(small.interactions["item_id"])
    linked = set(small.item_entities["entity_id"])
    assert set(small.kg["head"]) <= linked
    again = subsample_users(ds, 50, seed=0, relations=("produced_by",))
    assert again.users["user_id"].tolist() == small.users["user_id"].tolist()
    assert set(again.kg["relation"]) == {"produced_by"}


@pytest.mark.parametrize("fixed_split", [True, False], ids=["fixed-split", "no-split"])
def test_pipeline_on_an_amazon_beauty_user_subsample(shared_datasets, tmp_path, fixed_split):
    ds = load_dataset(shared_datasets / "amazon-beauty" / "recbole", format="recbole")
    # brand and category triples only: the KG-embedding step stays seconds long
    small = subsample_users(ds, 120, seed=0, relations=("produced_by", "belongs_to"))
    if not fixed_split:  # one interaction file, as RecBole's own Amazon sets: runs split it
        small.interactions = small.interactions.drop(columns="split")
        assert not small.has_split
    small.save(tmp_path / "data")
    params = {
        "name": "beauty-smoke",
        "parameters": {
            "DATA_SOURCE": str(tmp_path / "data"),
            "DATA_FORMAT": "",
            "SEED": 0,
            "EPOCHS": 1,
            "KGE_EPOCHS": 1,
            "EGO_MAX_NODES": 40,
        },
    }
    result = run_pipeline(params=params, out_dir=tmp_path / "run")
    assert result.ok and len(result.notebooks) == 5
    for run in result.notebooks:  # no cell raised
        nb = nbformat.read(run.output, as_version=4)
        errors = [o for c in nb.cells for o in c.get("outputs", []) if o.output_type == "error"]
        assert not errors, (run.name, errors)
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    built = metrics["02_build_kg"]
    assert built["nodes_by_type"]["brand"] > 0 and built["nodes_by_type"]["category"] > 0
    assert (
        built["skipped"]["extraction"] == "text extraction skipped: the catalog has no title text"
    )
    # 02 shows brand and category node counts; 03 and 04 say what they skipped
    build_nb = (tmp_path / "run" / "02_build_kg.ipynb").read_text()
    assert f"brand {built['nodes_by_type']['brand']:,}" in build_nb
    assert "skipped: text extraction skipped" in build_nb
    assert "text features skipped" in (tmp_path / "run" / "03_train.ipynb").read_text()
    inspect_nb = (tmp_path / "run" / "04_inspect.ipynb").read_text()
    assert "semantic search skipped: the catalog has no item text" in inspect_nb
    assert "ego_top_item.html" in metrics["04_inspect"]["views"]
    # 05 scores against the sample's ground truth: on this catalog it says it skipped
    assert metrics["05_language"]["skipped"].startswith("05_language skipped")
