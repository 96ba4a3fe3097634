"""The one module that owns paths.

Everything is resolved from the package location (the repository root when kgwb is installed in
development mode) or from explicit arguments, never from the current working directory: nbval
runs notebooks in their folder, papermill in the caller's.  ``KGWB_HOME`` moves the data and
report folders elsewhere (e.g. a scratch disk) without touching code.
"""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_ROOT = PACKAGE_DIR.parent


def project_root() -> Path:
    """Folder holding data/ and reports/: ``$KGWB_HOME`` if set, else the repository root."""
    home = os.environ.get("KGWB_HOME")
    return Path(home).expanduser().resolve() if home else REPO_ROOT


def data_dir() -> Path:
    return project_root() / "data"


def reports_dir() -> Path:
    return project_root() / "reports"


def runs_dir() -> Path:
    return reports_dir() / "runs"


def cache_dir() -> Path:
    """Derived data kgwb can rebuild (e.g. search indexes): ``$KGWB_CACHE`` if set, else
    ``data/cache``.  Inputs such as a built KG stay untouched (they may be read-only)."""
    override = os.environ.get("KGWB_CACHE")
    return Path(override).expanduser().resolve() if override else data_dir() / "cache"


def notebooks_dir() -> Path:
    return REPO_ROOT / "notebooks"


def params_dir() -> Path:
    return notebooks_dir() / "params"


def shared_datasets_dir() -> Path | None:
    """``../shared/datasets`` beside the repository (developer machines and CI), or None.

    ``KGWB_SHARED_DATASETS`` overrides the location.
    """
    override = os.environ.get("KGWB_SHARED_DATASETS")
    candidate = Path(override) if override else REPO_ROOT.parent / "shared" / "datasets"
    return candidate if candidate.is_dir() else None


def resolve(path: str | os.PathLike[str], *, base: Path | None = None) -> Path:
    """Resolve a user-given path: absolute stays, relative is taken against ``base`` (or cwd)."""
    p = Path(path).expanduser()
    if not p.is_absolute() and base is not None:
        p = base / p
    return p.resolve()
