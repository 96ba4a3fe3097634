"""The reproducible pipeline: run the numbered notebooks in order with papermill.

``run_pipeline`` executes ``notebooks/NN_*.ipynb`` into one run folder (``reports/runs/<name>/``
or an explicit ``out_dir``), renders each executed notebook to HTML, writes an ``index.html``
linking them, and merges the metrics each notebook recorded with :func:`record_metrics` into
``metrics.json``.  A failing cell stops the run with a :class:`PipelineError` naming the notebook
and cell; everything produced until then is kept.

Params files (``notebooks/params/*.yaml``)::

    name: sample                 # run folder name (default: the file's stem)
    parameters:                  # given to every notebook that declares them
      DATA_SOURCE: sample:small
      SEED: 0
    notebooks:                   # optional per-notebook overrides, by notebook stem
      03_train: {EPOCHS: 5}

Notebooks read ``OUTPUT_DIR`` (the run folder) from their parameters cell; the pipeline sets it.
"""

from __future__ import annotations

import argparse
import html
import json
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from kgwb import paths
from kgwb.atomic import write_text as atomic_write
from kgwb.errors import KgwbError
from kgwb.notebooks import kernel_env
from kgwb.runinfo import environment_info
from kgwb.runs import display_path, standalone_run_dir

METRICS_SUBDIR = "metrics"
KERNEL_NAME = "python3"


class PipelineError(KgwbError):
    """A notebook of the pipeline failed; the message names notebook and cell."""


# --------------------------------------------------------------------------- used by notebooks
def run_dir(output_dir: str | Path | None = None, source: Any = None, seed: int = 0) -> Path:
    """The run folder a notebook writes into: ``OUTPUT_DIR`` if given, else (a notebook run on
    its own, e.g. from JupyterLab) a folder named from its data parameters,
    ``reports/runs/notebooks-<source>-seed<seed>`` (:func:`kgwb.runs.standalone_run_dir`), which
    it prints."""
    if output_dir:
        path = Path(output_dir).expanduser().resolve()
    elif source is not None:
        path = standalone_run_dir(source, seed)
        print(f"standalone run: outputs go to {display_path(path)}")
    else:
        path = paths.runs_dir() / "notebooks"
    path.mkdir(parents=True, exist_ok=True)
    return path


def record_metrics(stage: str, metrics: dict[str, Any], *, output_dir: str | Path) -> Path:
    """Save one notebook's metrics as ``<run>/metrics/<stage>.json`` (the pipeline merges them)."""
    folder = Path(output_dir) / METRICS_SUBDIR
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{stage}.json"
    atomic_write(target, json.dumps(metrics, indent=2, sort_keys=True, default=_jsonable) + "\n")
    return target


def read_metrics(output_dir: str | Path) -> dict[str, dict[str, Any]]:
    """All metrics recorded in a run folder, by stage name."""
    folder = Path(output_dir) / METRICS_SUBDIR
    return {p.stem: json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))}


def _jsonable(obj: Any) -> Any:
    if hasattr(obj, "item"):  # numpy scalars
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot record {type(obj).__name__} as a metric")


# --------------------------------------------------------------------------- the driver
@dataclass
class NotebookRun:
    name: str
    output: str
    html: str | None
    seconds: float
    status: str  # "ok" | "failed"
    error: str | None = None


@dataclass
class PipelineResult:
    run_dir: Path
    params: dict[str, Any]
    notebooks: list[NotebookRun] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=environment_info)

    @property
    def ok(self) -> bool:
        return all(nb.status == "ok" for nb in self.notebooks)

    def save(self) -> Path:
        ran = {nb.name for nb in self.notebooks}
        self.metrics = {k: v for k, v in read_metrics(self.run_dir).items() if k in ran}
        atomic_write(
            self.run_dir / "metrics.json", json.dumps(self.metrics, indent=2, sort_keys=True) + "\n"
        )
        record = {
            "params": self.params,
            "notebooks": [asdict(nb) for nb in self.notebooks],
            "ok": self.ok,
            "versions": self.versions,
        }
        atomic_write(
            self.run_dir / "pipeline.json", json.dumps(record, indent=2, default=str) + "\n"
        )
        write_index(self)
        return self.run_dir


def load_params(params: str | Path | dict[str, Any] | None) -> dict[str, Any]:
    """Read a params YAML (or take a dict) into ``{name, parameters, notebooks}``."""
    if params is None:
        return {"name": "default", "parameters": {}, "notebooks": {}}
    if isinstance(params, dict):
        raw, default_name = params, "custom"
    else:
        path = Path(params)
        if not path.is_file():
            raise PipelineError(f"{path}: params file not found")
        try:
            raw = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
            raise PipelineError(f"{where}: invalid YAML: {getattr(e, 'problem', e)}") from None
        default_name = path.stem
        if not isinstance(raw, dict):
            raise PipelineError(f"{path}: expected a mapping with 'parameters' and 'notebooks'")
    unknown = set(raw) - {"name", "parameters", "notebooks"}
    if unknown:
        raise PipelineError(
            f"params: unknown top-level key(s) {sorted(unknown)} (expected name, parameters, notebooks)"
        )
    return {
        "name": str(raw.get("name") or default_name),
        "parameters": dict(raw.get("parameters") or {}),
        "notebooks": {str(k): dict(v or {}) for k, v in (raw.get("notebooks") or {}).items()},
    }


def pipeline_notebooks(folder: Path | None = None) -> list[Path]:
    """The numbered notebooks, in order."""
    return sorted((folder or paths.notebooks_dir()).glob("[0-9][0-9]_*.ipynb"))


def run_pipeline(
    *,
    params: str | Path | dict[str, Any] | None = None,
    out_dir: str | Path | None = None,
    only: list[str] | None = None,
    notebooks_folder: str | Path | None = None,
    kernel_name: str = KERNEL_NAME,
    progress_bar: bool = False,
) -> PipelineResult:
    """Run the notebooks in order; return (and save) the result.  Raises :class:`PipelineError`
    when a notebook fails, after saving what was produced.

    ``metrics.json`` merges the metrics of the notebooks run by this call only: a notebook's
    earlier metrics are removed before it runs, and those of notebooks not run now stay in
    ``metrics/`` but are not merged.  ``progress_bar`` shows one bar per notebook over its cells
    (with elapsed time) on stderr."""

    cfg = load_params(params)
    target = Path(out_dir).resolve() if out_dir else paths.runs_dir() / cfg["name"]
    target.mkdir(parents=True, exist_ok=True)
    notebooks = pipeline_notebooks(Path(notebooks_folder) if notebooks_folder else None)
    if only:
        wanted = set(only)
        notebooks = [nb for nb in notebooks if nb.stem in wanted or nb.stem[:2] in wanted]
    if not notebooks:
        raise PipelineError(f"no notebooks to run in {notebooks_folder or paths.notebooks_dir()}")
    result = PipelineResult(run_dir=target, params=cfg)
    # the executed notebooks and their HTML live in the run folder: links to views are relative
    # to it (kgwb.viz.graph.notebook_view reads this in the kernels, which inherit the
    # environment); progress bars stay out of the stored notebooks whatever the caller's
    # environment says
    with kernel_env(KGWB_NOTEBOOK_DIR=str(target), KGWB_PROGRESS="0"):
        _run_notebooks(result, notebooks, cfg, kernel_name=kernel_name, progress_bar=progress_bar)
    result.save()
    return result


def _run_notebooks(
    result: PipelineResult,
    notebooks: list[Path],
    cfg: dict[str, Any],
    *,
    kernel_name: str,
    progress_bar: bool,
) -> None:
    import papermill as pm

    target = result.run_dir
    for number, nb in enumerate(notebooks, 1):
        declared = {p for p in pm.inspect_notebook(str(nb))}
        given = {
            **cfg["parameters"],
            **cfg["notebooks"].get(nb.stem, {}),
            "OUTPUT_DIR": str(target),
        }
        parameters = {k: v for k, v in given.items() if k in declared}
        output = target / nb.name
        (target / METRICS_SUBDIR / f"{nb.stem}.json").unlink(missing_ok=True)
        bar = _cell_bar(f"[{number}/{len(notebooks)}] {nb.stem}") if progress_bar else False
        start = time.perf_counter()
        error = None
        try:
            pm.execute_notebook(
                str(nb),
                str(output),
                parameters=parameters,
                kernel_name=kernel_name,
                cwd=str(nb.parent),
                progress_bar=bar,
                log_output=False,
                # the kernel's own log (e.g. "running over TCP without encryption") is noise here
                extra_arguments=["--IPKernelApp.log_level=ERROR"],
            )
        except pm.PapermillExecutionError as e:
            first_line = next((ln for ln in (e.source or "").splitlines() if ln.strip()), "")
            error = (
                f"notebook {nb.name} failed in cell {e.cell_index} (execution count "
                f"{e.exec_count}, starting {first_line.strip()!r}): {e.ename}: {e.evalue.rstrip('.')}. "
                f"Executed copy kept at {output}"
            )
        seconds = time.perf_counter() - start
        html_path = render_html(output) if output.is_file() else None
        result.notebooks.append(
            NotebookRun(
                name=nb.stem,
                output=str(output),
                html=str(html_path) if html_path else None,
                seconds=round(seconds, 2),
                status="failed" if error else "ok",
                error=error,
            )
        )
        if error:
            result.save()
            raise PipelineError(error)


def _cell_bar(desc: str) -> dict[str, Any]:
    """papermill's per-cell progress bar, labelled with the notebook, showing elapsed time."""
    return {
        "desc": desc,
        "unit": "cell",
        "leave": True,
        "bar_format": "{desc}: {n_fmt}/{total_fmt} cells [{elapsed}]",
        "mininterval": 1.0,
    }


def render_html(notebook: Path) -> Path:
    """Render an executed notebook to a self-contained HTML file beside it."""
    import nbformat
    from nbconvert import HTMLExporter

    nb = nbformat.read(str(notebook), as_version=4)
    body, _ = HTMLExporter().from_notebook_node(nb)
    target = notebook.with_suffix(".html")
    atomic_write(target, body)
    return target


def _flat(metrics: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested metrics as ``{"a.b": scalar}`` (lists of scalars joined by commas)."""
    out: dict[str, Any] = {}
    for key, value in metrics.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flat(value, f"{name}."))
        elif isinstance(value, list) and all(not isinstance(v, dict | list) for v in value):
            out[name] = ", ".join(str(v) for v in value)
        else:
            out[name] = value
    return out


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "" if value is None else str(value)


def _is_table(value: Any) -> bool:
    """A dict of dicts of scalars (e.g. metrics per model): shown as one 2-D table."""
    return (
        isinstance(value, dict)
        and len(value) > 0
        and all(
            isinstance(row, dict) and all(not isinstance(v, dict | list) for v in row.values())
            for row in value.values()
        )
    )


def metrics_tables_html(metrics: dict[str, Any]) -> str:
    """One section per notebook: scalars as a name/value table, metric grids as 2-D tables."""
    parts = []
    for stage, values in metrics.items():
        scalars = {k: v for k, v in values.items() if not _is_table(v)}
        grids = {k: v for k, v in values.items() if _is_table(v)}
        parts.append(f"<h3>{html.escape(stage)}</h3>")
        rows = "".join(
            f"<tr><td>{html.escape(k)}</td><td>{html.escape(_fmt(v))}</td></tr>"
            for k, v in _flat(scalars).items()
        )
        if rows:
            parts.append(f'<table class="kv"><tr><th>metric</th><th>value</th></tr>{rows}</table>')
        for name, grid in grids.items():
            cols = list(dict.fromkeys(c for row in grid.values() for c in row))
            head = "".join(f"<th>{html.escape(str(c))}</th>" for c in cols)
            body = "".join(
                f"<tr><td>{html.escape(str(r))}</td>"
                + "".join(f"<td>{html.escape(_fmt(row.get(c)))}</td>" for c in cols)
                + "</tr>"
                for r, row in grid.items()
            )
            parts.append(
                f"<h4>{html.escape(stage)}: {html.escape(name)}</h4>"
                f'<table class="grid"><tr><th></th>{head}</tr>{body}</table>'
            )
    return "\n".join(parts)


def write_index(result: PipelineResult) -> Path:
    """The run's index page: every notebook's HTML (which shows the plots and views inline), the
    other views of the run folder, and the metrics as tables (the full JSON is metrics.json)."""
    rows = []
    for nb in result.notebooks:
        link = (
            f'<a href="{html.escape(Path(nb.html).name)}">{html.escape(nb.name)}</a>'
            if nb.html
            else html.escape(nb.name)
        )
        status = html.escape(nb.status if not nb.error else f"{nb.status}: {nb.error}")
        rows.append(f"<tr><td>{link}</td><td>{nb.seconds:.1f} s</td><td>{status}</td></tr>")
    # the views the notebooks wrote (ego graphs, ...), not notebook pages of earlier runs
    extra = sorted(
        p.name
        for p in result.run_dir.glob("*.html")
        if p.name != "index.html" and not re.match(r"\d\d_", p.name)
    )
    linked = {Path(nb.html).name for nb in result.notebooks if nb.html}
    views = "".join(
        f'<li><a href="{html.escape(n)}">{html.escape(n)}</a></li>'
        for n in extra
        if n not in linked
    )
    tables = metrics_tables_html(result.metrics)
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>kgwb run {html.escape(result.run_dir.name)}</title>
<style>body{{font-family:sans-serif;margin:2em}}td,th{{padding:.2em 1em;text-align:left}}
table.kv td:last-child,table.grid td{{font-family:monospace}}tr:nth-child(even){{background:#f6f6f6}}</style>
</head><body><h1>kgwb run: {html.escape(result.run_dir.name)}</h1>
<table><tr><th>notebook</th><th>time</th><th>status</th></tr>{"".join(rows)}</table>
{f"<h2>Views</h2><ul>{views}</ul>" if views else ""}
<h2>Metrics</h2><p>All values: <a href="metrics.json">metrics.json</a>.</p>
{tables}
</body></html>
"""
    target = result.run_dir / "index.html"
    atomic_write(target, page)
    return target


def summary_lines(result: PipelineResult, *, per_notebook: int = 6) -> list[str]:
    """A few key figures per notebook (its top-level scalar metrics) and the index path."""
    lines = []
    for nb in result.notebooks:
        values = result.metrics.get(nb.name, {})
        picked = [
            f"{k}={_fmt(v)}"
            for k, v in values.items()
            if isinstance(v, int | float | str | bool) and not k.endswith("seconds")
        ][:per_notebook]
        lines.append(f"{nb.name} ({nb.seconds:.0f} s): {', '.join(picked) or nb.status}")
    lines.append(f"metrics (all values): {result.run_dir / 'metrics.json'}")
    lines.append(f"open: {result.run_dir / 'index.html'}")
    return lines


# --------------------------------------------------------------------------- CLI
def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "pipeline",
        help="run the notebooks in order with papermill, render HTML, merge metrics",
    )
    p.add_argument("--params", default=None, help="params YAML (see notebooks/params/)")
    p.add_argument("--out", default=None, help="run folder (default reports/runs/<name>)")
    p.add_argument(
        "--only",
        nargs="+",
        default=None,
        metavar="NOTEBOOK",
        help="run only these (e.g. 01 02_build_kg)",
    )
    p.add_argument("--quiet", action="store_true", help="no per-cell progress on stderr")
    p.set_defaults(func=_cli)


def _cli(args: argparse.Namespace) -> int:
    import sys

    result = run_pipeline(
        params=args.params, out_dir=args.out, only=args.only, progress_bar=not args.quiet
    )
    print("\n".join(summary_lines(result)))
    sys.stdout.flush()
    return 0
