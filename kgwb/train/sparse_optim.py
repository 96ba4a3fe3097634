"""Row-sparse embedding updates for sampled training: no step cost proportional to the tables.

With dense gradients every BPR step costs ``O(table rows × dim)`` however few rows it
touched: the embedding backward fills a zero gradient of the whole table and scatters into
it, and Adam updates every row (moments and weights).  In sampled mode
(:mod:`kgwb.train.sampler`) a step touches only the rows of its sampled neighbourhood.
:func:`sampled_optimizer` then switches the model's :class:`~torch.nn.Embedding` tables to
sparse gradients (a COO gradient holding only the gathered rows) and updates them with
:class:`RowAdam` — *lazy* Adam (as :class:`torch.optim.SparseAdam`, without its sort; the
update itself is torch's fused Adam kernel on the gathered rows): the moments and weights of
a row change only at steps whose batch touches the row (TensorFlow's ``LazyAdam``, the usual
optimiser of large sparse embedding tables); the other parameters (e.g. the text projection)
keep dense Adam.

When it pays: gathering and scattering rows at random costs about 3× more per row than
streaming over a table (measured on one CPU thread: a step of LightGCN at fan-out 15,10 took
80–96 ms with row-sparse tables vs 64–82 ms dense on the 70k-row ``sample:large``, 292 vs
246 ms on the 260k-row ``sample:xlarge``, where a step touches 50–75% of the rows).  A step
touches at most about ``batch × (1 + f1 + f1·f2)`` rows whatever the table size, so
row-sparse tables win once the table is a few times larger than that: they are used from
:data:`SPARSE_MIN_ROWS` rows (2M) on, dense Adam below — the same update as before this
module existed.  At 10^8 rows a dense Adam step alone would take seconds.

Lazy Adam is not dense Adam: with dense Adam a row keeps moving on its momentum after its last
gradient, and its moments decay at every step.  Full-graph training always keeps dense Adam.
Accuracy with lazy Adam (forced with ``KGWB_SPARSE_MIN_ROWS=0``) against full-graph training:
``benchmarks/bench_scale_out.py accuracy`` (README, "Past one machine").
"""

from __future__ import annotations

import os
from typing import Any

import torch
from torch import nn


def sparse_embeddings(net: nn.Module) -> list[nn.Parameter]:
    """Switch every embedding table of ``net`` to sparse gradients; their weights."""
    weights = []
    for module in net.modules():
        if isinstance(module, nn.Embedding) and module.weight.requires_grad:
            module.sparse = True
            weights.append(module.weight)
    return weights


def gather_rows(table: nn.Embedding, nodes: torch.Tensor) -> torch.Tensor:
    """The rows of ``table`` at ``nodes``, differentiable: a dense table gets
    ``index_select``'s gradient (one ``index_add``; the embedding's own backward sorts the
    indices), a sparse one (:func:`sparse_embeddings`) the embedding's row-sparse gradient."""
    if table.sparse:
        return table(nodes)
    return table.weight.index_select(0, nodes)


class RowAdam(torch.optim.Optimizer):
    """Lazy Adam for row-sparse gradients: only the rows in a step's gradient have their
    moments and weights updated (bias corrections with the global step, as
    :class:`torch.optim.SparseAdam`).  Unlike ``SparseAdam`` it never coalesces nor sorts the
    gradient: duplicate rows are summed through a table-sized scratch index (written and
    read at the gradient's rows only), so a step costs ``O(gradient rows × dim)``."""

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8) -> None:
        super().__init__(params, {"lr": lr, "betas": betas, "eps": eps})
        self._slots: dict[int, torch.Tensor] = {}  # scratch, not state: not checkpointed
        # a table's two moments side by side, ``[rows, 2 × dim]``: a step gathers and writes
        # back one contiguous row per touched row instead of two scattered ones (the state's
        # ``exp_avg`` / ``exp_avg_sq`` are views of it, so checkpoints keep their layout)
        self._moments: dict[int, torch.Tensor] = {}

    @torch.no_grad()
    def step(self, closure=None) -> None:
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["step"] = torch.zeros((), dtype=torch.float64)
                    state["exp_avg"] = torch.zeros_like(p)
                    state["exp_avg_sq"] = torch.zeros_like(p)
                state["step"] += 1
                slot = self._slots.get(id(p))
                if slot is None:
                    slot = torch.full((len(p),), -1, dtype=torch.long, device=p.device)
                    self._slots[id(p)] = slot
                rows, grad = _summed_rows(p.grad, slot)
                if len(rows):
                    _adam_rows(p, rows, grad, state, group, self._moment_block(p, state))

    def _moment_block(self, p: torch.Tensor, state: dict) -> torch.Tensor | None:
        """The ``[rows, 2 × dim]`` block whose halves are ``p``'s moments (made once, and
        again after a checkpoint's state was loaded); ``None`` for a parameter not 2-D."""
        if p.dim() != 2:
            return None
        m, v = state["exp_avg"], state["exp_avg_sq"]
        block = self._moments.get(id(p))
        dim = p.shape[1]
        if (
            block is None
            or m.data_ptr() != block.data_ptr()
            or v.data_ptr() != block[:, dim:].data_ptr()
        ):
            block = torch.cat([m, v], 1)
            state["exp_avg"], state["exp_avg_sq"] = block[:, :dim], block[:, dim:]
            self._moments[id(p)] = block
        return block


def _adam_rows(p, rows, grad, state, group, block=None) -> None:
    """Adam on the rows ``rows`` of ``p`` (gradient ``grad``): the rows and their moments are
    gathered, updated by torch's fused Adam kernel (one pass) and written back; with the
    moments' ``block`` (:meth:`RowAdam._moment_block`) both moments of a row are one read
    and one write."""
    beta1, beta2 = group["betas"]
    if block is not None:
        mv = block.index_select(0, rows)
        # contiguous halves: the fused kernel reads its tensors as flat buffers
        m, v = mv[:, : p.shape[1]].contiguous(), mv[:, p.shape[1] :].contiguous()
    else:
        m = state["exp_avg"].index_select(0, rows)
        v = state["exp_avg_sq"].index_select(0, rows)
    w = p.index_select(0, rows)
    fused = getattr(torch, "_fused_adam_", None)
    try:
        if fused is None or p.dtype != torch.float32:
            raise RuntimeError("no fused kernel")
        # the kernel reads the step count for its bias corrections (incremented by the caller)
        step = state["step"].to(device=p.device, dtype=torch.float32)
        fused(
            [w],
            [grad.to(w.dtype).contiguous()],
            [m],
            [v],
            [],
            [step],
            amsgrad=False,
            lr=group["lr"],
            beta1=beta1,
            beta2=beta2,
            weight_decay=0.0,
            eps=group["eps"],
            maximize=False,
            grad_scale=None,
            found_inf=None,
        )
    except RuntimeError:
        m.lerp_(grad, 1 - beta1)
        v.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        t = float(state["step"])
        step_size = group["lr"] * (1 - beta2**t) ** 0.5 / (1 - beta1**t)
        w.add_(m.div(v.sqrt().add_(group["eps"])).mul_(-step_size).to(w.dtype))
    if block is not None:
        block.index_copy_(0, rows, torch.cat([m, v], 1))
    else:
        state["exp_avg"].index_copy_(0, rows, m)
        state["exp_avg_sq"].index_copy_(0, rows, v)
    p.index_copy_(0, rows, w)


def _summed_rows(grad: torch.Tensor, slot: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(unique rows, their summed gradient)`` of a sparse COO (or dense) row gradient.
    ``slot`` is a scratch index with one entry per table row, all ``-1`` between calls."""
    if not grad.is_sparse:
        rows = torch.arange(len(grad), device=grad.device)
        return rows, grad
    idx, values = grad._indices()[0], grad._values()
    if grad.is_coalesced():
        return idx, values
    pos = torch.arange(len(idx), device=idx.device)
    slot[idx] = pos  # one writer per row wins; its position represents the row
    first = slot[idx] == pos
    rows = idx[first]
    slot[rows] = torch.arange(len(rows), device=idx.device)
    summed = values.new_zeros((len(rows), values.shape[1])).index_add_(0, slot[idx], values)
    slot[rows] = -1
    return rows, summed


class RowSparseAdam:
    """Lazy row-wise Adam (:class:`RowAdam`) for the sparse-gradient tables, dense Adam for
    every other parameter; one optimiser to the training loop (``zero_grad``, ``step``,
    ``state_dict``, ``param_groups`` for a gradient scaler)."""

    def __init__(self, net: nn.Module, lr: float, dense_factory=None) -> None:
        sparse = sparse_embeddings(net)
        ids = {id(p) for p in sparse}
        groups = net.param_groups(lr) if hasattr(net, "param_groups") else None
        if groups is None:
            groups = [{"params": list(net.parameters()), "lr": lr}]
        dense_groups, sparse_groups = [], []
        for group in groups:
            group = dict(group) if isinstance(group, dict) else {"params": group}
            params = list(group.pop("params"))
            rest = {**{"lr": lr}, **group}
            dense = [p for p in params if id(p) not in ids and p.requires_grad]
            rows = [p for p in params if id(p) in ids]
            if dense:
                dense_groups.append({"params": dense, **rest})
            if rows:
                sparse_groups.append({"params": rows, "lr": rest["lr"]})
        self.sparse = RowAdam(sparse_groups, lr=lr) if sparse_groups else None
        self.dense = None
        if dense_groups:
            self.dense = (dense_factory or _dense_adam)(dense_groups, lr)
        self.optimizers = [o for o in (self.sparse, self.dense) if o is not None]

    @property
    def param_groups(self) -> list[dict[str, Any]]:
        return [g for o in self.optimizers for g in o.param_groups]

    @property
    def state(self):
        return {k: v for o in self.optimizers for k, v in o.state.items()}

    def zero_grad(self, set_to_none: bool = True) -> None:
        for o in self.optimizers:
            o.zero_grad(set_to_none=set_to_none)

    def step(self, closure=None) -> None:
        for o in self.optimizers:
            o.step()

    def state_dict(self) -> dict[str, Any]:
        return {
            "row_sparse_adam": 1,
            "sparse": None if self.sparse is None else self.sparse.state_dict(),
            "dense": None if self.dense is None else self.dense.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        from kgwb.train.recommend import CheckpointError

        if "row_sparse_adam" not in state:
            raise CheckpointError(
                "the checkpoint's optimizer is dense Adam (a full-graph run): resume it with "
                "--sampler full, or train the sampled run from scratch"
            )
        for name in ("sparse", "dense"):
            if getattr(self, name) is not None and state.get(name) is not None:
                getattr(self, name).load_state_dict(state[name])


def _dense_adam(groups, lr: float):
    try:
        return torch.optim.Adam(groups, lr=lr, fused=True)
    except (RuntimeError, TypeError):  # a device or dtype without a fused kernel
        return torch.optim.Adam(groups, lr=lr)


#: a sampled run gives its embedding tables row-sparse gradients and lazy Adam when its largest
#: table has at least this many rows (environment variable ``KGWB_SPARSE_MIN_ROWS`` overrides:
#: 0 = always); below, dense Adam is cheaper (module doc)
SPARSE_MIN_ROWS = 2_000_000

#: the same threshold for ``--sampler history`` (:mod:`kgwb.train.history`), whose step touches
#: at most ``3 × batch × (1 + fanout)`` rows (~37k at batch 2048, fan-out 5): one thread, fan-out
#: 5, row-sparse vs dense CPU s/epoch 12.8 vs 12.7 on the 70k-row ``sample:large``, 91 vs 251
#: on the 260k-row ``sample:xlarge``; with the leaner step of issue #14, 18 vs 15 ms a step at
#: 70k rows (19k rows touched: their gathers and scatters wait on memory, 0.7-2.8 ms each with a
#: cold cache, while dense Adam streams the tables at ~57 GB/s in 2.2 ms)
HISTORY_SPARSE_MIN_ROWS = 100_000


def uses_row_sparse(
    net: nn.Module, sparse: bool | None = None, min_rows: int = SPARSE_MIN_ROWS
) -> bool:
    """Whether :func:`sampled_optimizer` makes ``net``'s tables row-sparse: ``sparse`` when
    given, else when the largest table has ``min_rows`` rows or more; never under
    DDP on NCCL (DDP all-reduces sparse gradients on gloo, tested, but NCCL has no sparse
    all-reduce)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized() and dist.get_backend() == "nccl":
        return False
    if sparse is not None:
        return sparse
    rows = [m.num_embeddings for m in net.modules() if isinstance(m, nn.Embedding)]
    threshold = int(os.environ.get("KGWB_SPARSE_MIN_ROWS", min_rows))
    return bool(rows) and max(rows) >= threshold


def optimizer_name(net: nn.Module, sampled: bool, min_rows: int = SPARSE_MIN_ROWS) -> str:
    """What a run's config records as its optimizer."""
    if sampled and uses_row_sparse(net, min_rows=min_rows):
        return "lazy row-wise Adam (tables) + Adam"
    return "Adam"


def sampled_optimizer(
    net: nn.Module, lr: float, *, sparse: bool | None = None, min_rows: int = SPARSE_MIN_ROWS
):
    """The optimiser of a sampled run: row-sparse tables with lazy Adam when
    :func:`uses_row_sparse`, else dense Adam as a full-graph run."""
    if uses_row_sparse(net, sparse, min_rows):
        return RowSparseAdam(net, lr)
    groups = net.param_groups(lr) if hasattr(net, "param_groups") else net.parameters()
    return _dense_adam(list(groups), lr)
