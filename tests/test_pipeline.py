"""The papermill pipeline: runs notebooks in order, merges metrics, stops on a failing cell."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

from kgwb.data.sample import generate
from kgwb.paths import params_dir
from kgwb.pipeline import (
    PipelineError,
    load_params,
    read_metrics,
    record_metrics,
    run_pipeline,
)


def _notebook(path: Path, sources: list[str], params: str = "OUTPUT_DIR = ''") -> Path:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    cell = nbformat.v4.new_code_cell(params)
    cell.metadata["tags"] = ["parameters"]
    nb.cells = [cell] + [nbformat.v4.new_code_cell(s) for s in sources]
    nbformat.write(nb, str(path))
    return path


@pytest.mark.slow
def test_smoke_pipeline_runs_all_stages_and_links_their_outputs(tmp_path):
    result = run_pipeline(params=params_dir() / "smoke.yaml", out_dir=tmp_path)
    assert result.ok
    assert [nb.name for nb in result.notebooks] == [
        "01_explore",
        "02_build_kg",
        "03_train",
        "04_inspect",
        "05_language",
    ]
    merged = json.loads((tmp_path / "metrics.json").read_text())
    assert set(merged) >= {"01_explore", "02_build_kg", "03_train", "04_inspect", "05_language"}
    language = merged["05_language"]
    assert language["describe_hallucinations"] == 0  # the template states only KG facts
    assert 0.0 <= language["check_precision"] <= 1.0 and 0.0 <= language["check_recall"] <= 1.0
    assert language["qa_answers_for_unsupported"] <= 0.1 * language["qa_questions"]
    expected = generate("tiny", seed=0)
    explore = merged["01_explore"]
    assert explore["users"] == len(expected.users)
    assert explore["items"] == len(expected.items)
    assert explore["interactions"] == len(expected.interactions)
    assert explore["rejected_rows"] == 0
    # metric regression (the recorded values read back, recommenders' read_notebook style):
    # deterministic figures within float noise; trained ones must not fall more than the stated
    # tolerance below what sample:tiny gave with the committed defaults (CPU, seed 0)
    assert explore["item_gini"] == pytest.approx(0.3603, abs=1e-3)
    build = merged["02_build_kg"]
    assert build["extraction"]["precision"] >= 0.8
    assert build["extraction"]["f1"] >= 0.11 - 0.06
    train = merged["03_train"]
    test_recall = {run: m["test"]["recall@20"] for run, m in train["models"].items()}
    assert test_recall["pop"] == pytest.approx(0.32, abs=0.005)  # no training: exact up to ties
    assert test_recall["lightgcn"] >= 0.31 - 0.05
    assert test_recall["kgat"] >= 0.315 - 0.05
    assert train["kge"]["transe"]["mrr"] >= 0.06 - 0.03
    assert train["best_test_recall@20"] == pytest.approx(test_recall[train["best_run"]])
    assert merged["04_inspect"]["explained_recommendations"] >= 4
    # executed notebooks, their HTML, the index page and the saved dataset are all there
    html = (tmp_path / "01_explore.html").read_text()
    assert "Explore the e-commerce data" in html
    index = (tmp_path / "index.html").read_text()
    for nb in result.notebooks:
        assert (tmp_path / f"{nb.name}.ipynb").is_file()
        assert f'href="{nb.name}.html"' in index
    assert (tmp_path / "dataset" / "dataset.json").is_file()
    # 04_inspect's views are written into the run folder and linked from the index page
    # 04_inspect reopens 03_train's best model from its run folder instead of training again
    assert merged["04_inspect"]["recommender"] == merged["03_train"]["best_run"]
    assert merged["04_inspect"]["recommender_from_03"] is True
    views = merged["04_inspect"]["views"]
    assert "ego_top_item.html" in views and "explained_recommendation.html" in views
    for name in views:
        page = (tmp_path / name).read_text()
        assert "new vis.Network" in page  # an interactive graph view ...
        assert 'src="http' not in page  # ... that needs no network
        assert f'href="{name}"' in index


def test_failing_cell_stops_the_run_and_keeps_outputs(tmp_path):
    nbs = tmp_path / "nbs"
    nbs.mkdir()
    _notebook(
        nbs / "01_first.ipynb",
        [
            "from kgwb.pipeline import record_metrics\nrecord_metrics('01_first', {'x': 1}, output_dir=OUTPUT_DIR)"
        ],
    )
    _notebook(nbs / "02_broken.ipynb", ["a = 1", "raise ValueError('planted failure')", "b = 2"])
    _notebook(nbs / "03_never.ipynb", ["c = 3"])
    out = tmp_path / "run"
    with pytest.raises(PipelineError) as err:
        run_pipeline(out_dir=out, notebooks_folder=nbs)
    msg = str(err.value)
    assert "02_broken.ipynb" in msg
    # papermill injects a parameters cell, so the failing cell is the fourth (index 3)
    assert "cell 3" in msg
    assert "raise ValueError('planted failure')" in msg
    assert "planted failure" in msg
    # what ran before the failure is kept, the failing notebook's executed copy too
    assert json.loads((out / "metrics.json").read_text()) == {"01_first": {"x": 1}}
    assert (out / "02_broken.ipynb").is_file()
    assert not (out / "03_never.ipynb").exists()
    record = json.loads((out / "pipeline.json").read_text())
    assert [nb["status"] for nb in record["notebooks"]] == ["ok", "failed"]


def test_parameters_reach_only_notebooks_that_declare_them(tmp_path):
    nbs = tmp_path / "nbs"
    nbs.mkdir()
    _notebook(
        nbs / "01_a.ipynb",
        [
            "from kgwb.pipeline import record_metrics\nrecord_metrics('01_a', {'k': K}, output_dir=OUTPUT_DIR)"
        ],
        params="K = 1\nOUTPUT_DIR = ''",
    )
    params = {"parameters": {"K": 5, "UNUSED": 1}, "notebooks": {"01_a": {"K": 7}}}
    result = run_pipeline(params=params, out_dir=tmp_path / "run", notebooks_folder=nbs)
    assert result.metrics == {"01_a": {"k": 7}}


def test_params_file_errors_name_the_file_and_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("parameters:\n  A: [1, 2\n")
    with pytest.raises(PipelineError, match=r"bad\.yaml:\d+:\d+: invalid YAML"):
        load_params(bad)
    unknown = tmp_path / "unknown.yaml"
    unknown.write_text("paramters: {}\n")
    with pytest.raises(PipelineError, match="unknown top-level key"):
        load_params(unknown)
    with pytest.raises(PipelineError, match="not found"):
        load_params(tmp_path / "missing.yaml")


def test_record_and_read_metrics_roundtrip(tmp_path):
    import numpy as np

    record_metrics("s1", {"a": np.float32(0.5), "b": np.int64(3)}, output_dir=tmp_path)
    assert read_metrics(tmp_path) == {"s1": {"a": 0.5, "b": 3}}
    with pytest.raises(TypeError, match="cannot record"):
        record_metrics("s2", {"bad": object()}, output_dir=tmp_path)


def test_rerun_merges_only_the_notebooks_that_ran(tmp_path):
    """A rerun into the same folder never reports the stale metrics of notebooks it did not run."""
    nbs = tmp_path / "nbs"
    nbs.mkdir()
    for stem, value in (("01_a", 1), ("02_b", 2)):
        _notebook(
            nbs / f"{stem}.ipynb",
            [
                "from kgwb.pipeline import record_metrics\n"
                f"record_metrics('{stem}', {{'v': V}}, output_dir=OUTPUT_DIR)"
            ],
            params=f"V = {value}\nOUTPUT_DIR = ''",
        )
    out = tmp_path / "run"
    assert run_pipeline(out_dir=out, notebooks_folder=nbs).metrics == {
        "01_a": {"v": 1},
        "02_b": {"v": 2},
    }
    again = run_pipeline(
        params={"parameters": {"V": 5}}, out_dir=out, notebooks_folder=nbs, only=["01"]
    )
    assert again.metrics == {"01_a": {"v": 5}}
    assert json.loads((out / "metrics.json").read_text()) == {"01_a": {"v": 5}}
    index = (out / "index.html").read_text()
    assert "<td>v</td><td>5</td>" in index and "02_b" not in index


def test_index_shows_metrics_as_tables_and_the_summary_names_the_index(tmp_path):
    from kgwb.pipeline import NotebookRun, PipelineResult, metrics_tables_html, summary_lines

    metrics = {
        "03_train": {
            "best_run": "kgat",
            "models": {"pop": {"recall@20": 0.1}, "kgat": {"recall@20": 0.123456}},
            "kge": {"transe": {"mrr": 0.2}},
        }
    }
    page = metrics_tables_html(metrics)
    assert "<td>best_run</td><td>kgat</td>" in page
    assert "<th>recall@20</th>" in page and "<td>0.1235</td>" in page  # one row per model
    result = PipelineResult(run_dir=tmp_path, params={})
    result.notebooks = [NotebookRun("03_train", "x.ipynb", None, 12.0, "ok")]
    result.metrics = metrics
    lines = summary_lines(result)
    assert lines[0].startswith("03_train (12 s): best_run=kgat")
    assert lines[-1] == f"open: {tmp_path / 'index.html'}"
