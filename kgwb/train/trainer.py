"""The recommenders' epoch loop: a small :class:`Trainer` and the callbacks it calls.

:class:`Trainer` owns what every epoch does the same way — seeded shuffling and negatives (a
generator seeded with ``(seed, epoch)``, so a resumed run draws what an uninterrupted one
draws), BPR steps (under autocast on CUDA), the DDP shard/wrap/mean hooks of
:class:`~kgwb.train.distributed.DistContext` — and builds one curve row per epoch.  What
happens around an epoch is a :class:`Callback`, called in list order:

* :class:`Validation` — valid Recall@20 every ``eval_every`` epochs on rank 0 (broadcast to
  the others), the mix choice of a model with ``mix_scorers`` (``kgat``), the best epoch and
  its weights in memory;
* :class:`Checkpoint` — ``best.safetensors`` when validation improved, then
  ``last.safetensors`` + optimizer + ``train_state.json`` (atomic writes, :mod:`kgwb.atomic`);
  :meth:`Checkpoint.resume` restores them before :meth:`Trainer.fit`;
* :class:`TensorBoard` — the row's scalars (when the optional package is installed);
* :class:`Progress` — the tqdm bar and one log line per epoch;
* :class:`EarlyStopping` — stops after ``patience`` evaluations without a better Recall@20.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from kgwb.atomic import write_json, write_with
from kgwb.errors import KgwbError
from kgwb.train.distributed import DistContext
from kgwb.train.metrics import DEFAULT_KS, evaluate_full_ranking

log = logging.getLogger(__name__)

REPORTED_METRICS = tuple(
    f"{m}@{k}" for k in DEFAULT_KS for m in ("recall", "ndcg", "hit", "precision")
)


class CheckpointError(KgwbError):
    """A checkpoint is missing or was written by a run with another configuration."""


# ------------------------------------------------------------------------------ pieces
class NegativeSampler:
    """Uniform negatives on the device, redrawn where they are train positives of the user.

    A fixed number of redraw rounds, without reading anything back to the host (no per-batch
    synchronisation on CUDA); with a user's share of the catalogue ``p``, a negative is still a
    positive after ``rounds`` redraws with probability ``p ** (rounds + 1)``.
    """

    def __init__(self, train, n_items: int, device, rounds: int = 4, exclude=None) -> None:
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
        if self.candidates is None:
            return torch.randint(
                self.n_items, users.shape, device=users.device, generator=generator
            )
        pick = torch.randint(
            len(self.candidates), users.shape, device=users.device, generator=generator
        )
        return self.candidates[pick]

    def _positive(self, users, items):
        """Whether each ``(user, item)`` is a train pair: a binary search in the sorted keys."""
        keys = users * self.n_items + items
        at = torch.searchsorted(self.keys, keys).clamp(max=len(self.keys) - 1)
        return self.keys.index_select(0, at) == keys

    def __call__(self, users, generator):
        neg = self._draw(users, generator)
        if neg.device.type != "cpu":  # every round checks the whole batch: no host sync
            for _ in range(self.rounds):
                redraw = self._draw(users, generator)
                neg = torch.where(self._positive(users, neg), redraw, neg)
            return neg
        # on CPU a round checks only the negatives it redrew (the others stay negatives): the
        # same draws and result, one binary search per batch entry instead of `rounds + 1`
        # (each a cache miss or more in a table of 10^6 keys)
        hit = torch.nonzero(self._positive(users, neg)).flatten()
        for _ in range(self.rounds):
            redraw = self._draw(users, generator)  # drawn for all: the same random stream
            if len(hit):
                neg[hit] = redraw[hit]
                hit = hit[self._positive(users[hit], neg[hit])]
        return neg


class TrainStep(nn.Module):
    """One BPR step's losses as a module call, so that DistributedDataParallel can hook it."""

    def __init__(self, net, sampled) -> None:
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


def adam(net, lr: float):
    """Adam, fused (one kernel for all parameters: ~3× faster steps on CPU) where supported."""
    params = net.param_groups(lr) if hasattr(net, "param_groups") else net.parameters()
    params = list(params)
    try:
        return torch.optim.Adam(params, lr=lr, fused=True)
    except (RuntimeError, TypeError):  # a device or dtype without a fused kernel
        return torch.optim.Adam(params, lr=lr)


class Evaluator:
    """Full-ranking evaluation of a split (inputs moved to the device once)."""

    def __init__(self, data, device, batch_size: int = 1024) -> None:
        has_train = np.zeros(data.n_users, dtype=bool)
        has_train[data.train[:, 0]] = True
        self.data, self.device, self.batch_size = data, device, batch_size
        self.users = torch.as_tensor(np.flatnonzero(has_train), device=device)
        self.splits = {
            name: torch.as_tensor(data.split(name), device=device)
            for name in ("train", "valid", "test")
        }

    def rank(self, score, split: str, positives=None) -> dict[str, float]:
        exclude = [self.splits["train"]] + ([self.splits["valid"]] if split == "test" else [])
        return evaluate_full_ranking(
            score,
            self.splits[split] if positives is None else positives,
            n_users=self.data.n_users,
            n_items=self.data.n_items,
            exclude=exclude,
            users=self.users,
            batch_size=self.batch_size,
            device=self.device,
        )

    def __call__(self, net, split: str, choose_mix: bool = False, positives=None) -> dict:
        net.eval()
        with torch.no_grad():  # full precision: bf16 scores would tie and reorder items
            # a model with a mix of towers (kgat over its LightGCN backbone) keeps the mix
            # weight it chooses from each weight's Recall@20 on this (validation) split
            candidates = net.mix_scorers() if choose_mix and hasattr(net, "mix_scorers") else {}
            if candidates:
                scored = {a: self.rank(score, split) for a, score in candidates.items()}
                pick = net.choose_mix({a: r["recall@20"] for a, r in scored.items()})
                net.mix.fill_(pick)
                res = {**scored[pick], "mix": pick}
            else:
                res = self.rank(net.scorer(), split, positives)
        res["users_without_train_items"] = int(
            self.data.stats.get(f"{split}_users_without_train_items", 0)
        )
        return res


# ------------------------------------------------------------------------------ the loop
class Callback:
    """Hooks of :class:`Trainer`; each gets the trainer (``trainer.row`` is the epoch's row)."""

    def on_train_start(self, trainer: Trainer) -> None:
        """Before the first epoch."""

    def on_epoch_end(self, trainer: Trainer) -> None:
        """After an epoch's steps (the row is already in ``trainer.curve``)."""

    def on_train_end(self, trainer: Trainer) -> None:
        """After the last epoch (also after an early stop)."""


@dataclass
class Trainer:
    """BPR training of ``net`` on ``data.train`` with the run's ``seed``: :meth:`fit` runs
    epochs ``start_epoch..epochs`` and calls ``callbacks`` in order."""

    net: Any
    data: Any
    device: Any
    seed: int
    epochs: int
    batch_size: int
    reg: float
    optimizer: Any
    ddp: DistContext = field(default_factory=DistContext)
    sampled: Any = None
    callbacks: list[Callback] = field(default_factory=list)
    # state a callback reads or changes (restored by Checkpoint.resume)
    curve: list[dict[str, Any]] = field(default_factory=list)
    best: dict[str, Any] = field(default_factory=lambda: {"epoch": 0, "recall@20": -1.0, "bad": 0})
    start_epoch: int = 1
    eval_seconds: float = 0.0
    row: dict[str, Any] = field(default_factory=dict)
    stop: bool = False
    improved: bool = False

    @property
    def train_seconds(self) -> list[float]:
        return [c["train_seconds"] for c in self.curve if "train_seconds" in c]

    def fit(self) -> None:
        dev = self.device
        self.negatives = NegativeSampler(
            self.data.train, self.data.n_items, dev, exclude=self.data.cold_items
        )
        self.step = self.ddp.wrap(TrainStep(self.net, self.sampled))
        self.pairs = torch.as_tensor(self.data.split("train"), device=dev)
        self.gen = torch.Generator(device=dev)
        self.subgraph_gen = torch.Generator(device=dev)
        use_amp = dev.type == "cuda"
        self.amp_dtype = (
            torch.bfloat16 if use_amp and torch.cuda.is_bf16_supported() else torch.float16
        )
        self.scaler = torch.amp.GradScaler(
            "cuda", enabled=use_amp and self.amp_dtype == torch.float16
        )
        for cb in self.callbacks:
            cb.on_train_start(self)
        for epoch in range(self.start_epoch, self.epochs + 1):
            self.row = self.train_epoch(epoch)
            self.curve.append(self.row)
            for cb in self.callbacks:
                cb.on_epoch_end(self)
            if self.stop:
                break
        for cb in self.callbacks:
            cb.on_train_end(self)

    def train_epoch(self, epoch: int) -> dict[str, Any]:
        """One pass over the shuffled train pairs; the epoch's curve row."""
        net, dev, ddp, gen = self.net, self.device, self.ddp, self.gen
        net.train()
        gen.manual_seed(self.seed * 1_000_003 + epoch)
        t0, cpu0 = time.perf_counter(), time.process_time()
        net.on_epoch_start(gen)
        if self.sampled is not None:
            self.sampled.on_epoch_start()
            self.subgraph_gen.manual_seed((self.seed * 1_000_003 + epoch) * 4099 + ddp.rank)
        perm = torch.randperm(len(self.pairs), device=dev, generator=gen)
        totals = torch.zeros(3, device=dev)  # bpr, l2, aux
        n_batches = 0
        for start in range(0, len(perm), self.batch_size):
            # index_select: a gather of whole rows, several times faster than pairs[index]
            batch = self.pairs.index_select(0, perm[start : start + self.batch_size])
            totals += self.train_batch(batch)
            n_batches += 1
        if ddp.active:
            totals = ddp.mean(totals)
        loss, reg, aux = (float(t) / max(n_batches, 1) for t in totals)
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        seconds = time.perf_counter() - t0
        return {
            "epoch": epoch,
            "loss": loss,
            "reg_loss": reg,
            "aux_loss": aux,
            "train_seconds": seconds,
            # this process's CPU seconds (all its threads): on a busy machine the wall time
            # above includes waiting for a core, this does not
            "train_cpu_seconds": time.process_time() - cpu0,
        }

    def train_batch(self, batch) -> torch.Tensor:
        """One optimiser step on a global batch (this rank's shard of it); its detached
        ``(bpr, l2, aux)`` losses."""
        dev = self.device
        users, pos = batch[:, 0], batch[:, 1]
        neg = self.negatives(users, self.gen)  # the whole batch's: same stream on every rank
        users, pos, neg = self.ddp.shard(users, pos, neg)
        with torch.autocast(dev.type, dtype=self.amp_dtype, enabled=dev.type == "cuda"):
            loss, bpr, l2, aux = self.step(
                users, pos, neg, self.reg, len(batch), self.gen, self.subgraph_gen
            )
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        zero = torch.zeros((), device=dev)
        losses = (bpr, l2, zero if aux is None else aux)
        return torch.stack([x.detach().float() for x in losses])


# ------------------------------------------------------------------------------ callbacks
class Validation(Callback):
    """Valid metrics every ``every`` epochs (and at the last), on rank 0; tracks the best
    epoch by Recall@20 (``trainer.best``; ``trainer.improved`` after an evaluation) and keeps
    the best weights in memory (``best_state``, rank 0)."""

    def __init__(self, evaluate: Evaluator, every: int) -> None:
        self.evaluate, self.every = evaluate, every
        self.best_state: dict[str, torch.Tensor] | None = None

    def on_epoch_end(self, trainer: Trainer) -> None:
        trainer.improved = False
        epoch, row, ddp = trainer.row["epoch"], trainer.row, trainer.ddp
        if not (epoch % self.every == 0 or epoch == trainer.epochs):
            return
        t1 = time.perf_counter()
        if ddp.is_main:
            valid = self.evaluate(trainer.net, "valid", choose_mix=True)
        else:
            valid = {"recall@20": 0.0}
        trainer.eval_seconds += time.perf_counter() - t1
        valid["recall@20"] = ddp.broadcast(valid["recall@20"])  # rank 0 decides
        if ddp.is_main:
            row.update({f"valid_{k}": valid[k] for k in REPORTED_METRICS})
            if "mix" in valid:
                row["valid_mix"] = valid["mix"]
        if valid["recall@20"] > trainer.best["recall@20"]:
            trainer.best = {"epoch": epoch, "recall@20": valid["recall@20"], "bad": 0}
            trainer.improved = True
            if ddp.is_main:
                state = trainer.net.state_dict()
                self.best_state = {k: v.detach().clone() for k, v in state.items()}
        else:
            trainer.best["bad"] += 1


class EarlyStopping(Callback):
    """Stop after ``patience`` evaluations without a better valid Recall@20."""

    def __init__(self, patience: int) -> None:
        self.patience = patience

    def on_epoch_end(self, trainer: Trainer) -> None:
        if trainer.best["bad"] >= self.patience:
            log.info(
                "early stop at epoch %d (best %d)", trainer.row["epoch"], trainer.best["epoch"]
            )
            trainer.stop = True


def state_path(ckpt_dir: Path, name: str) -> Path:
    return ckpt_dir / f"{name}.safetensors"


def save_weights(model, path: Path) -> None:
    from safetensors.torch import save_file

    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    write_with(path, lambda tmp: save_file(state, str(tmp)))


def load_weights(model, path: Path, device) -> None:
    from safetensors.torch import load_file

    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} not found")
    model.load_state_dict(load_file(str(path), device=str(device)))


def read_json(path: Path) -> dict[str, Any]:
    """A JSON object kgwb wrote; a damaged one is a CheckpointError naming the file."""
    import json

    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{path}: damaged ({e}); train again without --resume") from None
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path}: damaged (not a JSON object)")
    return obj


#: what a resumed run must share with the run it continues
RESUME_KEYS = ("dataset", "model", "dim", "layers", "lr", "batch_size", "reg", "seed")


class Checkpoint(Callback):
    """``best.safetensors`` when validation improved; ``last.safetensors``, the optimizer and
    ``train_state.json`` (epoch, run config, curve, best) after every epoch — all atomic."""

    def __init__(self, folder: Path, config: dict[str, Any]) -> None:
        self.folder, self.config = folder, config

    def on_epoch_end(self, trainer: Trainer) -> None:
        if trainer.improved:
            save_weights(trainer.net, state_path(self.folder, "best"))
        save_weights(trainer.net, state_path(self.folder, "last"))
        optimizer = trainer.optimizer
        write_with(
            self.folder / "last_optimizer.pt", lambda tmp: torch.save(optimizer.state_dict(), tmp)
        )
        state = {
            "epoch": trainer.row["epoch"],
            "config": self.config,
            "curve": trainer.curve,
            "best": trainer.best,
        }
        write_json(self.folder / "train_state.json", json_safe(state), indent=1)

    @staticmethod
    def resume(trainer: Trainer, folder: Path, config: dict[str, Any]) -> None:
        """Restore the weights, optimizer, curve and best of the run saved in ``folder``
        (refused when it was trained with another configuration)."""
        state_file = folder / "train_state.json"
        if not state_file.is_file():
            raise CheckpointError(f"nothing to resume: {state_file} not found")
        saved = read_json(state_file)
        for key in RESUME_KEYS:
            if saved["config"].get(key) != config[key]:
                raise CheckpointError(
                    f"checkpoint in {folder} was trained with {key}={saved['config'].get(key)!r}, "
                    f"this run asks for {config[key]!r}"
                )
        cold = config["cold_items"]
        if saved["config"].get("cold_items", 0.0) != cold:  # another split
            raise CheckpointError(
                f"checkpoint in {folder} was trained with cold_items="
                f"{saved['config'].get('cold_items', 0.0)!r}, this run asks for {cold!r}"
            )
        load_weights(trainer.net, state_path(folder, "last"), trainer.device)
        if trainer.optimizer is not None:
            trainer.optimizer.load_state_dict(
                torch.load(
                    folder / "last_optimizer.pt", map_location=trainer.device, weights_only=True
                )
            )
        trainer.curve, trainer.best = saved["curve"], saved["best"]
        trainer.start_epoch = saved["epoch"] + 1
        log.info("resuming %s from epoch %d", config["model"], saved["epoch"])


class TensorBoard(Callback):
    """The row's scalars under ``out/tensorboard`` (``loss`` → ``loss``, ``valid_recall@20``
    → ``valid/recall@20``); nothing when the optional ``tensorboard`` package is missing."""

    def __init__(self, out: Path) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:  # tensorboard is optional
            self.writer = None
        else:
            self.writer = SummaryWriter(log_dir=str(out / "tensorboard"))

    def on_epoch_end(self, trainer: Trainer) -> None:
        if self.writer is not None:
            for key, value in trainer.row.items():
                if key != "epoch":
                    self.writer.add_scalar(key.replace("_", "/", 1), value, trainer.row["epoch"])

    def on_train_end(self, trainer: Trainer) -> None:
        if self.writer is not None:
            self.writer.close()


def progress_enabled(progress: bool) -> bool:
    flag = os.environ.get("TQDM_DISABLE", "").strip().lower()
    return progress and flag not in {"1", "true", "yes", "on"}


class Progress(Callback):
    """A tqdm bar over epochs (loss and valid Recall@20) and one log line per epoch."""

    def __init__(self, name: str, enabled: bool) -> None:
        self.name, self.enabled = name, enabled

    def on_train_start(self, trainer: Trainer) -> None:
        from tqdm.auto import tqdm

        self.bar = tqdm(
            total=trainer.epochs,
            initial=trainer.start_epoch - 1,
            desc=f"train {self.name}",
            unit="epoch",
            disable=not self.enabled,
        )

    def on_epoch_end(self, trainer: Trainer) -> None:
        row = trainer.row
        self.bar.update(1)
        self.bar.set_postfix(
            loss=f"{row['loss']:.4f}", r20=f"{row.get('valid_recall@20', float('nan')):.4f}"
        )
        log.info(
            "epoch %d loss %.4f valid recall@20 %s (%.2fs)",
            row["epoch"],
            row["loss"],
            row.get("valid_recall@20"),
            row["train_seconds"],
        )

    def on_train_end(self, trainer: Trainer) -> None:
        self.bar.close()


def json_safe(obj: Any) -> Any:
    """``obj`` with non-finite floats as None and numpy scalars as Python ones."""
    import math

    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [json_safe(v) for v in obj]
    if isinstance(obj, np.integer | np.floating):
        return json_safe(obj.item())
    return obj
