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
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from kgwb import paths
from kgwb.atomic import write_text as atomic_write
from kgwb.errors import KgwbError
from kgwb.runinfo import environment_info

METRICS_SUBDIR = "metrics"
KERNEL_NAME = "python3"


class PipelineError(KgwbError):
    """A notebook of the pipeline failed; the message names notebook and cell."""


# --------------------------------------------------------------------------- used by notebooks
def run_dir(output_dir: str | Path | None = None) -> Path:
    """The run folder a notebook writes into: ``OUTPUT_DIR`` if given, else
    ``reports/runs/notebooks`` (a notebook run on its own, e.g. from JupyterLab)."""
    path = Path(output_dir).expanduser().resolve() if output_dir else paths.runs_dir() / "notebooks"
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
        self.metrics = read_metrics(self.run_dir)
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
    when a notebook fails, after saving what was produced."""
    import papermill as pm

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
    for nb in notebooks:
        declared = {p for p in pm.inspect_notebook(str(nb))}
        given = {
            **cfg["parameters"],
            **cfg["notebooks"].get(nb.stem, {}),
            "OUTPUT_DIR": str(target),
        }
        parameters = {k: v for k, v in given.items() if k in declared}
        output = target / nb.name
        start = time.perf_counter()
        error = None
        try:
            pm.execute_notebook(
                str(nb),
                str(output),
                parameters=parameters,
                kernel_name=kernel_name,
                cwd=str(nb.parent),
                progress_bar=progress_bar,
                log_output=False,
            )
        except pm.PapermillExecutionError as e:
            first_line = next((ln for ln in (e.source or "").splitlines() if ln.strip()), "")
            error = (
                f"notebook {nb.name} failed in cell {e.cell_index} (execution count "
                f"{e.exec_count}, starting {first_line.strip()!r}): {e.ename}: {e.evalue}. "
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
    result.save()
    return result


def render_html(notebook: Path) -> Path:
    """Render an executed notebook to a self-contained HTML file beside it."""
    import nbformat
    from nbconvert import HTMLExporter

    nb = nbformat.read(str(notebook), as_version=4)
    body, _ = HTMLExporter().from_notebook_node(nb)
    target = notebook.with_suffix(".html")
    atomic_write(target, body)
    return target


def write_index(result: PipelineResult) -> Path:
    """A small index page linking every notebook's HTML and showing the merged metrics."""
    rows = []
    for nb in result.notebooks:
        link = (
            f'<a href="{html.escape(Path(nb.html).name)}">{html.escape(nb.name)}</a>'
            if nb.html
            else html.escape(nb.name)
        )
        status = html.escape(nb.status if not nb.error else f"{nb.status}: {nb.error}")
        rows.append(f"<tr><td>{link}</td><td>{nb.seconds:.1f} s</td><td>{status}</td></tr>")
    extra = sorted(p.name for p in result.run_dir.glob("*.html") if p.name != "index.html")
    linked = {Path(nb.html).name for nb in result.notebooks if nb.html}
    views = "".join(
        f'<li><a href="{html.escape(n)}">{html.escape(n)}</a></li>'
        for n in extra
        if n not in linked
    )
    metrics = html.escape(json.dumps(result.metrics, indent=2, sort_keys=True))
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>kgwb run {html.escape(result.run_dir.name)}</title>
<style>body{{font-family:sans-serif;margin:2em}}td{{padding:.2em 1em}}pre{{background:#f6f6f6;padding:1em}}</style>
</head><body><h1>kgwb run: {html.escape(result.run_dir.name)}</h1>
<table><tr><th>notebook</th><th>time</th><th>status</th></tr>{"".join(rows)}</table>
{f"<h2>Views</h2><ul>{views}</ul>" if views else ""}
<h2>Metrics</h2><pre>{metrics}</pre></body></html>
"""
    target = result.run_dir / "index.html"
    atomic_write(target, page)
    return target


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
    p.set_defaults(func=_cli)


def _cli(args: argparse.Namespace) -> int:
    from kgwb.cli import print_json

    result = run_pipeline(params=args.params, out_dir=args.out, only=args.only)
    print_json(
        {
            "run_dir": str(result.run_dir),
            "index": str(result.run_dir / "index.html"),
            "notebooks": [{"name": nb.name, "seconds": nb.seconds} for nb in result.notebooks],
            "metrics": result.metrics,
        }
    )
    return 0
