"""Keeping the committed notebooks clean: re-execute them and strip what must not be committed.

Committed notebooks keep their outputs (nbval compares the cells marked ``# NBVAL_CHECK_OUTPUT``)
but not volatile metadata (execution timestamps, papermill timings, widget state), and not the
plotly.js bundle that the offline HTML renderer embeds: figures stay as plotly JSON, which
JupyterLab draws natively.

``python -m kgwb.notebooks refresh notebooks/01_explore.ipynb ...`` (``make notebooks``).

Progress bars (:func:`configure_progress`, called by every notebook's setup cell through
``kgwb.viz.plots.setup_notebook``) are live in an interactive frontend and off everywhere else:
papermill, nbval and the pipeline store the notebook, and a tqdm widget stored in it is a frozen,
blank ``0%`` that also breaks nbval's output comparison.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
from pathlib import Path

PLOTLY_MIME = "application/vnd.plotly.v1+json"
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
#: set by the kernels a Jupyter server (JupyterLab, Notebook) starts; VS Code sets VSCODE_PID
INTERACTIVE_ENV = ("JPY_SESSION_NAME", "VSCODE_PID")
_TRUE = ("1", "true", "yes", "on")


def progress_wanted(environ: os._Environ | dict[str, str] | None = None) -> bool:
    """Whether progress bars should show: ``KGWB_PROGRESS=1``/``0`` decides when set, then an
    explicit ``TQDM_DISABLE``; otherwise only in a kernel of an interactive frontend."""
    env = os.environ if environ is None else environ
    forced = env.get("KGWB_PROGRESS", "").strip().lower()
    if forced:
        return forced in _TRUE
    if env.get("TQDM_DISABLE", "").strip().lower() in _TRUE:
        return False
    return any(env.get(name) for name in INTERACTIVE_ENV)


@contextlib.contextmanager
def kernel_env(**values: str):
    """Set environment variables for the kernels started inside the block (they inherit this
    process's environment), restoring the previous values after it."""
    previous = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, old in previous.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


def configure_progress() -> bool:
    """Switch progress bars on or off for this process (see :func:`progress_wanted`): kgwb's own
    bars and PyKEEN's read ``TQDM_DISABLE`` when they start; Hugging Face's are switched through
    their logging utilities.  Returns whether they are on."""
    on = progress_wanted()
    if on:
        return True
    os.environ["TQDM_DISABLE"] = "1"
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
    except ImportError:
        pass
    try:
        from huggingface_hub.utils import disable_progress_bars

        disable_progress_bars()
    except ImportError:
        pass
    return False


MAX_HTML_CHARS = 20_000
#: what separates a graph view's file link from its inlined page (kgwb.viz.graph.notebook_view)
VIEW_MARK = "<!-- kgwb-view -->"
STORED_VIEW_NOTE = "<div><em>(the graph is drawn here when the cell runs)</em></div>"


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
            if data is not None and WIDGET_MIME in data:
                continue  # a progress widget: frozen and blank once stored
            if data is not None:
                if PLOTLY_MIME in data:
                    data.pop("text/html", None)
                html = data.get("text/html")
                if html is not None and len(html) > MAX_HTML_CHARS and len(data) == 1:
                    continue  # plotly.js bundle or another large script-only output
                if html is not None and len(html) > MAX_HTML_CHARS and VIEW_MARK in html:
                    # a graph view: keep its file link, not the page inlined in the frame
                    data["text/html"] = html.split(VIEW_MARK)[0] + STORED_VIEW_NOTE
                elif html is not None and len(html) > MAX_HTML_CHARS:
                    data.pop("text/html")
            out.get("metadata", {}).pop("papermill", None)
            kept.append(out)
        cell["outputs"] = kept


def refresh(notebook: Path, *, kernel_name: str = "python3") -> None:
    """Execute ``notebook`` as a user would run it on its own (its own parameters, in its folder,
    its standalone run folder, progress bars off) and write it back cleaned.

    Run them in order (``make notebooks``): like ``pytest --nbval notebooks/``, each later
    notebook then finds what the earlier ones saved in the shared standalone run folder."""
    import nbformat
    import papermill as pm

    with tempfile.TemporaryDirectory() as tmp, kernel_env(KGWB_PROGRESS="0"):
        out = Path(tmp) / notebook.name
        pm.execute_notebook(
            str(notebook),
            str(out),
            kernel_name=kernel_name,
            cwd=str(notebook.parent),
            progress_bar=False,
            extra_arguments=["--IPKernelApp.log_level=ERROR"],
        )
        nb = nbformat.read(str(out), as_version=4)
    _restore_parameters(nb)
    clean(nb)
    _renumber(nb)
    nbformat.write(nb, str(notebook))


def _renumber(nb) -> None:
    """Execution counts 1, 2, 3, ... in cell order (no gaps where a cell printed nothing)."""
    count = 0
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        count += 1
        cell["execution_count"] = count
        for out in cell.get("outputs", []):
            if "execution_count" in out:
                out["execution_count"] = count


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
