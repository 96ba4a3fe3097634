"""Run folders: standalone names from the data parameters, stage stamps that refuse mixing."""

from __future__ import annotations

import pytest

from kgwb import paths
from kgwb.pipeline import run_dir
from kgwb.runs import StageMismatchError, check_reuse, data_key, stamp, standalone_name


def test_standalone_runs_get_a_folder_named_from_their_data(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("KGWB_HOME", str(tmp_path))
    assert standalone_name("sample:small", 0) == "notebooks-sample-small-seed0"
    assert standalone_name("../../shared/datasets/amazon-beauty/kgat/", 1) == (
        "notebooks-amazon-beauty-kgat-seed1"
    )
    tiny, small = run_dir("", "sample:tiny", 0), run_dir("", "sample:small", 0)
    assert tiny != small and tiny.parent == small.parent == paths.runs_dir()
    assert "reports/runs/notebooks-sample-tiny-seed0" in capsys.readouterr().out
    assert run_dir(str(tmp_path / "x"), "sample:tiny", 0) == (tmp_path / "x").resolve()


def test_reuse_only_what_was_built_from_the_same_data(tmp_path):
    folder = tmp_path / "kg_build"
    key = data_key("sample:small", "", 0)
    assert check_reuse(folder, key, what="KG", stage="02_build_kg") is False  # nothing there
    (folder / "kg").mkdir(parents=True)
    with pytest.raises(StageMismatchError, match="does not record its data"):
        check_reuse(folder, key, what="KG", stage="02_build_kg")
    stamp(folder, data_key("sample:tiny", None, 0))
    with pytest.raises(StageMismatchError) as err:
        check_reuse(folder, key, what="KG", stage="02_build_kg")
    msg = str(err.value)
    assert "DATA_SOURCE='sample:tiny'" in msg and "DATA_SOURCE='sample:small'" in msg
    assert "Run 02_build_kg again" in msg
    stamp(folder, key)
    assert check_reuse(folder, key, what="KG", stage="02_build_kg") is True
    assert not check_reuse(tmp_path / "other", key, what="KG", stage="02_build_kg")
    with pytest.raises(StageMismatchError, match="SEED=1"):
        check_reuse(folder, data_key("sample:small", "", 1), what="KG", stage="02_build_kg")
