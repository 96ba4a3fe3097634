"""The `kgwb` command line (run in-process through kgwb.cli.main and once as a real process)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from kgwb.cli import main
from kgwb.data.sample import generate


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_data_summary_of_the_sample_matches_the_generator(capsys):
    code, out, _ = _run(capsys, "data", "summary", "sample:tiny", "--seed", "3")
    assert code == 0
    summary = json.loads(out)
    expected = generate("tiny", seed=3)
    assert summary["users"] == len(expected.users)
    assert summary["items"] == len(expected.items)
    assert summary["interactions_total"] == len(expected.interactions)
    assert sum(summary["interactions"].values()) == len(expected.interactions)
    assert summary["triples"] == len(expected.kg)
    assert summary["load"]["rejected"] == 0
    for key in ("entities", "relations", "triples_per_relation", "reviews"):
        assert key in summary


def test_data_summary_reports_bad_rows_with_file_and_line(tmp_path, capsys):
    d = tmp_path / "kgat"
    d.mkdir()
    (d / "train.txt").write_text("0 1 2\n1 x 3\n")
    (d / "test.txt").write_text("0 3\n")
    (d / "kg_final.txt").write_text("0 0 1\n")
    code, out, err = _run(capsys, "data", "summary", str(d), "--format", "kgat")
    assert code == 2
    assert f"{d / 'train.txt'}:2" in err
    code, out, _ = _run(
        capsys, "data", "summary", str(d), "--format", "kgat", "--on-bad-rows", "skip"
    )
    assert code == 0
    load = json.loads(out)["load"]
    assert load["rejected"] == 1
    assert load["rows_loaded"] + load["rejected"] == load["rows_read"]


def test_unknown_sample_size_lists_valid_ones(capsys):
    code, _, err = _run(capsys, "data", "summary", "sample:gigantic")
    assert code == 2
    assert "tiny" in err and "small" in err


def test_missing_source_is_a_clear_error(tmp_path, capsys):
    code, _, err = _run(capsys, "data", "summary", str(tmp_path / "nope"))
    assert code == 2
    assert "nope" in err and "no such file" in err


def test_convert_writes_a_loadable_dataset(tmp_path, capsys):
    from kgwb.data import load_dataset

    code, out, _ = _run(capsys, "data", "convert", "sample:tiny", "--out", str(tmp_path / "ds"))
    assert code == 0
    again = load_dataset(tmp_path / "ds")
    assert again.summary()["interactions"] == json.loads(out)["interactions"]


@pytest.mark.slow
def test_console_script_help_lists_commands():
    proc = subprocess.run(
        [sys.executable, "-m", "kgwb.cli", "--help"], capture_output=True, text=True, check=True
    )
    assert "data" in proc.stdout and "pipeline" in proc.stdout


@pytest.mark.slow
def test_train_then_recommend_with_explanations(tmp_path, capsys):
    run, kg = tmp_path / "run", tmp_path / "kg"
    code, out, _ = _run(
        capsys,
        "train",
        "--dataset",
        "sample:tiny",
        "--model",
        "lightgcn",
        "--epochs",
        "2",
        "--no-progress",
        "--out",
        str(run),
    )
    assert code == 0 and json.loads(out)["test"]["recall@20"] >= 0
    assert (run / "recommendations.parquet").is_file()
    code, _, _ = _run(
        capsys,
        "kg",
        "build",
        "--dataset",
        "sample:tiny",
        "--extract-model",
        "none",
        "--with-users",
        "--out",
        str(kg),
    )
    assert code == 0
    code, out, _ = _run(
        capsys,
        "recommend",
        "--run",
        str(run),
        "--user",
        "U000001",
        "--k",
        "3",
        "--explain",
        "--kg",
        str(kg),
    )
    assert code == 0
    recs = json.loads(out)["recommendations"]
    assert [r["rank"] for r in recs] == [1, 2, 3]
    history = set(generate("tiny").split("train").query("user_id == 'U000001'")["item_id"])
    assert not {r["item_id"] for r in recs} & history  # never recommends what was bought
    assert any(r["explanations"] for r in recs)
