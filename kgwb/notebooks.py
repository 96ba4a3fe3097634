"""Keeping the committed notebooks clean: re-execute them and strip what must not be committed.

Committed notebooks keep their outputs (nbval compares the cells marked ``# NBVAL_CHECK_OUTPUT``)
but not volatile metadata (execution timestamps, papermill timings, widget state), and not the
plotly.js bundle that the offline HTML renderer embeds: figures stay as plotly JSON, which
JupyterLab draws natively.

``python -m kgwb.notebooks refresh notebooks/01_explore.ipynb ...`` (``make notebooks``).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

PLOTLY_MIME = "application/vnd.plotly.v1+json"
MAX_HTML_CHARS = 20_000


def clean(nb) -> None:
    """Strip volatile metadata and oversized rich outputs from a notebook node, in place."""
    nb.metadata.pop("papermill", None)
    nb.metadata.pop("widgets", None)
    for cell in nb.cells:
        cell.metadata.pop("papermill", None)
        cell.metadata.pop("execution", None)
        cell.metadata.pop("ExecuteTime", None)
        if cell.cell_type != "code":
            continue
        kept = []
        for out in cell.get("outputs", []):
            data = out.get("data")
            if data is not None:
                if PLOTLY_MIME in data:
                    data.pop("text/html", None)
                html = data.get("text/html")
                if html is not None and len(html) > MAX_HTML_CHARS and len(data) == 1:
                    continue  # plotly.js bundle or another large script-only output
                if html is not None and len(html) > MAX_HTML_CHARS:
                    data.pop("text/html")
            out.get("metadata", {}).pop("papermill", None)
            kept.append(out)
        cell["outputs"] = kept


def refresh(notebook: Path, *, kernel_name: str = "python3") -> None:
    """Execute ``notebook`` with its own parameters in its folder and write it back cleaned."""
    import nbformat
    import papermill as pm

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / notebook.name
        pm.execute_notebook(
            str(notebook),
            str(out),
            kernel_name=kernel_name,
            cwd=str(notebook.parent),
            progress_bar=False,
            parameters={"OUTPUT_DIR": str(Path(tmp) / "run")},
        )
        nb = nbformat.read(str(out), as_version=4)
    _restore_parameters(nb)
    clean(nb)
    nbformat.write(nb, str(notebook))


def _restore_parameters(nb) -> None:
    """Drop the cell papermill injected, so the committed notebook keeps its own defaults."""
    nb.cells = [
        c for c in nb.cells if "injected-parameters" not in c.get("metadata", {}).get("tags", [])
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kgwb.notebooks")
    sub = parser.add_subparsers(dest="action", required=True)
    r = sub.add_parser("refresh", help="re-execute and clean notebooks in place")
    r.add_argument("notebooks", nargs="+", type=Path)
    c = sub.add_parser("clean", help="only strip volatile metadata and large outputs")
    c.add_argument("notebooks", nargs="+", type=Path)
    args = parser.parse_args(argv)
    import nbformat

    for path in args.notebooks:
        if args.action == "refresh":
            print(f"executing {path}", file=sys.stderr)
            refresh(path)
        else:
            nb = nbformat.read(str(path), as_version=4)
            clean(nb)
            nbformat.write(nb, str(path))
    return 0


if __name__ == "__main__":
    sys.exit(main())
