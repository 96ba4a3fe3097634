"""Stage 3 entry point for recommenders: :func:`train_recommender` trains a model chosen by name
and evaluates it by full ranking; :class:`RecommenderResult` saves metrics and recommends.

Training: BPR loss with one uniform negative per positive (sampled on the device, resampled
where it hits a train positive of the user), Adam, L2 on the batch's ego embeddings; early
stopping on valid Recall@20 with ``patience`` evaluations (a model with ``mix_scorers``, i.e.
``kgat``, also picks at each validation how much of its KG tower to mix into its LightGCN
backbone, see :class:`~kgwb.train.models.KGAT`); the best weights are kept (and, with
``out_dir``, written as ``checkpoints/best.safetensors``).  With ``out_dir`` each epoch also
writes ``checkpoints/last.safetensors`` + optimizer + ``train_state.json`` so that
``resume=True`` continues where a run stopped, and gives the numbers an uninterrupted run gives
(each epoch's shuffling and negatives come from a generator seeded with ``(seed, epoch)``).
The folder also keeps what the model was built from (``checkpoints/inputs.safetensors``: the
splits as index pairs, the KG triples, the text features; ``users.parquet``/``items.parquet``/
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

import json
import logging
import math
import os
import sys
import time
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from torch import nn  # (kgwb.train.models imports torch anyway)

from kgwb.atomic import output_dir, write_json, write_with
from kgwb.data.schema import Dataset
from kgwb.device import resolve_device
from kgwb.errors import ConfigError, DataError, KgwbError
from kgwb.runinfo import environment_info
from kgwb.train.data import (
    CollabKG,
    InteractionData,
    build_collab_kg,
    prepare_interactions,
)
from kgwb.train.distributed import DistContext
from kgwb.train.metrics import DEFAULT_KS, evaluate_full_ranking
from kgwb.train.models import build_model, parse_model_name
from kgwb.train.sampler import SampledTraining, SamplerConfig, parse_fanouts
from kgwb.train.sparse_optim import optimizer_name, sampled_optimizer

log = logging.getLogger(__name__)

REPORTED_METRICS = tuple(
    f"{m}@{k}" for k in DEFAULT_KS for m in ("recall", "ndcg", "hit", "precision")
)
CHECKPOINT_DIR = "checkpoints"
#: files that mark a folder as a training run (older runs carry no kgwb marker)
RUN_MANIFESTS = ("metrics.json", CHECKPOINT_DIR)
#: the folder a staged run will be moved to, while it is written elsewhere
_FINAL_DIR: ContextVar[Path | None] = ContextVar("kgwb_train_final_dir", default=None)


class CheckpointError(KgwbError):
    """A checkpoint is missing or was written by a run with another configuration."""


def seed_everything(seed: int) -> None:
    import random

    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _progress_enabled(progress: bool) -> bool:
    flag = os.environ.get("TQDM_DISABLE", "").strip().lower()
    return progress and flag not in {"1", "true", "yes", "on"}


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


@dataclass
class RecommenderResult:
    """A trained recommender with its evaluation; :meth:`save` writes ``metrics.json``."""

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
    versions: dict[str, str] = field(default_factory=environment_info)

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
        }

    def save(self, out_dir: str | Path | None = None) -> Path:
        """Write ``metrics.json`` (metrics, config, learning curve, versions) into ``out_dir``."""
        target = Path(out_dir) if out_dir is not None else self.out_dir
        if target is None:
            raise ConfigError("no output folder given")
        write_json(target / "metrics.json", _json_safe(self.to_dict()))
        self.out_dir = target
        return target

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


def _json_safe(obj: Any) -> Any:
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, np.integer | np.floating):
        return _json_safe(obj.item())
    return obj


class _NegativeSampler:
    """Uniform negatives on the device, redrawn where they are train positives of the user.

    A fixed number of redraw rounds, without reading anything back to the host (no per-batch
    synchronisation on CUDA); with a user's share of the catalogue ``p``, a negative is still a
    positive after ``rounds`` redraws with probability ``p ** (rounds + 1)``.
    """

    def __init__(self, train, n_items: int, device, rounds: int = 4, exclude=None) -> None:
        import torch

        t = torch.as_tensor(train, dtype=torch.long, device=device)
        self.keys = torch.sort(t[:, 0] * n_items + t[:, 1]).values
        self.n_items, self.rounds = n_items, rounds
        # held-out cold items do not exist at training time, so they are never negatives
        self.candidates = None
        if exclude is not None and len(exclude):
            keep = torch.ones(n_items, dtype=torch.bool, device=device)
            keep[torch.as_tensor(exclude, dtype=torch.long, device=device)] = False
            self.candidates = torch.nonzero(keep).flatten()

    def _draw(self, users, generator):
        import torch

        if self.candidates is None:
            return torch.randint(
                self.n_items, users.shape, device=users.device, generator=generator
            )
        pick = torch.randint(
            len(self.candidates), users.shape, device=users.device, generator=generator
        )
        return self.candidates[pick]

    def __call__(self, users, generator):
        import torch

        neg = self._draw(users, generator)
        for _ in range(self.rounds):
            keys = users * self.n_items + neg
            at = torch.searchsorted(self.keys, keys).clamp(max=len(self.keys) - 1)
            redraw = self._draw(users, generator)
            neg = torch.where(self.keys[at] == keys, redraw, neg)
        return neg


def _state_path(ckpt_dir: Path, name: str) -> Path:
    return ckpt_dir / f"{name}.safetensors"


def _save_weights(model, path: Path) -> None:
    from safetensors.torch import save_file

    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    write_with(path, lambda tmp: save_file(state, str(tmp)))


def _load_weights(model, path: Path, device) -> None:
    from safetensors.torch import load_file

    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} not found")
    model.load_state_dict(load_file(str(path), device=str(device)))


def train_recommender(
    *,
    dataset: Dataset,
    model: str = "lightgcn",
    epochs: int = 200,
    dim: int = 64,
    layers: int = 2,
    lr: float = 1e-3,
    batch_size: int = 2048,
    reg: float = 1e-4,
    device: str = "auto",
    seed: int = 0,
    out_dir: str | Path | None = None,
    eval_every: int = 1,
    patience: int = 10,
    text_features: np.ndarray | Any | None = None,
    kg: Any | None = None,
    resume: bool = False,
    progress: bool = True,
    eval_batch_size: int = 1024,
    model_options: dict[str, Any] | None = None,
    cold_items: float = 0.0,
    overwrite: bool = True,
    sampler: str = "full",
    fanouts: str | tuple[int, ...] = (15, 10),
    distributed: DistContext | None = None,
) -> RecommenderResult | None:
    """Train recommender ``model`` on ``dataset`` and evaluate it on valid and test.

    ``model`` is a name of :data:`kgwb.train.models.MODELS` (``+text`` adds item title
    embeddings, computed with :func:`kgwb.text.embed.embed_texts` unless ``text_features`` — an
    ``(n_items, d)`` float matrix in catalog item order — is given).  ``kg`` (a
    :class:`~kgwb.kg.model.KnowledgeGraph`) replaces ``catalog_graph(dataset)`` as the item–entity
    relations of KG-aware models.  ``patience`` counts evaluations without a better valid
    Recall@20 before stopping; ``epochs=0`` evaluates the untrained model.  ``model_options``
    are extra keyword arguments of the model class (e.g. ``{"neighbors": 16}`` for ``kgat``).
    ``sampler="neighbors"`` trains on sampled L-hop neighbourhoods with ``fanouts`` neighbours
    per hop (:mod:`kgwb.train.sampler`: linear epochs; evaluation stays full-graph).
    ``distributed`` (:func:`kgwb.train.distributed.context_from_env`) makes this process one
    rank of a data-parallel run (:mod:`kgwb.train.distributed`); only rank 0 evaluates, writes
    and returns the result (the other ranks return None).

    ``cold_items=F`` holds out a seeded fraction ``F`` of the items with all their interactions
    (:func:`kgwb.train.data.cold_item_split`); they are never training negatives either, and
    the result carries ``test_warm`` / ``test_cold`` besides ``test``
    (:func:`warm_cold_split` says how they add up).

    ``out_dir``: a new folder is written in place (``resume=True`` continues it after a kill);
    an earlier run there is replaced only with ``overwrite=True`` (the default here; ``kgwb
    train`` asks for ``--overwrite``), and then only once the new run is complete.
    """
    # ranks other than 0 of a distributed run write nothing: no staging folder for them
    if out_dir is not None and _FINAL_DIR.get() is None and (distributed or DistContext()).is_main:
        args, final = dict(locals()), Path(out_dir)
        with output_dir(
            final,
            kind="training run",
            overwrite=overwrite,
            resume=resume,
            manifests=RUN_MANIFESTS,
        ) as work:
            token = _FINAL_DIR.set(final)
            try:
                result = train_recommender(**{**args, "out_dir": work})
            finally:
                _FINAL_DIR.reset(token)
        result.out_dir = final
        return result
    import torch

    model_cls, with_text = parse_model_name(model)
    ddp = distributed or DistContext()
    dev = torch.device(resolve_device(ddp.device(device)))
    # fan-outs only mean something to a sampled run (and must then match the layers)
    sampling = SamplerConfig(sampler, parse_fanouts(fanouts, layers) if sampler != "full" else ())
    seed_everything(seed)
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    data = prepare_interactions(dataset, seed=seed, cold_items=cold_items)

    ckg: CollabKG | None = None
    if model_cls.uses_kg:
        ckg = build_collab_kg(data, dataset, kg)
    features = text_features
    if features is not None and len(features) != data.n_items:
        features = _align_features(features, dataset, data)
    if with_text and features is None:
        features = item_title_features(dataset, data, device=str(dev))
    options = dict(model_options or {})
    texts = None
    if getattr(model_cls, "uses_item_text", False):  # the text tower reads item text + KG facts
        from kgwb.train.text_tower import item_texts

        texts = item_texts(
            dataset, data.item_ids, kg=kg, with_facts=options.pop("with_facts", True)
        )
        config_texts = {"item_texts": len(texts), "with_facts": any(f for _, f in texts)}
    extra = {} if texts is None else {"item_texts": texts}
    net = build_model(
        model, data, dim=dim, layers=layers, kg=ckg, text_features=features, **options, **extra
    ).to(dev)

    config = {
        "dataset": dataset.name,
        "model": model,
        "epochs": epochs,
        "dim": dim,
        "layers": layers,
        "lr": lr,
        "batch_size": batch_size,
        "reg": reg,
        "seed": seed,
        "eval_every": eval_every,
        "patience": patience,
        "model_options": options,
        "text_features": None if features is None else list(np.shape(features)),
        "kg": None if ckg is None else ckg.stats,
        "negatives": "1 uniform per positive, resampled when a train positive",
        "optimizer": optimizer_name(net, sampling.sampled),
        "split": data.split_source,
        "cold_items": cold_items,
        "sampler": sampling.to_dict(),
        **ddp.to_dict(),
        **(config_texts if texts is not None else {}),
    }
    out = Path(out_dir) if out_dir is not None else None
    ckpt_dir = out / CHECKPOINT_DIR if out is not None else None
    if ckpt_dir is not None and ddp.is_main:
        ckpt_dir.mkdir(parents=True, exist_ok=True)
    if not ddp.is_main:  # rank 0 alone writes
        ckpt_dir = None

    # evaluation inputs, moved once
    has_train = np.zeros(data.n_users, dtype=bool)
    has_train[data.train[:, 0]] = True
    eval_users = torch.as_tensor(np.flatnonzero(has_train), device=dev)
    splits = {
        name: torch.as_tensor(data.split(name), device=dev) for name in ("train", "valid", "test")
    }

    def rank(score, split: str, positives=None) -> dict[str, float]:
        exclude = [splits["train"]] + ([splits["valid"]] if split == "test" else [])
        return evaluate_full_ranking(
            score,
            splits[split] if positives is None else positives,
            n_users=data.n_users,
            n_items=data.n_items,
            exclude=exclude,
            users=eval_users,
            batch_size=eval_batch_size,
            device=dev,
        )

    def evaluate(split: str, choose_mix: bool = False, positives=None) -> dict[str, float]:
        net.eval()
        with torch.no_grad():  # full precision: bf16 scores would tie and reorder items
            # a model with a mix of towers (kgat over its LightGCN backbone) keeps the mix
            # weight it chooses from each weight's Recall@20 on this (validation) split
            candidates = net.mix_scorers() if choose_mix and hasattr(net, "mix_scorers") else {}
            if candidates:
                scored = {a: rank(score, split) for a, score in candidates.items()}
                pick = net.choose_mix({a: r["recall@20"] for a, r in scored.items()})
                net.mix.fill_(pick)
                res = {**scored[pick], "mix": pick}
            else:
                res = rank(net.scorer(), split, positives)
        res["users_without_train_items"] = int(
            data.stats.get(f"{split}_users_without_train_items", 0)
        )
        return res

    curve: list[dict[str, Any]] = []
    best = {"epoch": 0, "recall@20": -1.0, "bad": 0}
    start_epoch = 1
    optimizer = None
    if model_cls.trainable:  # sampled: large tables row-sparse, lazy Adam (sparse_optim)
        optimizer = sampled_optimizer(net, lr) if sampling.sampled else _adam(net, lr)
    best_state = None

    if resume:
        ckpt_dir = out / CHECKPOINT_DIR if out is not None else None
        if ckpt_dir is None:
            raise CheckpointError("resume=True needs out_dir (the folder of the interrupted run)")
        state_file = ckpt_dir / "train_state.json"
        if not state_file.is_file():
            raise CheckpointError(f"nothing to resume: {state_file} not found")
        saved = _read_json(state_file)
        for key in ("dataset", "model", "dim", "layers", "lr", "batch_size", "reg", "seed"):
            if saved["config"].get(key) != config[key]:
                raise CheckpointError(
                    f"checkpoint in {ckpt_dir} was trained with {key}={saved['config'].get(key)!r}, "
                    f"this run asks for {config[key]!r}"
                )
        if saved["config"].get("cold_items", 0.0) != cold_items:  # another split
            raise CheckpointError(
                f"checkpoint in {ckpt_dir} was trained with cold_items="
                f"{saved['config'].get('cold_items', 0.0)!r}, this run asks for {cold_items!r}"
            )
        _load_weights(net, _state_path(ckpt_dir, "last"), dev)
        if optimizer is not None:
            optimizer.load_state_dict(
                torch.load(ckpt_dir / "last_optimizer.pt", map_location=dev, weights_only=True)
            )
        curve, best = saved["curve"], saved["best"]
        start_epoch = saved["epoch"] + 1
        log.info("resuming %s from epoch %d", model, saved["epoch"])
        if not ddp.is_main:
            ckpt_dir = None

    train_seconds: list[float] = [c["train_seconds"] for c in curve if "train_seconds" in c]
    eval_seconds = 0.0
    writer = _tensorboard(out) if ddp.is_main else None
    use_amp = dev.type == "cuda"
    amp_dtype = torch.bfloat16 if use_amp and torch.cuda.is_bf16_supported() else torch.float16
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp and amp_dtype == torch.float16)

    if model_cls.trainable and epochs > 0 and best["bad"] < patience and start_epoch <= epochs:
        from tqdm.auto import tqdm

        negatives = _NegativeSampler(data.train, data.n_items, dev, exclude=data.cold_items)
        sampled = SampledTraining(net, sampling) if sampling.sampled else None
        step = ddp.wrap(_TrainStep(net, sampled))
        train_pairs = splits["train"]
        gen = torch.Generator(device=dev)
        subgraph_gen = torch.Generator(device=dev)
        bar = tqdm(
            range(start_epoch, epochs + 1),
            desc=f"train {model}",
            unit="epoch",
            disable=not (_progress_enabled(progress) and ddp.is_main),
            initial=start_epoch - 1,
            total=epochs,
        )
        for epoch in bar:
            net.train()
            gen.manual_seed(seed * 1_000_003 + epoch)
            t0 = time.perf_counter()
            net.on_epoch_start(gen)
            if sampled is not None:
                sampled.on_epoch_start()
                subgraph_gen.manual_seed((seed * 1_000_003 + epoch) * 4099 + ddp.rank)
            perm = torch.randperm(len(train_pairs), device=dev, generator=gen)
            total_loss = torch.zeros((), device=dev)
            total_reg = torch.zeros((), device=dev)
            total_aux = torch.zeros((), device=dev)
            n_batches = 0
            for start in range(0, len(perm), batch_size):
                batch = train_pairs[perm[start : start + batch_size]]
                users, pos = batch[:, 0], batch[:, 1]
                neg = negatives(users, gen)  # the whole batch's: same stream on every rank
                users, pos, neg = ddp.shard(users, pos, neg)
                with torch.autocast(dev.type, dtype=amp_dtype, enabled=use_amp):
                    loss, bpr, l2, aux = step(users, pos, neg, reg, len(batch), gen, subgraph_gen)
                    if aux is not None:
                        total_aux += aux.detach()
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
                total_loss += bpr.detach()
                total_reg += l2.detach()
                n_batches += 1
            if ddp.active:
                total_loss, total_reg, total_aux = ddp.mean(
                    torch.stack([total_loss, total_reg, total_aux])
                )
            mean_loss = float(total_loss) / max(n_batches, 1)
            if dev.type == "cuda":
                torch.cuda.synchronize(dev)
            seconds = time.perf_counter() - t0
            train_seconds.append(seconds)
            row: dict[str, Any] = {
                "epoch": epoch,
                "loss": mean_loss,
                "reg_loss": float(total_reg) / max(n_batches, 1),
                "aux_loss": float(total_aux) / max(n_batches, 1),
                "train_seconds": seconds,
            }
            if epoch % eval_every == 0 or epoch == epochs:
                t1 = time.perf_counter()
                valid = evaluate("valid", choose_mix=True) if ddp.is_main else {"recall@20": 0.0}
                eval_seconds += time.perf_counter() - t1
                valid["recall@20"] = ddp.broadcast(valid["recall@20"])  # rank 0 decides
                if ddp.is_main:
                    row.update({f"valid_{k}": valid[k] for k in REPORTED_METRICS})
                    if "mix" in valid:
                        row["valid_mix"] = valid["mix"]
                if valid["recall@20"] > best["recall@20"]:
                    best = {"epoch": epoch, "recall@20": valid["recall@20"], "bad": 0}
                    if ddp.is_main:
                        best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
                    if ckpt_dir is not None:
                        _save_weights(net, _state_path(ckpt_dir, "best"))
                else:
                    best["bad"] += 1
            curve.append(row)
            if writer is not None:
                for key, value in row.items():
                    if key != "epoch":
                        writer.add_scalar(key.replace("_", "/", 1), value, epoch)
            bar.set_postfix(
                loss=f"{mean_loss:.4f}", r20=f"{row.get('valid_recall@20', float('nan')):.4f}"
            )
            log.info(
                "epoch %d loss %.4f valid recall@20 %s (%.2fs)",
                epoch,
                mean_loss,
                row.get("valid_recall@20"),
                seconds,
            )
            if ckpt_dir is not None:
                _save_weights(net, _state_path(ckpt_dir, "last"))
                write_with(
                    ckpt_dir / "last_optimizer.pt",
                    lambda tmp: torch.save(optimizer.state_dict(), tmp),
                )
                state = {"epoch": epoch, "config": config, "curve": curve, "best": best}
                write_json(ckpt_dir / "train_state.json", _json_safe(state), indent=1)
            if best["bad"] >= patience:
                log.info("early stop at epoch %d (best %d)", epoch, best["epoch"])
                break
        bar.close()
    if writer is not None:
        writer.close()
    if not ddp.is_main:
        return None

    # restore the best weights (in memory, or from disk after a resume)
    if best_state is not None:
        net.load_state_dict(best_state)
    elif ckpt_dir is not None and best["epoch"] > 0 and _state_path(ckpt_dir, "best").is_file():
        _load_weights(net, _state_path(ckpt_dir, "best"), dev)
    checkpoint = None
    if ckpt_dir is not None:
        checkpoint = _state_path(ckpt_dir, "best")
        if not checkpoint.is_file() or not model_cls.trainable or best["epoch"] == 0:
            _save_weights(net, checkpoint)
        _save_inputs(ckpt_dir, model, data, ckg, features, config)
        if texts is not None:
            table = pd.DataFrame(texts, columns=["title", "facts"])
            write_with(ckpt_dir / ITEM_TEXTS_FILE, lambda p: table.to_parquet(p, index=False))

    t1 = time.perf_counter()
    valid_final = evaluate("valid")
    test_final = evaluate("test")
    test_warm, test_cold = {}, {}
    warm_pairs, cold_pairs = warm_cold_split(data, data.test)
    if len(data.cold_items) or len(cold_pairs):
        test_warm = evaluate("test", positives=torch.as_tensor(warm_pairs, device=dev))
        test_cold = evaluate("test", positives=torch.as_tensor(cold_pairs, device=dev))
    final_eval = time.perf_counter() - t1
    evaluations = sum(1 for c in curve if "valid_recall@20" in c)
    result = RecommenderResult(
        model=net,
        data=data,
        model_name=model,
        valid=valid_final,
        test=test_final,
        best_epoch=int(best["epoch"]),
        epochs_run=len(curve),
        curve=curve,
        seconds_per_epoch=float(np.mean(train_seconds)) if train_seconds else 0.0,
        eval_seconds=(eval_seconds / evaluations) if evaluations else final_eval / 2,
        peak_memory_mb=peak_memory_mb(dev),
        device=str(dev),
        seed=seed,
        config=config,
        stats=data.stats,
        # where the run will live (a staged run is written elsewhere, then moved there)
        checkpoint=None
        if checkpoint is None
        else (_FINAL_DIR.get() or out) / CHECKPOINT_DIR / checkpoint.name,
        out_dir=out,
        test_warm=test_warm,
        test_cold=test_cold,
    )
    if out is not None:
        result.save(out)
    return result


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


class _TrainStep(nn.Module):
    """One BPR step's losses as a module call, so that DistributedDataParallel can hook it."""

    def __init__(self, net, sampled: SampledTraining | None) -> None:
        super().__init__()
        self.net, self.sampled = net, sampled

    def forward(self, users, pos, neg, reg: float, batch_size: int, generator, subgraph_generator):
        if self.sampled is not None:
            bpr, l2 = self.sampled.bpr_loss(users, pos, neg, reg, subgraph_generator)
        else:
            bpr, l2 = self.net.bpr_loss(users, pos, neg, reg)
        loss = bpr + l2
        # the global batch size: the same draws from `generator` on every rank
        aux = self.net.aux_loss(batch_size, generator, reg)
        if aux is not None:
            loss = loss + aux
        return loss, bpr, l2, aux


def _read_json(path: Path) -> dict[str, Any]:
    """A JSON object kgwb wrote; a damaged one is a CheckpointError naming the file."""
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{path}: damaged ({e}); train again without --resume") from None
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path}: damaged (not a JSON object)")
    return obj


def _adam(net, lr: float):
    """Adam, fused (one kernel for all parameters: ~3× faster steps on CPU) where supported."""
    import torch

    params = net.param_groups(lr) if hasattr(net, "param_groups") else net.parameters()
    params = list(params)
    try:
        return torch.optim.Adam(params, lr=lr, fused=True)
    except (RuntimeError, TypeError):  # a device or dtype without a fused kernel
        return torch.optim.Adam(params, lr=lr)


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


def _tensorboard(out: Path | None):
    """A SummaryWriter under ``out/tensorboard`` when tensorboard is installed, else None."""
    if out is None:
        return None
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard is optional
        return None
    return SummaryWriter(log_dir=str(out / "tensorboard"))


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
    from safetensors.torch import load_file

    from kgwb.train.data import CollabKG

    run = Path(run_dir)
    ckpt_dir = run / CHECKPOINT_DIR
    needed = [run / "metrics.json", ckpt_dir / MODEL_FILE, ckpt_dir / INPUTS_FILE]
    needed += [
        _state_path(ckpt_dir, "best"),
        ckpt_dir / "users.parquet",
        ckpt_dir / "items.parquet",
    ]
    missing = [str(p) for p in needed if not p.is_file()]
    if missing:
        raise CheckpointError(
            f"{run}: not a complete training run folder; missing {', '.join(missing)} "
            "(expected a folder written by `kgwb train --out`)"
        )
    meta = _read_json(ckpt_dir / MODEL_FILE)
    if meta.get("format") != INPUTS_FORMAT:
        raise CheckpointError(
            f"{ckpt_dir / MODEL_FILE}: format {meta.get('format')!r}, this kgwb reads {INPUTS_FORMAT}"
        )
    saved = _read_json(run / "metrics.json")
    dev = torch.device(resolve_device(device))
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
        ckg = CollabKG(
            n_items=data.n_items,
            entity_ids=pd.read_parquet(ckpt_dir / "entities.parquet")["entity_id"].to_numpy(
                dtype=object
            ),
            relations=list(meta["kg_relations"]),
            triples=tensors["kg_triples"].numpy(),
            stats=meta["kg_stats"],
        )
    features = tensors.get("text_features")
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
        text_features=None if features is None else features.numpy(),
        **{k: v for k, v in meta["model_options"].items() if k != "with_facts"},
        **extra,
    )
    try:
        _load_weights(net, _state_path(ckpt_dir, "best"), "cpu")
    except RuntimeError as err:  # shapes or names that do not fit the rebuilt model
        raise CheckpointError(
            f"{_state_path(ckpt_dir, 'best')} does not fit {meta['model']}: {err}"
        ) from err
    net = net.to(dev).eval()
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
        checkpoint=_state_path(ckpt_dir, "best"),
        out_dir=run,
        test_warm=saved.get("test_warm", {}),
        test_cold=saved.get("test_cold", {}),
    )
