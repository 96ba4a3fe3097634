"""Stage 1 entry point: load (or generate) the data, describe it, save it for the later stages.

``prepare_data`` is what 01_explore and ``kgwb data`` call.  Later notebooks call
:func:`get_dataset`, which reuses the Parquet copy this stage wrote into the run folder and builds
it when it is missing, so every notebook also runs on its own.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kgwb.data import Errors, load_dataset
from kgwb.data.explore import describe
from kgwb.data.schema import Dataset
from kgwb.errors import ConfigError
from kgwb.runinfo import environment_info

DATASET_SUBDIR = "dataset"
STAGE_FILE = "data_stage.json"


@dataclass
class DataStageResult:
    """Outcome of :func:`prepare_data`: the dataset, its summary and descriptive statistics."""

    dataset: Dataset
    summary: dict[str, Any]
    stats: dict[str, Any]
    config: dict[str, Any]
    seconds: float
    out_dir: Path | None = None
    versions: dict[str, str] = field(default_factory=environment_info)

    @property
    def metrics(self) -> dict[str, Any]:
        """Scalars worth tracking across runs (what the pipeline merges into metrics.json)."""
        s = self.summary
        return {
            "users": s["users"],
            "items": s["items"],
            "interactions": s["interactions_total"],
            "interactions_per_split": s["interactions"],
            "kg_triples": s["triples"],
            "rejected_rows": s["load"]["rejected"],
            **{k: v for k, v in self.stats.items() if k not in ("users", "items", "interactions")},
            "load_seconds": round(self.seconds, 3),
        }

    def save(self, out_dir: str | Path | None = None) -> Path:
        """Write the dataset (Parquet) and ``data_stage.json`` (summary, stats, config, versions)."""
        from kgwb.atomic import write_json

        target = Path(out_dir) if out_dir is not None else self.out_dir
        if target is None:
            raise ConfigError("no output folder given")
        target.mkdir(parents=True, exist_ok=True)
        # the stage record goes first and comes back last, so it never describes another dataset
        (target / STAGE_FILE).unlink(missing_ok=True)
        self.dataset.save(target / DATASET_SUBDIR, overwrite=True)
        payload = {
            "config": self.config,
            "summary": self.summary,
            "stats": self.stats,
            "seconds": self.seconds,
            "versions": self.versions,
        }
        write_json(target / STAGE_FILE, payload)
        self.out_dir = target
        return target


def prepare_data(
    *,
    source: str = "sample:small",
    format: str | None = None,  # noqa: A002
    errors: Errors = "raise",
    seed: int = 0,
    out_dir: str | Path | None = None,
) -> DataStageResult:
    """Load ``source`` (a path or ``sample:SIZE``), describe it and, with ``out_dir``, save it.

    ``seed`` drives the sample generator (real data ignores it) and is recorded either way.
    """
    config = {"source": str(source), "format": format, "errors": errors, "seed": seed}
    start = time.perf_counter()
    options: dict[str, Any] = {"seed": seed} if str(source).startswith("sample") else {}
    ds = load_dataset(source, format=format, errors=errors, **options)
    seconds = time.perf_counter() - start
    result = DataStageResult(
        dataset=ds, summary=ds.summary(), stats=describe(ds), config=config, seconds=seconds
    )
    if out_dir is not None:
        result.save(out_dir)
    return result


def get_dataset(
    *,
    run_dir: str | Path,
    source: str = "sample:small",
    format: str | None = None,  # noqa: A002
    errors: Errors = "raise",
    seed: int = 0,
) -> Dataset:
    """The dataset a run works on: the copy stage 1 saved in ``run_dir`` if it matches
    ``source``/``seed``, else prepared now (and saved there for the next stage)."""
    run = Path(run_dir)
    saved = run / STAGE_FILE
    if saved.is_file() and (run / DATASET_SUBDIR / "dataset.json").is_file():
        try:
            cfg = json.loads(saved.read_text()).get("config", {})
        except (json.JSONDecodeError, AttributeError):
            cfg = {}  # a damaged record: prepare the data again
        if cfg.get("source") == str(source) and cfg.get("seed") == seed:
            return Dataset.load(run / DATASET_SUBDIR)
    return prepare_data(source=source, format=format, errors=errors, seed=seed, out_dir=run).dataset
