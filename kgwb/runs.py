"""Run folders and what their stage outputs were built from.

A run folder (``reports/runs/<name>/``) holds the outputs of the notebook stages: the dataset,
the KG (``kg_build/``), the trained recommenders (``train/``), ... .  A notebook reuses an earlier
stage's output only when it was built from the same data: each stage writes a small stamp
(``kgwb_stage.json``: source, format, seed) beside its output, and :func:`check_reuse` compares it
with the parameters of the notebook about to reuse it.  A different stamp (or none) is refused
with a :class:`StageMismatchError` that says what the output was built from and what to do.

Notebooks run on their own (JupyterLab, ``papermill`` without ``OUTPUT_DIR``) get a run folder
named from their data parameters (:func:`standalone_run_dir`), so two standalone runs on different
data never share one.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from kgwb import paths
from kgwb.errors import KgwbError

STAMP_FILE = "kgwb_stage.json"


class StageMismatchError(KgwbError):
    """A stage output in the run folder was built from other data than the notebook asks for."""


def data_key(source: Any, format: str | None = None, seed: int = 0) -> dict[str, Any]:  # noqa: A002
    """What identifies the data a stage output was built from."""
    return {"source": str(source), "format": format or None, "seed": int(seed)}


def standalone_name(source: Any, seed: int = 0) -> str:
    """``notebooks-sample-small-seed0``: the run folder name of a standalone notebook run."""
    text = str(source).rstrip("/\\")
    if not text.startswith("sample"):
        text = "-".join(Path(text).parts[-2:])
    slug = re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower() or "data"
    return f"notebooks-{slug}-seed{int(seed)}"


def standalone_run_dir(source: Any, seed: int = 0) -> Path:
    return paths.runs_dir() / standalone_name(source, seed)


def display_path(path: str | Path) -> str:
    """``path`` relative to the project root when it lies inside it (no machine paths in outputs)."""
    p = Path(path).resolve()
    for root in (paths.project_root(), paths.REPO_ROOT):
        try:
            return str(p.relative_to(root))
        except ValueError:
            continue
    return str(p)


def stamp(folder: str | Path, key: dict[str, Any]) -> Path:
    """Record in ``folder`` the data its stage output was built from."""
    from kgwb.atomic import write_json

    target = Path(folder)
    target.mkdir(parents=True, exist_ok=True)
    out = target / STAMP_FILE
    write_json(out, {"data": key}, sort_keys=True)
    return out


def read_stamp(folder: str | Path) -> dict[str, Any] | None:
    f = Path(folder) / STAMP_FILE
    if not f.is_file():
        return None
    try:
        return json.loads(f.read_text()).get("data")
    except (json.JSONDecodeError, AttributeError):
        return None


def _describe(key: dict[str, Any]) -> str:
    fmt = f", DATA_FORMAT={key.get('format')!r}" if key.get("format") else ""
    return f"DATA_SOURCE={key.get('source')!r}{fmt}, SEED={key.get('seed')}"


def check_reuse(folder: str | Path, key: dict[str, Any], *, what: str, stage: str) -> bool:
    """May the stage output in ``folder`` be reused for data ``key``?

    False when the folder holds no output (``folder`` missing or empty): the caller builds it.
    True when its stamp matches ``key``.  Raises :class:`StageMismatchError` when it was built
    from other data, or when nothing records what it was built from.
    """
    folder = Path(folder)
    if not folder.is_dir() or not any(p.name != STAMP_FILE for p in folder.iterdir()):
        return False
    found = read_stamp(folder)
    if found == key:
        return True
    built = f"was built from {_describe(found)}" if found else "does not record its data"
    raise StageMismatchError(
        f"{display_path(folder)}: the {what} there {built}, but this notebook runs on "
        f"{_describe(key)}. Run {stage} again with these parameters (or delete that folder), "
        "or set OUTPUT_DIR to another run folder."
    )
