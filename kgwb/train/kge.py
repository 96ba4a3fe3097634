"""Knowledge-graph embeddings through PyKEEN: one entry point, :func:`train_kge`.

This module owns turning "some triples" into PyKEEN triples factories, choosing a model by name,
running :func:`pykeen.pipeline.pipeline` with an explicit seed and device, and reading PyKEEN's
filtered rank-based evaluation back as kgwb metrics (``mrr``, ``hits@1/3/10``, both sides,
realistic ranks).  Evaluation is PyKEEN's own; nothing here re-implements ranking.

Triples sources (``triples=``):

- a :class:`~kgwb.kg.model.KnowledgeGraph` (its edges, optionally only some ``sources``), a
  :class:`~kgwb.data.schema.Dataset` with a ``kg`` table, or a DataFrame with head/relation/tail;
- a path: a text file of triples (one ``head<TAB>relation<TAB>tail`` per line, or whitespace
  separated when a line has no tab, as KGAT's ``kg_final.txt``), a saved kgwb knowledge graph
  (folder with ``kg.json``, or a ``kgwb kg build --out DIR`` folder, whose graph is
  ``DIR/kg``), a saved kgwb dataset (``dataset.json``) or a KGAT folder (``kg_final.txt``);
- the name of a benchmark graph bundled in the PyKEEN wheel (:data:`BUNDLED_DATASETS`), which
  keeps its published train/valid/test split.

Other triples are split ``[1 - validation - test, validation, test]`` by
``TriplesFactory.split(random_state=seed)``, which moves triples back into train until every
entity and relation appears there.  Only entities that occur in some triple get an embedding.

PyKEEN and torch are imported inside functions, so importing kgwb stays light.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import json
import logging
import os
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import pandas as pd

from kgwb.device import resolve_device
from kgwb.errors import DataError
from kgwb.stage import Registry, StageResult
from kgwb.train.config import KGE_TESTED, KGEConfig, KGEConfigError  # noqa: F401

if TYPE_CHECKING:  # pragma: no cover
    from pykeen.pipeline import PipelineResult
    from pykeen.triples import CoreTriplesFactory

#: the models kgwb's tests and benchmarks cover -> PyKEEN class name (every model of PyKEEN's
#: resolver trains: :func:`kge_models`)
MODELS: dict[str, str] = KGE_TESTED

#: benchmark graphs shipped inside the pykeen wheel (they load offline) -> PyKEEN dataset name
BUNDLED_DATASETS: dict[str, str] = {"nations": "Nations", "umls": "UMLS", "kinships": "Kinships"}


#: kgwb metric key -> PyKEEN metric (both sides, realistic rank; filtered by the evaluator)
METRICS: dict[str, str] = {
    "mrr": "both.realistic.inverse_harmonic_mean_rank",
    "hits@1": "both.realistic.hits_at_1",
    "hits@3": "both.realistic.hits_at_3",
    "hits@10": "both.realistic.hits_at_10",
    "mean_rank": "both.realistic.arithmetic_mean_rank",
}

#: early stopping on validation MRR: evaluate every ``frequency`` epochs, stop after ``patience``
#: evaluations without a relative improvement of ``relative_delta``
EARLY_STOPPING: dict[str, Any] = {
    "metric": "inverse_harmonic_mean_rank",
    "frequency": 10,
    "patience": 3,
    "relative_delta": 0.002,
}

TRIPLE_COLUMNS = ("head", "relation", "tail")


# --------------------------------------------------------------------------------------------
# result


@contextlib.contextmanager
def _quiet_pykeen():
    """Only errors from PyKEEN's loggers: its INFO/WARNING records (checkpoint paths in the
    scratch folder, CPU batch-size and memory-utilisation notes) are noise in notebooks and logs."""
    loggers = [logging.getLogger(name) for name in ("pykeen", "torch_max_mem")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


@dataclass(kw_only=True)
class KGEResult(StageResult):
    """Outcome of :func:`train_kge`: metrics, the run's description (``config``), the
    :class:`~kgwb.train.config.KGEConfig` asked for (``stage_config``) and PyKEEN's pipeline
    result (None for a result reopened with :meth:`load`, which reads the saved files)."""

    STAGE: ClassVar[str] = "kge"
    RECORD: ClassVar[str] = "config.json"
    CONFIG_KEY: ClassVar[str] = "stage_config"

    metrics: dict[str, Any] = None  # type: ignore[assignment]  (a field, not the base property)
    config: dict[str, Any]
    pipeline_result: PipelineResult | None = field(default=None, repr=False)
    stage_config: KGEConfig | None = None
    out_dir: Path | None = None

    @property
    def versions(self) -> dict[str, str]:
        return self.environment

    @property
    def model(self) -> Any:
        """The trained PyKEEN model (a reopened run unpickles PyKEEN's ``trained_model.pkl``,
        which this run wrote: load only folders you trust)."""
        if self.pipeline_result is not None:
            return self.pipeline_result.model
        import torch

        return torch.load(self._saved("pykeen/trained_model.pkl"), weights_only=False)

    @property
    def training(self) -> CoreTriplesFactory:
        """The training triples factory (entity and relation labels <-> ids)."""
        if self.pipeline_result is None:
            raise KGEConfigError("a reopened KGE run has no triples factory; train it again")
        return self.pipeline_result.training

    @property
    def losses(self) -> list[float]:
        """Mean training loss per epoch."""
        if self.pipeline_result is None:
            return [float(x) for x in json.loads(self._saved("losses.json").read_text())]
        return [float(x) for x in self.pipeline_result.losses]

    def _saved(self, name: str) -> Path:
        if self.out_dir is None or not (self.out_dir / name).is_file():
            raise FileNotFoundError(f"{self.out_dir}: no saved {name}")
        return self.out_dir / name

    def entity_embeddings(self) -> pd.DataFrame:
        """One row per entity (index: entity label), columns ``dim_0``, ``dim_1``, ...

        Complex-valued embeddings (ComplEx, RotatE) give the real parts then the imaginary parts,
        so they have twice the configured dimension.
        """
        if self.pipeline_result is None:
            return pd.read_parquet(self._saved("entity_embeddings.parquet"))
        return _embedding_frame(
            self.model.entity_representations[0], self.training.entity_id_to_label, "entity"
        )

    def relation_embeddings(self) -> pd.DataFrame:
        """As :meth:`entity_embeddings`, for relations (index: relation label)."""
        return _embedding_frame(
            self.model.relation_representations[0], self.training.relation_id_to_label, "relation"
        )

    def record(self) -> dict[str, Any]:
        return {
            "config": self.config,
            "seed": self.config["seed"],
            "versions": self.versions,
            "stage": self.STAGE,
            **({} if self.stage_config is None else {"stage_config": self.stage_config.to_dict()}),
        }

    def save(self, out_dir: Any = None, *, overwrite: bool = True) -> Path:
        """Write ``config.json`` (config, seed, versions), ``losses.json``,
        ``entity_embeddings.parquet``, PyKEEN's own ``save_to_directory`` output under
        ``pykeen/`` and ``metrics.json`` (last); an earlier run in the folder is replaced as a
        whole once the new one is complete.  ``out_dir``: a folder or a
        :class:`~kgwb.rundir.RunDir` (its ``kge/<model>`` folder).  Returns the folder."""
        from kgwb.atomic import output_dir, write_json, write_with

        target = out_dir if out_dir is not None else self.out_dir
        if target is None:
            raise KGEConfigError("no output folder given")
        if hasattr(target, "folder_of"):  # a RunDir: its kge/<model> folder
            target = target.folder_of(self.STAGE, self.stage_config)
        target = Path(target)
        with output_dir(
            target, kind="KG embedding run", overwrite=overwrite, manifests=("metrics.json",)
        ) as work:
            write_json(work / self.RECORD, self.record())
            write_json(work / "losses.json", self.losses)
            embeddings = self.entity_embeddings()
            write_with(work / "entity_embeddings.parquet", embeddings.to_parquet)
            with _quiet_pykeen():
                self.pipeline_result.save_to_directory(work / "pykeen")
            write_json(work / "metrics.json", self.metrics)
        self.out_dir = target
        return target

    @classmethod
    def load(cls, run: Any) -> KGEResult:
        """A saved run (its metrics, config, losses and embeddings; the model on demand)."""
        folder = Path(run)  # RunDir.get_or_build passes the stage's folder
        record = cls.read_record(folder)
        stage_config = record.get(cls.CONFIG_KEY)
        return cls(
            metrics=json.loads((folder / "metrics.json").read_text()),
            config=record["config"],
            stage_config=None if stage_config is None else KGEConfig.from_dict(stage_config),
            environment=record.get("versions", {}),
            out_dir=folder,
        )


def _embedding_frame(representation: Any, id_to_label: dict[int, str], kind: str) -> pd.DataFrame:
    import torch

    with torch.no_grad():
        x = representation(indices=None).detach().cpu()
    if x.is_complex():
        x = torch.cat([x.real, x.imag], dim=-1)
    x = x.reshape(x.shape[0], -1).numpy()
    labels = pd.Index([id_to_label[i] for i in range(x.shape[0])], name=kind)
    return pd.DataFrame(x, index=labels, columns=[f"dim_{i}" for i in range(x.shape[1])])


# --------------------------------------------------------------------------------------------
# inputs


def read_triples_file(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read a text file of triples: ``head<TAB>relation<TAB>tail`` per line (whitespace-separated
    when a line has no tab).  Blank lines and ``#`` comments are skipped, as is a first line
    ``head relation tail``.  A line with another number of fields raises a :class:`DataError`
    naming the file and line."""
    p = Path(path)
    rows: list[list[str]] = []
    first_data_line = True
    with p.open(encoding="utf-8") as f:
        for lineno, raw in enumerate(f, start=1):
            text = raw.rstrip("\r\n")
            if not text.strip() or text.lstrip().startswith("#"):
                continue
            fields = [x.strip() for x in (text.split("\t") if "\t" in text else text.split())]
            if len(fields) != 3:
                raise DataError(
                    f"found {len(fields)} field(s)",
                    file=p,
                    line=lineno,
                    expected="3 fields, head relation tail, separated by tabs (or whitespace)",
                )
            if first_data_line and [x.lower() for x in fields] == list(TRIPLE_COLUMNS):
                first_data_line = False
                continue
            first_data_line = False
            empty = [name for name, x in zip(TRIPLE_COLUMNS, fields) if not x]
            if empty:
                raise DataError(
                    f"empty {empty[0]}", file=p, line=lineno, column=empty[0], expected="a label"
                )
            rows.append(fields)
    if not rows:
        raise DataError("no triples in file", file=p, expected="head relation tail lines")
    return pd.DataFrame(rows, columns=list(TRIPLE_COLUMNS), dtype="string")


def _triples_frame(df: pd.DataFrame, what: str) -> pd.DataFrame:
    missing = [c for c in TRIPLE_COLUMNS if c not in df.columns]
    if missing:
        raise DataError(
            f"{what} lacks column(s) {missing}", expected=f"columns {list(TRIPLE_COLUMNS)}"
        )
    out = df[list(TRIPLE_COLUMNS)]
    null = out.isna().any(axis=1)
    if null.any():
        row = int(null.to_numpy().nonzero()[0][0])
        column = next(c for c in TRIPLE_COLUMNS if pd.isna(out[c].iloc[row]))
        raise DataError(
            f"{what}: missing {column}",
            line=row + 1,
            row_kind="row",
            column=column,
            expected="a label",
        )
    return out.astype("string").drop_duplicates().reset_index(drop=True)


def load_triples(
    triples: Any, *, sources: tuple[str, ...] | None = None
) -> tuple[pd.DataFrame | None, str | None, str]:
    """Resolve ``triples`` (see the module docstring) to ``(frame, bundled_name, description)``:
    a deduplicated head/relation/tail frame, or the key of a bundled PyKEEN dataset."""
    from kgwb.data.schema import Dataset
    from kgwb.kg.model import KnowledgeGraph

    if isinstance(triples, KnowledgeGraph):
        return (
            _triples_frame(triples.triples(sources=sources), "knowledge graph"),
            None,
            "KnowledgeGraph",
        )
    if isinstance(triples, Dataset):
        if triples.kg is None or not len(triples.kg):
            raise DataError(f"dataset {triples.name!r} has no kg triples")
        return (
            _triples_frame(triples.kg, f"dataset {triples.name!r} kg"),
            None,
            f"Dataset:{triples.name}",
        )
    if isinstance(triples, pd.DataFrame):
        return _triples_frame(triples, "triples table"), None, "DataFrame"
    if not isinstance(triples, (str, os.PathLike)):
        raise TypeError(
            "triples must be a KnowledgeGraph, Dataset, DataFrame, path or bundled dataset name, "
            f"not {type(triples).__name__}"
        )
    p = Path(triples).expanduser()
    if not p.exists():
        key = str(triples).lower()
        if key in BUNDLED_DATASETS:
            return None, key, f"pykeen:{key}"
        raise DataError(
            "no such file or folder, and not a bundled dataset name",
            file=p,
            expected=f"a triples file, a kgwb KG/dataset folder, or one of {', '.join(BUNDLED_DATASETS)}",
        )
    if p.is_dir():
        if (p / "kg" / "kg.json").is_file() and not (p / "kg.json").is_file():
            p = p / "kg"  # a `kgwb kg build --out DIR` folder: its graph is DIR/kg
        if (p / "kg.json").is_file():
            frame = KnowledgeGraph.load(p).triples(sources=sources)
            return _triples_frame(frame, f"knowledge graph {p}"), None, str(p)
        if (p / "dataset.json").is_file():
            return load_triples(Dataset.load(p))[0], None, str(p)
        if (p / "kg_final.txt").is_file():
            return read_triples_file(p / "kg_final.txt"), None, str(p / "kg_final.txt")
        raise DataError(
            "folder holds no triples",
            file=p,
            expected="kg.json or kg/kg.json (kgwb KG), dataset.json (kgwb dataset) or "
            "kg_final.txt (KGAT)",
        )
    return read_triples_file(p), None, str(p)


def _split_factories(
    frame: pd.DataFrame, *, validation: float, test: float, seed: int
) -> tuple[CoreTriplesFactory, CoreTriplesFactory | None, CoreTriplesFactory]:
    from pykeen.triples import TriplesFactory

    factory = TriplesFactory.from_labeled_triples(frame.to_numpy(dtype=str))
    if validation > 0:
        ratios = [1.0 - validation - test, validation, test]
        train, valid, testing = factory.split(ratios, random_state=seed)
    else:
        train, testing = factory.split([1.0 - test, test], random_state=seed)
        valid = None
    for name, part in (("test", testing), ("validation", valid)):
        if part is not None and part.num_triples == 0:
            raise DataError(
                f"{len(frame)} triples leave an empty {name} split once every entity is kept in train",
                expected="more triples, or a larger test/validation fraction",
            )
    return train, valid, testing


def reverse_in_train(train: CoreTriplesFactory, part: CoreTriplesFactory) -> Any:
    """A boolean tensor over ``part``'s triples: True where train holds the reverse pair, i.e. some
    ``(tail, r', head)`` for the triple ``(head, r, tail)`` (any relation ``r'``).

    Such a test triple is answered by memorising its mirror image in train (FB15k's known flaw:
    Toutanova & Chen, 2015), so a random split of a graph with symmetric relations such as
    ``also_viewed`` flatters every model.  ``part`` must share ``train``'s entity ids, as the
    factories of one split do.
    """
    import numpy as np
    import torch

    n = int(train.num_entities)
    tr = train.mapped_triples.numpy().astype(np.int64)
    pt = part.mapped_triples.numpy().astype(np.int64)
    forward = np.unique(tr[:, 0] * n + tr[:, 2])
    reverse = pt[:, 2] * n + pt[:, 0]
    return torch.from_numpy(np.isin(reverse, forward))


# --------------------------------------------------------------------------------------------
# entry point


@functools.cache
def kge_models() -> Registry:
    """Every model of PyKEEN's resolver (``pykeen.models.model_resolver``) by its normalised
    name (``transe``, ``rotate``, ``nodepiece``, ...) -> class; :data:`MODELS` are the ones
    kgwb's tests and benchmarks cover."""
    from pykeen.models import model_resolver

    return Registry("model", dict(model_resolver.lookup_dict))


def train_kge(
    config: KGEConfig | None = None,
    *,
    triples: Any,
    out_dir: str | os.PathLike[str] | None = None,
    progress: bool | None = None,
    **params: Any,
) -> KGEResult:
    """Train a KG embedding model with PyKEEN and evaluate it on held-out triples.

    ``config`` (:class:`~kgwb.train.config.KGEConfig`; the keyword form
    ``train_kge(triples=..., model="rotate", epochs=50)`` builds it from ``params``): ``model``
    is any model of PyKEEN's resolver (:func:`kge_models`; :data:`MODELS` are the tested ones)
    with extra ``model_kwargs``; ``dim`` the embedding dimension (complex dimensions for
    ComplEx/RotatE); ``negatives`` the negatives sampled per positive (sLCWA); ``sources``
    restricts a KnowledgeGraph to edges of those sources.  ``validation``/``test`` are the split
    fractions (ignored for bundled datasets).  ``early_stopping`` watches validation MRR
    (:data:`EARLY_STOPPING`) and needs ``validation > 0``.  Metrics are PyKEEN's filtered
    rank-based ones on the test split: MRR and Hits@k over head and tail prediction, realistic
    ranks, filtering known train/valid/test triples.  The metrics also count the test triples
    whose reverse pair is in train (``test_reverse_in_train``, see :func:`reverse_in_train`);
    ``drop_reverse_leaks`` removes those from the test and validation splits before training, as
    FB15k-237 did for FB15k.  ``progress`` shows tqdm bars (default: unless ``TQDM_DISABLE`` is
    set).  With ``out_dir`` the result is saved there.
    """
    if config is None:
        config = KGEConfig(**params)
    elif params:
        config = config.replace(**params)
    resolved = resolve_device(config.device)
    if progress is None:
        progress = os.environ.get("TQDM_DISABLE", "").lower() not in ("1", "true", "yes")
    splits = _splits(config, triples)
    use_stopper = bool(config.early_stopping) and splits.valid is not None
    # evaluation scores a batch of queries against every entity, and translational models build
    # a (batch, entities, dim) tensor on the way: keep that near 2**26 floats (256 MB)
    n = splits.train.num_entities
    eval_batch = int(max(1, min(1024, 2**26 // max(n * 2 * int(config.dim), 1))))
    description = _description(config, splits, resolved, use_stopper)
    kwargs = _pipeline_kwargs(config, splits, resolved, progress, eval_batch)
    result, wall_seconds = _run_pipeline(kwargs, use_stopper, eval_batch)
    metrics = _metrics(config, result, splits, resolved, use_stopper)
    metrics["wall_seconds"] = round(wall_seconds, 3)
    out = KGEResult(
        metrics=metrics, config=description, pipeline_result=result, stage_config=config
    )
    if out_dir is not None:
        out.save(out_dir)
    return out


@dataclass
class _Splits:
    """The train/validation/test factories of a run and how they were made."""

    train: Any
    valid: Any
    test: Any
    split: str
    description: str
    bundled: str | None
    leaks: dict[str, Any]
    dropped: list[Any]  # still true triples: kept in the evaluation's filter

    @property
    def num_triples(self) -> int:
        valid = self.valid.num_triples if self.valid is not None else 0
        return int(self.train.num_triples + valid + self.test.num_triples)


def _splits(config: KGEConfig, triples: Any) -> _Splits:
    """Load ``triples``, split them (or take a bundled dataset's split) and, with
    ``drop_reverse_leaks``, drop the held-out triples whose reverse pair is in train."""
    frame, bundled, description = load_triples(triples, sources=config.sources)
    if bundled is not None:
        from pykeen.datasets import get_dataset

        ds = get_dataset(dataset=BUNDLED_DATASETS[bundled])
        train_tf, valid_tf, test_tf = ds.training, ds.validation, ds.testing
        split = f"pykeen:{bundled}"
    else:
        assert frame is not None
        validation, test = config.validation, config.test
        train_tf, valid_tf, test_tf = _split_factories(
            frame, validation=validation, test=test, seed=config.seed
        )
        split = f"random {1 - validation - test:g}/{validation:g}/{test:g} seed {config.seed}"
    leaks = reverse_in_train(train_tf, test_tf)
    out = _Splits(train_tf, valid_tf, test_tf, split, description, bundled, {}, [])
    out.leaks = {"test_reverse_in_train": int(leaks.sum()), "test_before_drop": None}
    if config.drop_reverse_leaks:
        _drop_reverse_leaks(out, leaks)
    if config.max_eval_triples is not None:
        _cap_evaluation(out, int(config.max_eval_triples), int(config.seed))
    return out


def _cap_evaluation(splits: _Splits, cap: int, seed: int) -> None:
    """Keep a seeded sample of at most ``cap`` test and ``cap`` validation triples; the others
    stay true triples in the evaluation's filter (``splits.dropped``)."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    for name in ("test", "valid"):
        part = getattr(splits, name)
        if part is None or part.num_triples <= cap:
            continue
        order = torch.randperm(part.num_triples, generator=generator)
        splits.dropped.append(part.mapped_triples[order[cap:]])
        setattr(splits, name, part.clone_and_exchange_triples(part.mapped_triples[order[:cap]]))
    splits.leaks["eval_capped_at"] = cap


def _drop_reverse_leaks(splits: _Splits, leaks: Any) -> None:
    test_tf, valid_tf = splits.test, splits.valid
    splits.leaks["test_before_drop"] = int(test_tf.num_triples)
    if bool(leaks.all()):
        raise DataError(
            f"every one of the {test_tf.num_triples} test triples has its reverse in train",
            expected="a graph with some non-mirrored test triples, or drop_reverse_leaks=False",
        )
    splits.dropped.append(test_tf.mapped_triples[leaks])
    splits.test = test_tf.clone_and_exchange_triples(test_tf.mapped_triples[~leaks])
    if valid_tf is not None:
        valid_leaks = reverse_in_train(splits.train, valid_tf)
        if not bool(valid_leaks.all()):
            splits.dropped.append(valid_tf.mapped_triples[valid_leaks])
            splits.valid = valid_tf.clone_and_exchange_triples(
                valid_tf.mapped_triples[~valid_leaks]
            )


def _description(config: KGEConfig, splits: _Splits, resolved: str, use_stopper: bool) -> dict:
    """The run as trained (``config.json``'s ``config``)."""
    bundled = splits.bundled
    return {
        "triples": splits.description,
        "sources": list(config.sources) if config.sources is not None else None,
        "model": config.key,
        **({"model_kwargs": config.model_kwargs} if config.model_kwargs else {}),
        "dim": int(config.dim),
        "epochs": int(config.epochs),
        "lr": float(config.lr),
        "batch_size": int(config.batch_size),
        "negatives": int(config.negatives),
        "seed": int(config.seed),
        "device": config.device,
        "resolved_device": resolved,
        "split": splits.split,
        "validation": config.validation if bundled is None else None,
        "test": config.test if bundled is None else None,
        "early_stopping": {**EARLY_STOPPING} if use_stopper else False,
        "evaluation": "pykeen rank-based, filtered (train+valid+test), both sides, realistic",
        "drop_reverse_leaks": bool(config.drop_reverse_leaks),
        "max_eval_triples": config.max_eval_triples,
    }


def _model_kwargs(config: KGEConfig) -> dict[str, Any]:
    """``embedding_dim`` (for the models that take one) and the config's ``model_kwargs``."""
    import inspect

    cls = MODELS.get(config.key) or kge_models().get(config.key)
    if not isinstance(cls, str):
        params = inspect.signature(cls.__init__).parameters
        if "embedding_dim" not in params and not any(
            p.kind is p.VAR_KEYWORD for p in params.values()
        ):
            return dict(config.model_kwargs)
    return {"embedding_dim": int(config.dim), **config.model_kwargs}


def _pipeline_kwargs(config: KGEConfig, splits: _Splits, resolved: str, progress, eval_batch):
    """The arguments of :func:`pykeen.pipeline.pipeline` (sLCWA, Adam, filtered evaluation)."""
    import torch

    return {
        "training": splits.train,
        "validation": splits.valid,
        "testing": splits.test,
        "model": MODELS.get(config.key, config.key),
        "model_kwargs": _model_kwargs(config),
        "optimizer": "adam",
        "optimizer_kwargs": {"lr": float(config.lr)},
        "training_loop": "slcwa",
        "negative_sampler": "basic",
        "negative_sampler_kwargs": {"num_negs_per_pos": int(config.negatives)},
        "epochs": int(config.epochs),
        "training_kwargs": {
            "batch_size": int(config.batch_size),
            "use_tqdm": progress,
            "pin_memory": resolved != "cpu",
        },
        "evaluator": "rankbased",
        "evaluator_kwargs": {"filtered": True},
        "evaluation_kwargs": {
            "batch_size": eval_batch,
            "use_tqdm": progress,
            **({"additional_filter_triples": splits.dropped} if splits.dropped else {}),
        },
        "random_seed": int(config.seed),
        "device": torch.device(resolved),
        "use_tqdm": progress,
    }


def _run_pipeline(kwargs: dict[str, Any], use_stopper: bool, eval_batch: int):
    """PyKEEN's pipeline, quiet, its checkpoints in a scratch folder; ``(result, seconds)``."""
    from pykeen.pipeline import pipeline

    with tempfile.TemporaryDirectory(prefix="kgwb-kge-") as scratch, warnings.catch_warnings():
        # PyKEEN's loaders ask for pinned memory even where there is no accelerator
        warnings.filterwarnings("ignore", message=".*'pin_memory' argument is set as true")
        warnings.filterwarnings("ignore", message="Training instances are always shuffled")
        if use_stopper:
            kwargs["stopper"] = "early"
            kwargs["stopper_kwargs"] = {
                **EARLY_STOPPING,
                "evaluation_batch_size": eval_batch,
                # keep PyKEEN's best-weights checkpoint out of ~/.data/pykeen
                "best_model_path": Path(scratch) / "best-model-weights.pt",
            }
        # PyKEEN runs gc.collect() after every epoch; with torch, scipy and sympy imported that
        # walks ~450k long-lived objects (~0.5 s per epoch).  Freezing them skips that walk.
        gc.freeze()
        started = time.perf_counter()
        # PyKEEN's INFO/WARNING records (checkpoint paths in the scratch folder, CPU batch-size
        # and memory-utilisation notes) are noise in notebooks and logs: only errors pass.
        try:
            with _quiet_pykeen():
                result = pipeline(**kwargs)
        finally:
            wall_seconds = time.perf_counter() - started
            gc.unfreeze()
    return result, wall_seconds


def _metrics(config: KGEConfig, result, splits: _Splits, resolved: str, use_stopper: bool):
    metrics: dict[str, Any] = {k: float(result.get_metric(v)) for k, v in METRICS.items()}
    stopper = result.stopper
    metrics.update(
        {
            "train_seconds": round(float(result.train_seconds), 3),
            "evaluate_seconds": round(float(result.evaluate_seconds), 3),
            "wall_seconds": None,
            "epochs": len(result.losses),
            "stopped_early": bool(getattr(stopper, "stopped", False)),
            "best_epoch": getattr(stopper, "best_epoch", None) if use_stopper else None,
            "final_loss": float(result.losses[-1]) if result.losses else None,
            "model": config.key,
            "seed": int(config.seed),
            "device": resolved,
            "num_entities": int(splits.train.num_entities),
            "num_relations": int(splits.train.num_relations),
            "num_triples": splits.num_triples,
            "num_train": int(splits.train.num_triples),
            "num_valid": int(splits.valid.num_triples) if splits.valid is not None else 0,
            "num_test": int(splits.test.num_triples),
            **splits.leaks,
        }
    )
    return metrics


def build_stage(config: KGEConfig, run: Any) -> KGEResult:
    """The ``kge`` stage of a :class:`~kgwb.rundir.RunDir`: embeds the run's built KG
    (``run.kg``), or else the triples of its saved dataset (``run.dataset``)."""
    triples = run.kg if (run.kg / "kg.json").is_file() else run.dataset
    return train_kge(config, triples=triples)
