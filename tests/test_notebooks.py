"""The committed notebooks, read without running them: what nbval and users rely on.

* every code cell that shows output is marked ``# NBVAL_CHECK_OUTPUT`` or ``# NBVAL_IGNORE_OUTPUT``,
  so ``pytest --nbval`` (strict) and ``pytest --nbval-lax`` compare the same cells;
* stored outputs are clean: no progress widgets, no stderr blocks, no machine or temp paths;
* one parameters cell of plain literals, each name once; the first cell states the expected time;
* execution counts run 1, 2, 3, ... (``make notebooks`` renumbers them).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import nbformat
import pytest

from kgwb.notebooks import WIDGET_MIME, clean, progress_wanted
from kgwb.paths import notebooks_dir

NOTEBOOKS = sorted(notebooks_dir().glob("[0-9][0-9]_*.ipynb"))
MARKERS = ("# NBVAL_CHECK_OUTPUT", "# NBVAL_IGNORE_OUTPUT")


def _read(path: Path):
    return nbformat.read(str(path), as_version=4)


def _code(nb):
    return [c for c in nb.cells if c.cell_type == "code"]


def _is_parameters(cell) -> bool:
    return "parameters" in cell.metadata.get("tags", [])


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_cells_with_output_are_marked_for_nbval(path):
    nb = _read(path)
    unmarked = [
        i
        for i, c in enumerate(nb.cells)
        if c.cell_type == "code"
        and c.outputs
        and not any(line.strip() in MARKERS for line in c.source.splitlines())
    ]
    assert not unmarked, f"{path.name}: cells {unmarked} show output but carry no NBVAL marker"
    checked = [c for c in _code(nb) if "# NBVAL_CHECK_OUTPUT" in c.source]
    assert checked, f"{path.name}: strict nbval would check nothing"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_stored_outputs_are_clean(path):
    for i, cell in enumerate(_code(_read(path))):
        for out in cell.outputs:
            assert WIDGET_MIME not in out.get("data", {}), f"{path.name} cell {i}: widget stored"
            assert not (out.output_type == "stream" and out.name == "stderr"), (
                f"{path.name} cell {i}: stderr stored: {out.text[:200]!r}"
            )
            text = str(out.get("text", "")) + str(out.get("data", {}).get("text/plain", ""))
            assert not re.search(r"/(tmp|home|root|work)/", text), (
                f"{path.name} cell {i}: a machine path in the output: {text[:300]!r}"
            )
            assert "0%|" not in text, f"{path.name} cell {i}: a frozen progress bar"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_parameters_and_expected_time(path):
    nb = _read(path)
    params = [c for c in _code(nb) if _is_parameters(c)]
    assert len(params) == 1, f"{path.name}: {len(params)} parameters cells"
    names = []
    for node in ast.parse(params[0].source).body:
        assert isinstance(node, ast.Assign) and len(node.targets) == 1, ast.dump(node)
        names.append(node.targets[0].id)
        ast.literal_eval(node.value)  # plain literals only
    assert len(names) == len(set(names)), f"{path.name}: a parameter is set twice: {names}"
    assert {"DATA_SOURCE", "SEED", "OUTPUT_DIR"} <= set(names)
    first = nb.cells[0]
    assert first.cell_type == "markdown" and "Expected time" in first.source
    assert "2 CPU cores" in first.source and "GPU" in first.source


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_execution_counts_are_sequential(path):
    counts = [c.execution_count for c in _code(_read(path))]
    if any(n is not None for n in counts):
        assert counts == list(range(1, len(counts) + 1)), f"{path.name}: {counts}"


def test_clean_drops_widgets_and_keeps_view_links():
    from kgwb.notebooks import VIEW_MARK

    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("x")
    big = '<div>file: <a href="v.html">v.html</a></div>' + VIEW_MARK + "<iframe>" + "x" * 30_000
    cell.outputs = [
        nbformat.v4.new_output("display_data", data={WIDGET_MIME: {}, "text/plain": "0%|"}),
        nbformat.v4.new_output("display_data", data={"text/html": big, "text/plain": "<HTML>"}),
    ]
    nb.cells = [cell]
    clean(nb)
    (out,) = nb.cells[0].outputs
    assert 'href="v.html"' in out.data["text/html"] and "iframe" not in out.data["text/html"]


def test_progress_only_in_interactive_frontends():
    assert progress_wanted({"JPY_SESSION_NAME": "nb.ipynb"})
    assert not progress_wanted({})  # papermill, nbval, pipeline
    assert not progress_wanted({"JPY_SESSION_NAME": "nb.ipynb", "TQDM_DISABLE": "1"})
    assert progress_wanted({"KGWB_PROGRESS": "1", "TQDM_DISABLE": "1"})
    assert not progress_wanted({"KGWB_PROGRESS": "0", "JPY_SESSION_NAME": "x"})
