"""Stage 3 entry point for recommenders: :func:`train_recommender` trains the model that a
:class:`RecommenderConfig` names and evaluates it by full ranking; :class:`RecommenderResult`
saves metrics and recommends.

Training (:mod:`kgwb.train.trainer`: a :class:`~kgwb.train.trainer.Trainer` and its callbacks):
BPR loss with one uniform negative per positive (sampled on the device, resampled where it hits
a train positive of the user), Adam, L2 on the batch's ego embeddings; early stopping on valid
Recall@20 with ``patience`` evaluations (a model with ``mix_scorers``, i.e. ``kgat``, also picks
at each validation how much of its KG tower to mix into its LightGCN backbone, see
:class:`~kgwb.train.models.KGAT`); the best weights are kept (and, with ``out_dir``, written as
``checkpoints/best.safetensors``).  With ``out_dir`` each epoch also writes
``checkpoints/last.safetensors`` + optimizer + ``train_state.json`` so that ``resume=True``
continues where a run stopped, and gives the numbers an uninterrupted run gives (each epoch's
shuffling and negatives come from a generator seeded with ``(seed, epoch)``).  The folder also
keeps what the model was built from (``checkpoints/inputs.safetensors``: the splits as index
pairs, the KG triples, the text features; ``users.parquet``/``items.parquet``/
``entities.parquet``: the ids; ``model.json``: name and sizes), so :func:`load_recommender`
rebuilds the trained model from the folder alone, without the dataset.

Logging: one log line per epoch (``logging``), a tqdm bar over epochs (``progress=False`` or
``TQDM_DISABLE=1`` silences it) and, with ``out_dir`` and the optional ``tensorboard`` package
installed, TensorBoard scalars under ``out_dir/tensorboard`` (skipped without the package).

Device: resolved once (``auto`` → CUDA when available); data and graph are moved once.  On CUDA
the forward pass runs under autocast (bf16 where supported, else fp16 with a gradient scaler);
on CPU everything is float32 and, with the same seed, bit-for-bit repeatable.
"""

from __future__ import annotations

import logging
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from kgwb.atomic import output_dir, write_json, write_with
from kgwb.data.schema import Dataset
from kgwb.device import resolve_device
from kgwb.errors import ConfigError, DataError
from kgwb.stage import StageResult
from kgwb.train.config import RecommenderConfig
from kgwb.train.data import (
    CollabKG,
    InteractionData,
    build_collab_kg,
    prepare_interactions,
)
from kgwb.train.distributed import DistContext
from kgwb.train.registry import RECOMMENDERS, TEXT_SUFFIX
from kgwb.train.sampler import sampled_training
from kgwb.train.sparse_optim import optimizer_name, sampled_optimizer
from kgwb.train.trainer import (  # noqa: F401  (older names, used by benchmarks)
    REPORTED_METRICS,
    Callback,
    Checkpoint,
    CheckpointError,
    EarlyStopping,
    Evaluator,
    NegativeSampler,
    Progress,
    TensorBoard,
    Trainer,
    TrainStep,
    Validation,
    adam,
    json_safe,
    load_weights,
    progress_enabled,
    read_json,
    save_weights,
    state_path,
)

log = logging.getLogger(__name__)

_adam, _NegativeSampler, _TrainStep, _json_safe = adam, NegativeSampler, TrainStep, json_safe
_state_path, _save_weights, _load_weights, _read_json = state_path, save_weights, load_weights, read_json

CHECKPOINT_DIR = "checkpoints"
#: files that mark a folder as a training run (older runs carry no kgwb marker)
RUN_MANIFESTS = ("metrics.json", CHECKPOINT_DIR)


def seed_everything(seed: int) -> None:
    import random

    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def peak_memory_mb(device) -> float:
    """CUDA: max allocated since the last reset; CPU: the process's peak resident set size."""
    import torch

    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    try:
        import resource
    except ImportError:  # Windows: the current RSS is the best available
        import psutil

        return psutil.Process().memory_info().rss / 2**20
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 2**20 if sys.platform == "darwin" else rss / 1024


def item_title_features(
    dataset: Dataset, data: InteractionData, **embed_options: Any
) -> np.ndarray:
    """Title embeddings (``kgwb.text.embed.embed_texts``) in the item order of ``data``."""
    if "title" not in dataset.items.columns:
        raise DataError(
            f"dataset {dataset.name!r} has no item titles to embed",
            column="title",
            expected="an items table with a title column, or pass text_features=",
        )
    from kgwb.text.embed import embed_texts

    titles = dataset.items.drop_duplicates("item_id").set_index(
        dataset.items["item_id"].drop_duplicates().astype("string").astype(object)
    )["title"]
    aligned = titles.reindex(data.item_ids).astype("string").fillna("")
    return embed_texts(aligned.tolist(), **embed_options)


@dataclass(kw_only=True)
class RecommenderResult(StageResult):
    """A trained recommender with its evaluation; :meth:`save` writes ``metrics.json``.

    ``config`` describes the run as trained (sizes, KG and text statistics, sampler, world
    size: what ``metrics.json`` has always called ``config``); ``stage_config`` is the
    :class:`RecommenderConfig` it was asked for (``RunDir.get_or_build("train", ...)``
    compares it)."""

    STAGE: ClassVar[str] = "train"
    RECORD: ClassVar[str] = "metrics.json"
    CONFIG_KEY: ClassVar[str] = "stage_config"

    model: Any
    data: InteractionData
    model_name: str
    valid: dict[str, float]
    test: dict[str, float]
    best_epoch: int
    epochs_run: int
    curve: list[dict[str, Any]]
    seconds_per_epoch: float
    eval_seconds: float
    peak_memory_mb: float
    device: str
    seed: int
    config: dict[str, Any]
    stats: dict[str, Any]
    checkpoint: Path | None = None
    out_dir: Path | None = None
    #: test metrics restricted to warm / cold items' positives (see :func:`warm_cold_split`)
    test_warm: dict[str, float] = field(default_factory=dict)
    test_cold: dict[str, float] = field(default_factory=dict)
    stage_config: RecommenderConfig | None = None

    @property
    def metrics(self) -> dict[str, Any]:
        """Scalars worth tracking across runs (what ``metrics.json`` holds at its top level)."""
        return {
            "model": self.model_name,
            "valid": self.valid,
            "test": self.test,
            **({"test_warm": self.test_warm} if self.test_warm else {}),
            **({"test_cold": self.test_cold} if self.test_cold else {}),
            "best_epoch": self.best_epoch,
            "epochs_run": self.epochs_run,
            "seconds_per_epoch": round(self.seconds_per_epoch, 4),
            "eval_seconds": round(self.eval_seconds, 4),
            "peak_memory_mb": round(self.peak_memory_mb, 1),
            "device": self.device,
            "seed": self.seed,
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.metrics,
            "config": self.config,
            "data": self.stats,
            "curve": self.curve,
            "checkpoint": None if self.checkpoint is None else str(self.checkpoint),
            "versions": self.versions,
            "stage": self.STAGE,
            **({} if self.stage_config is None else {"stage_config": self.stage_config.to_dict()}),
        }

    def record(self) -> dict[str, Any]:
        return json_safe(self.to_dict())

    def save(self, out_dir: Any = None) -> Path:
        """Write ``metrics.json`` (metrics, config, learning curve, versions) into ``out_dir``
        (a folder, or a :class:`~kgwb.rundir.RunDir`: its ``train/<model>`` folder)."""
        if out_dir is None:
            out_dir = self.out_dir
        if out_dir is None:
            raise ConfigError("no output folder given")
        if hasattr(out_dir, "folder_of"):
            out_dir = out_dir.train(self.model_name)
        target = Path(out_dir)
        write_json(target / self.RECORD, self.record())
        self.out_dir = target
        return target

    @classmethod
    def load(cls, run: Any, *, device: str = "auto") -> RecommenderResult:
        """The trained run in folder ``run`` (see :func:`load_recommender`)."""
        return load_recommender(run, device=device)

    def recommend(
        self, user_ids, k: int = 10, *, exclude: tuple[str, ...] = ("train",)
    ) -> pd.DataFrame:
        """Top-``k`` items per user (``user_id, rank, item_id, score``), never an item of the
        user's ``exclude`` splits (default: train)."""
        import torch

        from kgwb.train.metrics import csr_from_pairs, dense_rows

        users = self.data.user_index(list(user_ids))
        device = torch.device(self.device)
        self.model.eval()
        score = self.model.scorer()
        known = (
            np.concatenate([self.data.split(s) for s in exclude]) if exclude else np.empty((0, 2))
        )
        ptr, idx = csr_from_pairs(
            torch.as_tensor(known, dtype=torch.long, device=device), self.data.n_users
        )
        u = torch.as_tensor(users, device=device)
        with torch.no_grad():
            scores = score(u).float()
            scores = scores.masked_fill(dense_rows(ptr, idx, u, self.data.n_items), float("-inf"))
            top = torch.topk(scores, min(k, self.data.n_items), dim=1)
        items = top.indices.cpu().numpy()
        values = top.values.cpu().numpy()
        keep = np.isfinite(values)
        rows = np.repeat(np.arange(len(users)), items.shape[1])[keep.ravel()]
        return pd.DataFrame(
            {
                "user_id": pd.array(self.data.user_ids[users][rows], dtype="string"),
                "rank": (np.tile(np.arange(1, items.shape[1] + 1), len(users))[keep.ravel()]),
                "item_id": pd.array(
                    self.data.item_ids[items.ravel()[keep.ravel()]], dtype="string"
                ),
                "score": values.ravel()[keep.ravel()].astype(np.float64),
            }
        )

    def recommend_all(self, k: int, chunk: int = 4096) -> pd.DataFrame:
        """The top-``k`` unseen items of every user (what ``kgwb recommend --run`` serves)."""
        users = self.data.user_ids
        parts = [self.recommend(users[i : i + chunk], k=k) for i in range(0, len(users), chunk)]
        return pd.concat(parts, ignore_index=True)


# --------------------------------------------------------------------------- training
def train_recommender(
    config: RecommenderConfig | None = None,
    *,
    dataset: Dataset,
    kg: Any | None = None,
    out_dir: str | Path | None = None,
    text_features: np.ndarray | Any | None = None,
    resume: bool = False,
    overwrite: bool = True,
    progress: bool = True,
    distributed: DistContext | None = None,
    callbacks: list[Callback] | None = None,
    **params: Any,
) -> RecommenderResult | None:
    """Train the recommender ``config`` describes on ``dataset``; evaluate it on valid and test.

    ``config`` (:class:`RecommenderConfig`) names the model (:data:`kgwb.train.registry.
    RECOMMENDERS`; ``+text`` adds item title embeddings, computed with
    :func:`kgwb.text.embed.embed_texts` unless ``text_features`` — an ``(n_items, d)`` float
    matrix in catalog item order — is given) and its training; the keyword form
    ``train_recommender(dataset=ds, model="kgat", epochs=5)`` builds it from ``params`` (given
    with a config, ``params`` replace its fields).  ``kg`` (a
    :class:`~kgwb.kg.model.KnowledgeGraph`) replaces ``catalog_graph(dataset)`` as the
    item–entity relations of KG-aware models.  ``patience`` counts evaluations without a better
    valid Recall@20 before stopping; ``epochs=0`` evaluates the untrained model.
    ``model_options`` are extra keyword arguments of the model class (e.g. ``{"neighbors": 16}``
    for ``kgat``).  ``sampler="neighbors"`` trains on sampled L-hop neighbourhoods with
    ``fanouts`` neighbours per hop (:mod:`kgwb.train.sampler`; evaluation stays full-graph);
    ``sampler="history"`` on a sampled 1-hop neighbourhood, the deeper layers from historical
    embeddings recomputed every epoch (:mod:`kgwb.train.history`: linear epochs).  ``distributed`` (:func:`kgwb.train.distributed.context_from_env`) makes this
    process one rank of a data-parallel run (:mod:`kgwb.train.distributed`); only rank 0
    evaluates, writes and returns the result (the other ranks return None).

    ``cold_items=F`` holds out a seeded fraction ``F`` of the items with all their interactions
    (:func:`kgwb.train.data.cold_item_split`); they are never training negatives either, and
    the result carries ``test_warm`` / ``test_cold`` besides ``test``
    (:func:`warm_cold_split` says how they add up).

    ``out_dir``: a new folder is written in place (``resume=True`` continues it after a kill);
    an earlier run there is replaced only with ``overwrite=True`` (the default here; ``kgwb
    train`` asks for ``--overwrite``), and then only once the new run is complete.  With
    ``save_top_k=K`` the folder also gets ``recommendations.parquet`` (top-K of every user).
    ``callbacks`` (:class:`~kgwb.train.trainer.Callback`) run after the built-in ones at the end
    of each epoch (they see ``trainer.row`` with its validation metrics and may set
    ``trainer.stop``).
    """
    if config is None:
        config = RecommenderConfig(**params)
    elif params:
        config = config.replace(**params)
    inputs = {"dataset": dataset, "kg": kg, "text_features": text_features}
    inputs["callbacks"] = list(callbacks or [])
    ddp = distributed or DistContext()
    # ranks other than 0 of a distributed run write nothing: no staging folder for them
    if out_dir is None or not ddp.is_main:
        out = None if out_dir is None else Path(out_dir)
        return _train(config, inputs, out, None, resume, progress, ddp)
    final = Path(out_dir)
    with output_dir(
        final, kind="training run", overwrite=overwrite, resume=resume, manifests=RUN_MANIFESTS
    ) as work:
        result = _train(config, inputs, Path(work), final, resume, progress, ddp)
    result.out_dir = final
    return result


@dataclass
class _Built:
    """What a run trains: the indexed data, the collaborative KG, the features and the model."""

    data: InteractionData
    ckg: CollabKG | None
    features: Any
    net: Any
    texts: list | None
    options: dict[str, Any]


def _build(config: RecommenderConfig, inputs: dict[str, Any], dev) -> _Built:
    """Index the interactions, build the KG / text inputs the model reads, and the model."""
    dataset, kg = inputs["dataset"], inputs["kg"]
    model_cls, with_text = RECOMMENDERS.get(config.name), config.name.endswith(TEXT_SUFFIX)
    data = prepare_interactions(dataset, seed=config.seed, cold_items=config.cold_items)
    ckg = build_collab_kg(data, dataset, kg) if model_cls.uses_kg else None
    features = inputs["text_features"]
    if features is not None and len(features) != data.n_items:
        features = _align_features(features, dataset, data)
    if with_text and features is None:
        features = item_title_features(dataset, data, device=str(dev))
    options = dict(config.model_options)
    texts = None
    if getattr(model_cls, "uses_item_text", False):  # the text tower reads item text + KG facts
        from kgwb.train.text_tower import item_texts

        with_facts = options.pop("with_facts", True)
        texts = item_texts(dataset, data.item_ids, kg=kg, with_facts=with_facts)
    from kgwb.train.models import build_model

    extra = {} if texts is None else {"item_texts": texts}
    net = build_model(
        config.name,
        data,
        dim=config.dim,
        layers=config.layers,
        kg=ckg,
        text_features=features,
        **options,
        **extra,
    ).to(dev)
    return _Built(data, ckg, features, net, texts, options)


def _run_description(config: RecommenderConfig, dataset, built: _Built, ddp) -> dict[str, Any]:
    """The run as trained: ``metrics.json``'s ``config`` (and what a resume must match)."""
    features, ckg, texts = built.features, built.ckg, built.texts
    return {
        "dataset": dataset.name,
        "model": config.name,
        **{k: getattr(config, k) for k in ("epochs", "dim", "layers", "lr", "batch_size")},
        **{k: getattr(config, k) for k in ("reg", "seed", "eval_every", "patience")},
        "model_options": built.options,
        "text_features": None if features is None else list(np.shape(features)),
        "kg": None if ckg is None else ckg.stats,
        "negatives": "1 uniform per positive, resampled when a train positive",
        "optimizer": optimizer_name(
            built.net, config.sampling().sampled, config.sampling().sparse_min_rows
        ),
        "split": built.data.split_source,
        "cold_items": config.cold_items,
        "sampler": config.sampling().to_dict(),
        "torch_threads": _torch_threads(),
        **ddp.to_dict(),
        **(
            {}
            if texts is None
            else {"item_texts": len(texts), "with_facts": any(f for _, f in texts)}
        ),
    }


def _torch_threads() -> int:
    import torch

    return torch.get_num_threads()


def _train(config, inputs, out: Path | None, final: Path | None, resume, progress, ddp):
    """One rank's run: build, train with the callbacks, restore the best weights, evaluate."""
    import torch

    model_cls = RECOMMENDERS.get(config.name)
    dev = torch.device(resolve_device(ddp.device(config.device)))
    sampling = config.sampling()
    seed_everything(config.seed)
    if config.num_threads:
        torch.set_num_threads(config.num_threads)
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    built = _build(config, inputs, dev)
    description = _run_description(config, inputs["dataset"], built, ddp)
    ckpt_dir = out / CHECKPOINT_DIR if out is not None else None
    if ckpt_dir is not None and ddp.is_main:
        ckpt_dir.mkdir(parents=True, exist_ok=True)
    evaluate = Evaluator(built.data, dev, config.eval_batch_size)
    trainer = Trainer(
        net=built.net,
        data=built.data,
        device=dev,
        seed=config.seed,
        epochs=config.epochs,
        batch_size=config.batch_size,
        reg=config.reg,
        optimizer=(
            (
                sampled_optimizer(built.net, config.lr, min_rows=sampling.sparse_min_rows)
                if sampling.sampled
                else adam(built.net, config.lr)
            )
            if model_cls.trainable
            else None
        ),
        ddp=ddp,
    )
    if resume:
        if ckpt_dir is None:
            raise CheckpointError("resume=True needs out_dir (the folder of the interrupted run)")
        Checkpoint.resume(trainer, ckpt_dir, description)
    validation = Validation(evaluate, config.eval_every)
    fits = trainer.best["bad"] < config.patience and trainer.start_epoch <= config.epochs
    if model_cls.trainable and config.epochs > 0 and fits:
        trainer.sampled = sampled_training(built.net, sampling)
        trainer.callbacks = [validation]
        if ckpt_dir is not None and ddp.is_main:  # rank 0 alone writes
            trainer.callbacks += [Checkpoint(ckpt_dir, description), TensorBoard(out)]
        enabled = progress_enabled(progress) and ddp.is_main
        trainer.callbacks += [Progress(config.name, enabled), EarlyStopping(config.patience)]
        trainer.callbacks += inputs["callbacks"]
        trainer.fit()
    if not ddp.is_main:
        return None
    _restore_best(trainer, validation, ckpt_dir)
    return _finish(config, built, trainer, evaluate, description, out, final)


def _restore_best(trainer: Trainer, validation: Validation, ckpt_dir: Path | None) -> None:
    """The best weights back into the model (from memory, or from disk after a resume)."""
    best = trainer.best
    if validation.best_state is not None:
        trainer.net.load_state_dict(validation.best_state)
    elif ckpt_dir is not None and best["epoch"] > 0 and state_path(ckpt_dir, "best").is_file():
        load_weights(trainer.net, state_path(ckpt_dir, "best"), trainer.device)


def _finish(config, built: _Built, trainer: Trainer, evaluate, description, out, final):
    """Save what the folder must hold, run the final evaluation, and write the result."""
    import torch

    net, data, dev, best, curve = built.net, built.data, trainer.device, trainer.best, trainer.curve
    checkpoint = None
    if out is not None:
        ckpt_dir = out / CHECKPOINT_DIR
        checkpoint = state_path(ckpt_dir, "best")
        if not checkpoint.is_file() or not net.trainable or best["epoch"] == 0:
            save_weights(net, checkpoint)
        _save_inputs(ckpt_dir, config.name, data, built.ckg, built.features, description)
        if built.texts is not None:
            table = pd.DataFrame(built.texts, columns=["title", "facts"])
            write_with(ckpt_dir / ITEM_TEXTS_FILE, lambda p: table.to_parquet(p, index=False))
    t1 = time.perf_counter()
    valid_final, test_final = evaluate(net, "valid"), evaluate(net, "test")
    test_warm, test_cold = {}, {}
    warm_pairs, cold_pairs = warm_cold_split(data, data.test)
    if len(data.cold_items) or len(cold_pairs):
        test_warm = evaluate(net, "test", positives=torch.as_tensor(warm_pairs, device=dev))
        test_cold = evaluate(net, "test", positives=torch.as_tensor(cold_pairs, device=dev))
    final_eval = time.perf_counter() - t1
    evaluations = sum(1 for c in curve if "valid_recall@20" in c)
    seconds = trainer.train_seconds
    result = RecommenderResult(
        model=net,
        data=data,
        model_name=config.name,
        valid=valid_final,
        test=test_final,
        best_epoch=int(best["epoch"]),
        epochs_run=len(curve),
        curve=curve,
        seconds_per_epoch=float(np.mean(seconds)) if seconds else 0.0,
        eval_seconds=(trainer.eval_seconds / evaluations) if evaluations else final_eval / 2,
        peak_memory_mb=peak_memory_mb(dev),
        device=str(dev),
        seed=config.seed,
        config=description,
        stats=data.stats,
        # where the run will live (a staged run is written elsewhere, then moved there)
        checkpoint=None if checkpoint is None else (final or out) / CHECKPOINT_DIR / checkpoint.name,
        out_dir=out,
        test_warm=test_warm,
        test_cold=test_cold,
        stage_config=config,
    )
    if out is not None:
        if config.save_top_k:
            top = result.recommend_all(config.save_top_k)
            write_with(out / "recommendations.parquet", lambda p: top.to_parquet(p, index=False))
        result.save(out)
    return result


def build_stage(config: RecommenderConfig, run: Any) -> RecommenderResult:
    """The ``train`` stage of a :class:`~kgwb.rundir.RunDir`: trains on the run's saved
    dataset (and its built KG when there is one), into ``run.train(<model>)``."""
    dataset = Dataset.load(run.dataset)
    kg = None
    if RECOMMENDERS.get(config.name).uses_kg and (run.kg / "kg.json").is_file():
        from kgwb.kg.model import KnowledgeGraph

        kg = KnowledgeGraph.load(run.kg)
    return train_recommender(config, dataset=dataset, kg=kg, out_dir=run.train(config.name))


def warm_cold_split(data: InteractionData, pairs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``pairs`` split into those of warm items (with a train interaction) and cold items.

    ``test_warm`` and ``test_cold`` rank every item with the same scores and masks as ``test``
    and differ only in which of the user's test items count as positives, so:

    * hits add up: ``micro_recall@K`` (hits / positives, per interaction) of ``test`` is the
      positives-weighted mean of the warm and cold ones, exactly;
    * the user-averaged ``recall@K`` of ``test`` is the users-weighted mean of the warm and cold
      ones exactly when no user has both warm and cold test items (leave-one-out splits);
      otherwise each user's recall is the share-weighted sum of its warm and cold recalls.
    """
    warm = data.warm_item_mask()[pairs[:, 1]]
    return pairs[warm], pairs[~warm]


def _align_features(features, dataset: Dataset, data: InteractionData) -> np.ndarray:
    """Rows of ``features`` given in ``dataset.items`` order → rows in ``data.item_ids`` order."""
    arr = np.asarray(features, dtype=np.float32)
    table_ids = dataset.items["item_id"].astype("string").astype(object).to_numpy()
    if len(arr) != len(table_ids):
        raise DataError(
            f"text_features has {len(arr)} rows",
            expected=f"one row per item of the items table ({len(table_ids)}) or per indexed item ({data.n_items})",
        )
    out = np.zeros((data.n_items, arr.shape[1]), dtype=np.float32)
    pos = pd.Index(data.item_ids).get_indexer(table_ids)
    out[pos[pos >= 0]] = arr[pos >= 0]
    return out


# --------------------------------------------------------------------------- loading a run
INPUTS_FILE = "inputs.safetensors"
ITEM_TEXTS_FILE = "item_texts.parquet"
MODEL_FILE = "model.json"
INPUTS_FORMAT = 1


def _save_inputs(ckpt_dir: Path, model: str, data: InteractionData, ckg, features, config) -> None:
    """What :func:`load_recommender` needs to rebuild the model without the dataset."""
    import torch
    from safetensors.torch import save_file

    tensors = {name: torch.as_tensor(data.split(name)).contiguous() for name in SPLIT_KEYS}
    tensors["cold_items"] = torch.as_tensor(data.cold_items, dtype=torch.long).contiguous()
    if ckg is not None:
        tensors["kg_triples"] = torch.as_tensor(ckg.triples, dtype=torch.long).contiguous()
        entities = pd.DataFrame({"entity_id": pd.array(ckg.entity_ids, dtype="string")})
        write_with(ckpt_dir / "entities.parquet", lambda p: entities.to_parquet(p, index=False))
    if features is not None:
        tensors["text_features"] = torch.as_tensor(
            np.asarray(features), dtype=torch.float32
        ).contiguous()
    write_with(ckpt_dir / INPUTS_FILE, lambda p: save_file(tensors, str(p)))
    users = pd.DataFrame({"user_id": pd.array(data.user_ids, dtype="string")})
    write_with(ckpt_dir / "users.parquet", lambda p: users.to_parquet(p, index=False))
    items = pd.DataFrame({"item_id": pd.array(data.item_ids, dtype="string")})
    write_with(ckpt_dir / "items.parquet", lambda p: items.to_parquet(p, index=False))
    meta = {
        "format": INPUTS_FORMAT,
        "model": model,
        "dim": config["dim"],
        "layers": config["layers"],
        "model_options": config["model_options"],
        "split_source": data.split_source,
        "data_stats": data.stats,
        "kg_relations": None if ckg is None else list(ckg.relations),
        "kg_stats": None if ckg is None else ckg.stats,
    }
    write_json(ckpt_dir / MODEL_FILE, _json_safe(meta), indent=1)


SPLIT_KEYS = ("train", "valid", "test")


def load_recommender(run_dir: str | Path, *, device: str = "auto") -> RecommenderResult:
    """The trained recommender of a ``kgwb train`` / :func:`train_recommender` folder, with its
    best weights (safetensors, so no pickle is executed) and its saved metrics.

    Rebuilt from the folder alone (ids, splits, KG triples and text features were saved with
    the checkpoint); ``.recommend(users, k)`` ranks exactly as the run's model did.
    """
    import torch

    run = Path(run_dir)
    ckpt_dir = run / CHECKPOINT_DIR
    meta = _check_run_folder(run, ckpt_dir)
    saved = read_json(run / "metrics.json")
    dev = torch.device(resolve_device(device))
    net, data = _rebuild(ckpt_dir, meta)
    net = net.to(dev).eval()
    stage_config = saved.get("stage_config")
    return RecommenderResult(
        model=net,
        data=data,
        model_name=meta["model"],
        valid=saved.get("valid", {}),
        test=saved.get("test", {}),
        best_epoch=int(saved.get("best_epoch", 0)),
        epochs_run=int(saved.get("epochs_run", 0)),
        curve=saved.get("curve", []),
        seconds_per_epoch=float(saved.get("seconds_per_epoch", 0.0)),
        eval_seconds=float(saved.get("eval_seconds", 0.0)),
        peak_memory_mb=float(saved.get("peak_memory_mb", 0.0)),
        device=str(dev),
        seed=int(saved.get("seed", 0)),
        config=saved.get("config", {}),
        stats=data.stats,
        checkpoint=state_path(ckpt_dir, "best"),
        out_dir=run,
        test_warm=saved.get("test_warm", {}),
        test_cold=saved.get("test_cold", {}),
        stage_config=None if stage_config is None else RecommenderConfig.from_dict(stage_config),
        **({"environment": saved["versions"]} if "versions" in saved else {}),
    )


def _check_run_folder(run: Path, ckpt_dir: Path) -> dict[str, Any]:
    """``model.json`` of a complete run folder; a CheckpointError names what is missing."""
    needed = [run / "metrics.json", ckpt_dir / MODEL_FILE, ckpt_dir / INPUTS_FILE]
    needed += [
        state_path(ckpt_dir, "best"),
        ckpt_dir / "users.parquet",
        ckpt_dir / "items.parquet",
    ]
    missing = [str(p) for p in needed if not p.is_file()]
    if missing:
        raise CheckpointError(
            f"{run}: not a complete training run folder; missing {', '.join(missing)} "
            "(expected a folder written by `kgwb train --out`)"
        )
    meta = read_json(ckpt_dir / MODEL_FILE)
    if meta.get("format") != INPUTS_FORMAT:
        raise CheckpointError(
            f"{ckpt_dir / MODEL_FILE}: format {meta.get('format')!r}, this kgwb reads {INPUTS_FORMAT}"
        )
    return meta


def _saved_inputs(ckpt_dir: Path, meta: dict[str, Any]):
    """The interactions, collaborative KG and text features saved with a run."""
    from safetensors.torch import load_file

    tensors = load_file(str(ckpt_dir / INPUTS_FILE))
    data = InteractionData(
        user_ids=pd.read_parquet(ckpt_dir / "users.parquet")["user_id"].to_numpy(dtype=object),
        item_ids=pd.read_parquet(ckpt_dir / "items.parquet")["item_id"].to_numpy(dtype=object),
        **{name: tensors[name].numpy() for name in SPLIT_KEYS},
        split_source=meta["split_source"],
        stats=meta["data_stats"],
        cold_items=tensors["cold_items"].numpy() if "cold_items" in tensors else np.empty(0, int),
    )
    ckg = None
    if "kg_triples" in tensors:
        entities = pd.read_parquet(ckpt_dir / "entities.parquet")["entity_id"]
        ckg = CollabKG(
            n_items=data.n_items,
            entity_ids=entities.to_numpy(dtype=object),
            relations=list(meta["kg_relations"]),
            triples=tensors["kg_triples"].numpy(),
            stats=meta["kg_stats"],
        )
    features = tensors.get("text_features")
    return data, ckg, None if features is None else features.numpy()


def _rebuild(ckpt_dir: Path, meta: dict[str, Any]):
    """The run's model with its best weights (on CPU) and its interaction data."""
    from kgwb.train.models import build_model

    data, ckg, features = _saved_inputs(ckpt_dir, meta)
    extra = {}
    if (ckpt_dir / ITEM_TEXTS_FILE).is_file():
        texts = pd.read_parquet(ckpt_dir / ITEM_TEXTS_FILE).fillna("")
        extra["item_texts"] = list(zip(texts["title"], texts["facts"]))
    net = build_model(
        meta["model"],
        data,
        dim=meta["dim"],
        layers=meta["layers"],
        kg=ckg,
        text_features=features,
        **{k: v for k, v in meta["model_options"].items() if k != "with_facts"},
        **extra,
    )
    try:
        load_weights(net, state_path(ckpt_dir, "best"), "cpu")
    except RuntimeError as err:  # shapes or names that do not fit the rebuilt model
        raise CheckpointError(
            f"{state_path(ckpt_dir, 'best')} does not fit {meta['model']}: {err}"
        ) from err
    return net, data
