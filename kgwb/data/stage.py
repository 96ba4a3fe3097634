"""Stage 1 entry point: load (or generate) the data, describe it, save it for the later stages.

``prepare_data(DataConfig(...))`` is what 01_explore and ``kgwb data`` call (the keyword form
``prepare_data(source=..., seed=...)`` still works).  Later notebooks call :func:`get_dataset`
(or ``RunDir.get_or_build("data", config)``), which reuses the Parquet copy this stage wrote
into the run folder and builds it when it is missing, so every notebook also runs on its own.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from kgwb.data import FORMATS, Errors, load_dataset
from kgwb.data.explore import describe
from kgwb.data.schema import Dataset
from kgwb.errors import ConfigError
from kgwb.stage import StageConfig, StageResult, option

DATASET_SUBDIR = "dataset"
STAGE_FILE = "data_stage.json"


@dataclass
class DataConfig(StageConfig):
    """What data a run works on (the flags of ``kgwb data``)."""

    source: str = option(
        "sample:small",
        "a file or folder, or sample:SIZE (tiny, small, medium, large, xlarge)",
        flag="source",
        required=True,
    )
    format: str | None = option(None, "guessed when omitted", choices=FORMATS.names())
    errors: str = option(
        "raise",
        "raise: stop at the first bad row; skip: skip and count bad rows",
        flag="--on-bad-rows",
        choices=("raise", "skip"),
    )
    seed: int = option(0, "seed of the sample generator")

    def validate(self) -> None:
        if self.errors not in ("raise", "skip"):
            raise ConfigError(f"errors must be 'raise' or 'skip', not {self.errors!r}")
        if self.format is not None and self.format not in FORMATS:
            FORMATS.get(self.format)  # raises, listing the known formats

    def load(self) -> Dataset:
        """The dataset (``seed`` drives the sample generator; real data ignores it)."""
        options: dict[str, Any] = {"seed": self.seed} if self.source.startswith("sample") else {}
        errors: Errors = self.errors  # type: ignore[assignment]
        return load_dataset(self.source, format=self.format, errors=errors, **options)


@dataclass(kw_only=True)
class DataStageResult(StageResult):
    """Outcome of :func:`prepare_data`: the dataset, its summary and descriptive statistics."""

    STAGE: ClassVar[str] = "data"
    RECORD: ClassVar[str] = STAGE_FILE

    dataset: Dataset
    summary: dict[str, Any]
    stats: dict[str, Any]
    config: DataConfig
    seconds: float
    out_dir: Path | None = None

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

    def record(self) -> dict[str, Any]:
        """``data_stage.json``: config, metrics, environment, summary, stats, seconds (and
        ``versions``, its older name for the environment)."""
        return {
            **super().record(),
            "summary": self.summary,
            "stats": self.stats,
            "seconds": self.seconds,
            "versions": self.environment,
        }

    def write_files(self, folder: Path) -> None:
        self.dataset.save(folder / DATASET_SUBDIR, overwrite=True)

    def save(self, out_dir: Any = None) -> Path:
        """Write the dataset (Parquet) and ``data_stage.json`` (last) into ``out_dir`` (a
        folder or a :class:`~kgwb.rundir.RunDir`; default: where it was saved before)."""
        target = out_dir if out_dir is not None else self.out_dir
        if target is None:
            raise ConfigError("no output folder given")
        self.out_dir = super().save(target)
        return self.out_dir

    @classmethod
    def load(cls, run: Any) -> DataStageResult:
        """The saved stage of ``run`` (a folder or a RunDir)."""
        from kgwb.stage import _folder_for

        folder = _folder_for(run, cls.STAGE)
        record = cls.read_record(folder)
        if not (folder / DATASET_SUBDIR / "dataset.json").is_file():
            raise FileNotFoundError(f"{folder / DATASET_SUBDIR}: no saved dataset")
        return cls(
            dataset=Dataset.load(folder / DATASET_SUBDIR),
            summary=record["summary"],
            stats=record["stats"],
            config=DataConfig.from_dict(record["config"]),
            seconds=float(record["seconds"]),
            out_dir=folder,
            environment=record.get("environment") or record.get("versions") or {},
        )


def prepare_data(
    config: DataConfig | None = None, *, out_dir: Any = None, **options: Any
) -> DataStageResult:
    """Load ``config.source`` (a path or ``sample:SIZE``), describe it and, with ``out_dir``
    (a folder or a RunDir), save it.  The config's fields may also be given as keywords
    (``prepare_data(source="sample:tiny", seed=1)``), over the config's.

    ``seed`` drives the sample generator (real data ignores it) and is recorded either way.
    """
    if "source" in options:
        options["source"] = str(options["source"])
    config = (config or DataConfig()).replace(**options)
    start = time.perf_counter()
    ds = config.load()
    seconds = time.perf_counter() - start
    result = DataStageResult(
        dataset=ds, summary=ds.summary(), stats=describe(ds), config=config, seconds=seconds
    )
    if out_dir is not None:
        result.save(out_dir)
    return result


def build_data_stage(config: DataConfig, run: Any) -> DataStageResult:
    """The ``data`` stage of :data:`kgwb.rundir.STAGES` (RunDir saves it)."""
    return prepare_data(config)


def get_dataset(
    *,
    run_dir: Any,
    source: str = "sample:small",
    format: str | None = None,  # noqa: A002
    errors: Errors = "raise",
    seed: int = 0,
) -> Dataset:
    """The dataset a run works on: the copy stage 1 saved in ``run_dir`` if it was prepared
    with the same config, else prepared now (and saved there for the next stage)."""
    from kgwb.rundir import RunDir

    run = run_dir if isinstance(run_dir, RunDir) else RunDir(run_dir)
    config = DataConfig(source=str(source), format=format, errors=errors, seed=seed)
    return run.get_or_build("data", config).dataset
