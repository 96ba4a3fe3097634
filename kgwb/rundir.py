"""The run folder, which owns every path of a run and builds or reuses each stage's result.

A notebook asks for what it needs and never spells a path::

    run = RunDir.for_notebook(OUTPUT_DIR, DATA_SOURCE, SEED)
    data = run.get_or_build("data", DataConfig(source=DATA_SOURCE, seed=SEED))
    kg = run.get_or_build("kg", KGBuildConfig(...))

Layout (kept from earlier versions, so old run folders stay readable)::

    <run>/dataset/ + data_stage.json      stage "data"
    <run>/kg_build/{kg/, kg_build.json}   stage "kg"
    <run>/train/<model>/                  stage "train" (one folder per model: run.train(name))
    <run>/kge/<model>/                    stage "kge" (one folder per model)
    <run>/extractor/                      stage "extract" (a trained extractor)
    <run>/metrics/<notebook>.json         what the pipeline merges into metrics.json

:meth:`RunDir.get_or_build` reuses a saved result only when its recorded config equals the
requested one and the data stamp (:mod:`kgwb.runs`) matches; otherwise it builds the stage and
saves it (each stage's ``save`` writes atomically, record last).  Stages are registered in
:data:`STAGES` (:class:`kgwb.stage.Registry`, lazy entries) as :class:`StageSpec`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kgwb.stage import Registry, StageConfig, StageResult, resolve_entry


@dataclasses.dataclass(frozen=True)
class StageSpec:
    """How a stage is built and where its result lives.

    ``build(config, run)`` returns the stage's :class:`~kgwb.stage.StageResult`; with
    ``saves=True`` it has already saved it into ``run`` (a stage that writes atomically as it
    goes, e.g. training), else :meth:`RunDir.get_or_build` saves it.  ``result`` is the result
    class (its ``load(run)`` reopens a saved one); ``folder`` is the attribute of
    :class:`RunDir` that names the stage's folder."""

    build: Callable[[Any, RunDir], StageResult] | str
    result: type[StageResult] | str
    folder: str
    saves: bool = False

    def build_fn(self) -> Callable[[Any, RunDir], StageResult]:
        return resolve_entry(self.build)

    def result_cls(self) -> type[StageResult]:
        return resolve_entry(self.result)


#: every stage RunDir can build: name -> StageSpec (modules register theirs)
STAGES = Registry("stage")


class RunDir:
    """One run's folder and the paths of its stages."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).expanduser().resolve()

    @classmethod
    def for_notebook(
        cls, output_dir: str | Path | None, source: Any = None, seed: int = 0
    ) -> RunDir:
        """``OUTPUT_DIR`` if given, else the standalone folder named from the data parameters
        (see :func:`kgwb.pipeline.run_dir`)."""
        from kgwb.pipeline import run_dir

        return cls(run_dir(output_dir, source, seed))

    def __fspath__(self) -> str:
        return str(self.root)

    def __truediv__(self, other: str) -> Path:
        return self.root / other

    def __repr__(self) -> str:
        return f"RunDir({str(self.root)!r})"

    # -- the paths ------------------------------------------------------------------------
    @property
    def dataset(self) -> Path:
        return self.root / "dataset"

    @property
    def kg_build(self) -> Path:
        return self.root / "kg_build"

    @property
    def kg(self) -> Path:
        """The KG tables (``KnowledgeGraph.load(run.kg)``)."""
        return self.kg_build / "kg"

    @property
    def spans(self) -> Path:
        return self.kg_build / "extracted_spans.parquet"

    @property
    def train_root(self) -> Path:
        return self.root / "train"

    def train(self, name: str) -> Path:
        """The folder of one trained recommender (``kgat+text`` → ``train/kgat_text``)."""
        return self.train_root / name.replace("+", "_")

    @property
    def kge(self) -> Path:
        return self.root / "kge"

    @property
    def extractor(self) -> Path:
        return self.root / "extractor"

    @property
    def kg_record(self) -> Path:
        """What 02_build_kg recorded about the build (``kg_build.json``)."""
        return self.kg_build / "kg_build.json"

    @property
    def kg_extractor(self) -> Path:
        """The extractor model 02_build_kg trained (``distant``) for the KG."""
        return self.kg_build / "extractor" / "model"

    def kge_model(self, name: str) -> Path:
        """The folder of one KG-embedding model (``kge/<model>``)."""
        return self.kge / name

    @property
    def ablation(self) -> Path:
        """03_train's KG ablation runs."""
        return self.root / "ablation"

    @property
    def cold_start(self) -> Path:
        """03_train's cold-start comparison runs."""
        return self.root / "cold_start"

    @property
    def inspect_kg(self) -> Path:
        """04_inspect's own catalog KG when 02_build_kg has not run here."""
        return self.root / "inspect_kg"

    @property
    def inspect_model(self) -> Path:
        """04_inspect's own recommender when 03_train has not run here."""
        return self.root / "inspect_model"

    @property
    def metrics(self) -> Path:
        return self.root / "metrics"

    def views(self) -> list[Path]:
        """The HTML views written into the run (ego graphs, explained recommendations)."""
        return sorted(self.root.glob("*.html"))

    def view(self, name: str) -> Path:
        """An HTML view or figure written by 02/04 (``run.view("ego_kg_item.html")``)."""
        return self.root / name

    def train_folder(self, config: Any) -> Path:
        """The folder of the ``train`` stage for ``config`` (a RecommenderConfig)."""
        if config is None:
            from kgwb.errors import ConfigError

            raise ConfigError("the train stage has one folder per model: give its config")
        return self.train(config.name)

    def kge_folder(self, config: Any) -> Path:
        """The folder of the ``kge`` stage for ``config`` (a KGEConfig): ``kge/<model>``, as
        03_train writes it."""
        if config is None:
            from kgwb.errors import ConfigError

            raise ConfigError("the kge stage has one folder per model: give its config")
        return self.kge / config.key

    def folder_of(self, stage: str, config: Any = None) -> Path:
        """The folder a stage's result is saved in (the root for ``data``); a stage with one
        folder per config (``train``: one per model) names it from ``config``."""
        spec = STAGES.get(stage)
        where = getattr(self, spec.folder)
        if callable(where):
            where = where(config)
        return where if isinstance(where, Path) else Path(where)

    # -- build or reuse ---------------------------------------------------------------------
    def saved_config(self, stage: str, config: Any = None) -> dict[str, Any] | None:
        """The config recorded by the saved result of ``stage``, or None (none or damaged)."""
        spec = STAGES.get(stage)
        result = spec.result_cls()
        try:
            return result.read_record(self._where(stage, config)).get(result.CONFIG_KEY)
        except (FileNotFoundError, ValueError, AttributeError):
            return None

    def _built_from_other_data(self, stage: str, config: Any = None) -> bool:
        """Whether ``stage``'s saved output is stamped (:mod:`kgwb.runs`) with other data than
        the run's data stage now holds."""
        if stage == "data":
            return False
        from kgwb.runs import data_key, read_stamp

        built_from = read_stamp(self.folder_of(stage, config))
        data = self.saved_config("data") if "data" in STAGES else None
        if built_from is None or data is None:
            return False
        return built_from != data_key(data.get("source"), data.get("format"), data.get("seed", 0))

    def _where(self, stage: str, config: Any) -> Any:
        """What a stage's result reads and writes: this run, or its folder when the stage has
        one folder per config."""
        spec = STAGES.get(stage)
        return self.folder_of(stage, config) if callable(getattr(self, spec.folder)) else self

    def get_or_build(self, stage: str, config: StageConfig, *, rebuild: bool = False) -> Any:
        """The saved result of ``stage`` when it was built with ``config`` (same JSON), else
        the stage built now with ``config`` and saved into this run."""
        spec = STAGES.get(stage)
        if (
            not rebuild
            and self.saved_config(stage, config) == config.to_dict()
            and not self._built_from_other_data(stage, config)
        ):
            try:
                return spec.result_cls().load(self._where(stage, config))
            except FileNotFoundError:
                pass  # a record without its files: build again
        result = spec.build_fn()(config, self)
        if not spec.saves:
            result.save(self)
        return result


STAGES.register(
    "train",
    StageSpec(
        build="kgwb.train.recommend:build_stage",
        result="kgwb.train.recommend:RecommenderResult",
        folder="train_folder",
        saves=True,
    ),
)
STAGES.register(
    "kge",
    StageSpec(
        build="kgwb.train.kge:build_stage", result="kgwb.train.kge:KGEResult", folder="kge_folder"
    ),
)
# the stages of kgwb/ outside kgwb/train (lazy: nothing is imported until a stage is asked for)
STAGES.register(
    "data",
    StageSpec(
        build="kgwb.data.stage:build_data_stage",
        result="kgwb.data.stage:DataStageResult",
        folder="root",
    ),
)
STAGES.register(
    "kg",
    StageSpec(
        build="kgwb.kg.build:build_kg_stage",
        result="kgwb.kg.build:KGBuildResult",
        folder="kg_build",
        saves=True,
    ),
)
STAGES.register(
    "extract",
    StageSpec(
        build="kgwb.text.extract:build_extractor_stage",
        result="kgwb.text.extract:ExtractorTrainResult",
        folder="extractor",
        saves=True,
    ),
)
