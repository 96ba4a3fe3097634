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
import gc
import logging
import os
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from kgwb.device import resolve_device
from kgwb.errors import DataError, KgwbError, UnknownNameError
from kgwb.runinfo import environment_info

if TYPE_CHECKING:  # pragma: no cover
    from pykeen.pipeline import PipelineResult
    from pykeen.triples import CoreTriplesFactory

#: kgwb model name -> PyKEEN model class name
MODELS: dict[str, str] = {
    "transe": "TransE",
    "distmult": "DistMult",
    "complex": "ComplEx",
    "rotate": "RotatE",
}

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


class KGEConfigError(KgwbError, ValueError):
    """A training setting out of range (the message names it and what it must be)."""


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


@dataclass
class KGEResult:
    """Outcome of :func:`train_kge`: metrics, the configuration and PyKEEN's pipeline result."""

    metrics: dict[str, Any]
    config: dict[str, Any]
    pipeline_result: PipelineResult = field(repr=False)
    versions: dict[str, str] = field(default_factory=environment_info)
    out_dir: Path | None = None

    @property
    def model(self) -> Any:
        """The trained PyKEEN model."""
        return self.pipeline_result.model

    @property
    def training(self) -> CoreTriplesFactory:
        """The training triples factory (entity and relation labels <-> ids)."""
        return self.pipeline_result.training

    @property
    def losses(self) -> list[float]:
        """Mean training loss per epoch."""
        return [float(x) for x in self.pipeline_result.losses]

    def entity_embeddings(self) -> pd.DataFrame:
        """One row per entity (index: entity label), columns ``dim_0``, ``dim_1``, ...

        Complex-valued embeddings (ComplEx, RotatE) give the real parts then the imaginary parts,
        so they have twice the configured dimension.
        """
        return _embedding_frame(
            self.model.entity_representations[0], self.training.entity_id_to_label, "entity"
        )

    def relation_embeddings(self) -> pd.DataFrame:
        """As :meth:`entity_embeddings`, for relations (index: relation label)."""
        return _embedding_frame(
            self.model.relation_representations[0], self.training.relation_id_to_label, "relation"
        )

    def save(
        self, out_dir: str | os.PathLike[str] | None = None, *, overwrite: bool = True
    ) -> Path:
        """Write ``config.json`` (config, seed, versions), ``losses.json``,
        ``entity_embeddings.parquet``, PyKEEN's own ``save_to_directory`` output under
        ``pykeen/`` and ``metrics.json`` (last); an earlier run in the folder is replaced as a
        whole once the new one is complete.  Returns the folder."""
        from kgwb.atomic import output_dir, write_with

        target = Path(out_dir) if out_dir is not None else self.out_dir
        if target is None:
            raise KGEConfigError("no output folder given")
        with output_dir(
            target, kind="KG embedding run", overwrite=overwrite, manifests=("metrics.json",)
        ) as work:
            _write_json(
                work / "config.json",
                {"config": self.config, "seed": self.config["seed"], "versions": self.versions},
            )
            _write_json(work / "losses.json", self.losses)
            embeddings = self.entity_embeddings()
            write_with(work / "entity_embeddings.parquet", embeddings.to_parquet)
            with _quiet_pykeen():
                self.pipeline_result.save_to_directory(work / "pykeen")
            _write_json(work / "metrics.json", self.metrics)
        self.out_dir = target
        return target


def _write_json(path: Path, obj: Any) -> None:
    from kgwb.atomic import write_json

    write_json(path, obj)


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


def train_kge(
    *,
    triples: Any,
    model: str = "transe",
    dim: int = 64,
    epochs: int = 100,
    lr: float = 0.01,
    batch_size: int = 256,
    negatives: int = 4,
    seed: int = 0,
    device: str = "auto",
    out_dir: str | os.PathLike[str] | None = None,
    validation: float = 0.1,
    test: float = 0.1,
    early_stopping: bool = True,
    sources: tuple[str, ...] | None = None,
    drop_reverse_leaks: bool = False,
    progress: bool | None = None,
) -> KGEResult:
    """Train a KG embedding model with PyKEEN and evaluate it on held-out triples.

    ``model`` is one of :data:`MODELS`; ``dim`` the embedding dimension (complex dimensions for
    ComplEx/RotatE); ``negatives`` the negatives sampled per positive (sLCWA); ``sources``
    restricts a KnowledgeGraph to edges of those sources.  ``validation``/``test`` are the split
    fractions (ignored for bundled datasets).  ``early_stopping`` watches validation MRR
    (:data:`EARLY_STOPPING`) and needs ``validation > 0``.  Metrics are PyKEEN's filtered
    rank-based ones on the test split: MRR and Hits@k over head and tail prediction, realistic
    ranks, filtering known train/valid/test triples.  The metrics also count the test triples whose
    reverse pair is in train (``test_reverse_in_train``, see :func:`reverse_in_train`);
    ``drop_reverse_leaks`` removes those from the test and validation splits before training, as
    FB15k-237 did for FB15k.  ``progress`` shows tqdm bars (default: unless ``TQDM_DISABLE`` is
    set).  With ``out_dir`` the result is saved there.
    """
    key = str(model).lower()
    if key not in MODELS:
        raise UnknownNameError("model", model, list(MODELS))
    for name, value in (
        ("dim", dim),
        ("epochs", epochs),
        ("batch_size", batch_size),
        ("negatives", negatives),
    ):
        if int(value) < 1:
            raise KGEConfigError(f"{name} must be at least 1, not {value}")
    if not 0 <= validation < 1 or not 0 < test < 1 or validation + test >= 1:
        raise KGEConfigError(
            "split fractions need 0 <= validation, 0 < test and validation + test < 1 "
            f"(got validation={validation}, test={test})"
        )
    resolved = resolve_device(device)
    if progress is None:
        progress = os.environ.get("TQDM_DISABLE", "").lower() not in ("1", "true", "yes")

    frame, bundled, description = load_triples(triples, sources=sources)

    import torch
    from pykeen.pipeline import pipeline

    if bundled is not None:
        from pykeen.datasets import get_dataset

        ds = get_dataset(dataset=BUNDLED_DATASETS[bundled])
        train_tf, valid_tf, test_tf = ds.training, ds.validation, ds.testing
        split = f"pykeen:{bundled}"
    else:
        assert frame is not None
        train_tf, valid_tf, test_tf = _split_factories(
            frame, validation=validation, test=test, seed=seed
        )
        split = f"random {1 - validation - test:g}/{validation:g}/{test:g} seed {seed}"

    leaks = reverse_in_train(train_tf, test_tf)
    leak_counts = {"test_reverse_in_train": int(leaks.sum()), "test_before_drop": None}
    dropped = []  # still true triples: kept in the evaluation's filter
    if drop_reverse_leaks:
        leak_counts["test_before_drop"] = int(test_tf.num_triples)
        if bool(leaks.all()):
            raise DataError(
                f"every one of the {test_tf.num_triples} test triples has its reverse in train",
                expected="a graph with some non-mirrored test triples, or drop_reverse_leaks=False",
            )
        dropped.append(test_tf.mapped_triples[leaks])
        test_tf = test_tf.clone_and_exchange_triples(test_tf.mapped_triples[~leaks])
        if valid_tf is not None:
            valid_leaks = reverse_in_train(train_tf, valid_tf)
            if not bool(valid_leaks.all()):
                dropped.append(valid_tf.mapped_triples[valid_leaks])
                valid_tf = valid_tf.clone_and_exchange_triples(
                    valid_tf.mapped_triples[~valid_leaks]
                )

    use_stopper = bool(early_stopping) and valid_tf is not None
    num_entities = train_tf.num_entities
    # evaluation scores a batch of queries against every entity, and translational models build
    # a (batch, entities, dim) tensor on the way: keep that near 2**26 floats (256 MB)
    eval_batch = int(max(1, min(1024, 2**26 // max(num_entities * 2 * int(dim), 1))))

    config: dict[str, Any] = {
        "triples": description,
        "sources": list(sources) if sources is not None else None,
        "model": key,
        "dim": int(dim),
        "epochs": int(epochs),
        "lr": float(lr),
        "batch_size": int(batch_size),
        "negatives": int(negatives),
        "seed": int(seed),
        "device": device,
        "resolved_device": resolved,
        "split": split,
        "validation": validation if bundled is None else None,
        "test": test if bundled is None else None,
        "early_stopping": {**EARLY_STOPPING} if use_stopper else False,
        "evaluation": "pykeen rank-based, filtered (train+valid+test), both sides, realistic",
        "drop_reverse_leaks": bool(drop_reverse_leaks),
    }

    pipeline_kwargs: dict[str, Any] = {
        "training": train_tf,
        "validation": valid_tf,
        "testing": test_tf,
        "model": MODELS[key],
        "model_kwargs": {"embedding_dim": int(dim)},
        "optimizer": "adam",
        "optimizer_kwargs": {"lr": float(lr)},
        "training_loop": "slcwa",
        "negative_sampler": "basic",
        "negative_sampler_kwargs": {"num_negs_per_pos": int(negatives)},
        "epochs": int(epochs),
        "training_kwargs": {
            "batch_size": int(batch_size),
            "use_tqdm": progress,
            "pin_memory": resolved != "cpu",
        },
        "evaluator": "rankbased",
        "evaluator_kwargs": {"filtered": True},
        "evaluation_kwargs": {
            "batch_size": eval_batch,
            "use_tqdm": progress,
            **({"additional_filter_triples": dropped} if dropped else {}),
        },
        "random_seed": int(seed),
        "device": torch.device(resolved),
        "use_tqdm": progress,
    }
    with tempfile.TemporaryDirectory(prefix="kgwb-kge-") as scratch, warnings.catch_warnings():
        # PyKEEN's loaders ask for pinned memory even where there is no accelerator
        warnings.filterwarnings("ignore", message=".*'pin_memory' argument is set as true")
        warnings.filterwarnings("ignore", message="Training instances are always shuffled")
        if use_stopper:
            pipeline_kwargs["stopper"] = "early"
            pipeline_kwargs["stopper_kwargs"] = {
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
                result = pipeline(**pipeline_kwargs)
        finally:
            wall_seconds = time.perf_counter() - started
            gc.unfreeze()

    metrics: dict[str, Any] = {k: float(result.get_metric(v)) for k, v in METRICS.items()}
    stopper = result.stopper
    metrics.update(
        {
            "train_seconds": round(float(result.train_seconds), 3),
            "evaluate_seconds": round(float(result.evaluate_seconds), 3),
            "wall_seconds": round(wall_seconds, 3),
            "epochs": len(result.losses),
            "stopped_early": bool(getattr(stopper, "stopped", False)),
            "best_epoch": getattr(stopper, "best_epoch", None) if use_stopper else None,
            "final_loss": float(result.losses[-1]) if result.losses else None,
            "model": key,
            "seed": int(seed),
            "device": resolved,
            "num_entities": int(num_entities),
            "num_relations": int(train_tf.num_relations),
            "num_triples": int(
                train_tf.num_triples
                + (valid_tf.num_triples if valid_tf is not None else 0)
                + test_tf.num_triples
            ),
            "num_train": int(train_tf.num_triples),
            "num_valid": int(valid_tf.num_triples) if valid_tf is not None else 0,
            "num_test": int(test_tf.num_triples),
            **leak_counts,
        }
    )
    out = KGEResult(metrics=metrics, config=config, pipeline_result=result)
    if out_dir is not None:
        out.save(out_dir)
    return out
