"""Stage 1 — data: the canonical :class:`Dataset`, loaders for real formats, the sample generator.

Entry point: :func:`load_dataset` picks a loader by format name (registry below) and returns a
:class:`Dataset` whose ``report`` says how many rows were read, loaded and rejected.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from kgwb.data.schema import SPLITS, Dataset, LoadReport, RejectedRow
from kgwb.errors import ConfigError, DataError
from kgwb.stage import Registry

Errors = Literal["raise", "skip"]

#: format name -> its loader, a lazy "module:function"; every loader takes
#: (source, *, errors, **options), except kgwb's own layout (a saved Dataset)
FORMATS = Registry(
    "format",
    {
        "sample": "kgwb.data.sample:load_sample",
        "kgat": "kgwb.data.loaders.kgat:load_kgat",
        "recbole": "kgwb.data.loaders.recbole:load_recbole",
        "attributes": "kgwb.data.loaders.attributes:load_attributes",
        "table": "kgwb.data.loaders.table:load_tables",
        "kgwb": "kgwb.data.schema:Dataset.load",
    },
)


def detect_format(source: str | Path) -> str:
    """Guess the format of ``source`` from its shape; raises DataError naming what was looked for."""
    s = str(source)
    if s.startswith("sample:") or s == "sample":
        return "sample"
    p = Path(s)
    if not p.exists():
        raise DataError("no such file or folder", file=p)
    if p.is_dir():
        if (p / "dataset.json").is_file():
            return "kgwb"
        if (p / "train.txt").is_file() or (p / "kg_final.txt").is_file():
            return "kgat"
        if any(p.glob("*.inter")) or any(p.glob("*.kg")):
            return "recbole"
        raise DataError(
            "cannot tell the format of this folder",
            file=p,
            expected="train.txt/kg_final.txt (kgat), *.inter/*.kg (recbole) or dataset.json (kgwb);"
            " pass --format",
        )
    if p.suffix in {".jsonl", ".json"}:
        return "table" if _looks_like_amazon(p) else "attributes"
    return "table"


def _looks_like_amazon(path: Path) -> bool:
    """Amazon review/metadata JSON lines carry ``reviewerID`` or ``asin`` on every line."""
    try:
        with path.open("rb") as f:
            first = f.readline(1 << 16)
    except OSError:
        return False
    return b'"reviewerID"' in first or b'"asin"' in first or b"'asin'" in first


def load_dataset(
    source: str | Path,
    *,
    format: str | None = None,  # noqa: A002 - the CLI flag is --format
    errors: Errors = "raise",
    **options: Any,
) -> Dataset:
    """Load ``source`` into a :class:`Dataset`.

    ``source`` is a path or ``sample:SIZE`` (e.g. ``sample:tiny``).  ``format`` is one of
    :data:`FORMATS` (guessed when None).  ``errors="raise"`` stops at the first bad row with a
    :class:`~kgwb.errors.DataError` naming file, line and column; ``errors="skip"`` skips bad rows
    and counts them in ``dataset.report``.
    """
    if errors not in ("raise", "skip"):
        raise ConfigError(f"errors must be 'raise' or 'skip', not {errors!r}")
    fmt = format or detect_format(source)
    loader = FORMATS.get(fmt)  # an unknown name lists the known ones
    if fmt == "kgwb":
        return loader(source)
    return loader(source, errors=errors, **options)


__all__ = [
    "FORMATS",
    "SPLITS",
    "DataError",
    "Dataset",
    "LoadReport",
    "RejectedRow",
    "detect_format",
    "load_dataset",
]
