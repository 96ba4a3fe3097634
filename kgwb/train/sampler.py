"""Sampled mini-batch propagation for the GNN recommenders: an epoch whose cost grows linearly
with the interactions.

Full-graph training (the default) propagates over the whole graph at every BPR step, so an
epoch costs ``steps × edges`` — quadratic in the data.  With a :class:`NeighborSampler` each
step propagates only over the L-hop neighbourhood of the batch's users, positive and negative
items, with at most ``fanouts[h]`` neighbours drawn per node at hop ``h`` (GraphSAGE / PyG's
``NeighborLoader``; the per-step cost is bounded by ``batch × Π fanouts``).

Why not PyG's own samplers: ``torch_geometric.sampler.NeighborSampler`` and ``LinkNeighborLoader``
call ``pyg-lib`` or ``torch-sparse`` for the neighbour draw, and neither installs from the
package index for torch 2.13 (``pip download --no-deps pyg-lib torch-sparse``: no pyg-lib
distribution at all; torch-sparse only as an sdist that needs a C++/CUDA build against torch).
The sampler below follows the same design in plain torch (so it also runs on CUDA):

* the graph is a CSR matrix whose row ``u`` holds ``u``'s neighbours and their weights (the
  model's own normalised adjacency, and for ``kgat`` also its attentive KG matrix);
* hop by hop, each newly reached node draws ``min(degree, fanout)`` neighbours (all of them when
  the degree is within the fan-out, else uniformly with replacement), each node is expanded at
  most once, and nodes get local ids in the order they are reached — so the rows of the nodes
  within ``h`` hops are a prefix of the sampled matrix;
* a sampled entry keeps its weight times ``degree / drawn`` (the GraphSAGE estimator): the
  sampled aggregation is an unbiased estimate of the full one, and exact when the fan-out
  covers the degree;
* layer ``l`` of an ``L``-layer model is computed only for the nodes within ``L - l`` hops of
  the batch (a row prefix), so the last layer touches the batch alone.

Models opt in with three small methods (:class:`SampledModel`): their full sparse matrices
(:meth:`sampling_graphs`), the layer-0 embeddings of given nodes (:meth:`layer0_nodes`) and one
propagation layer over sampled matrices (:meth:`sampled_layer`); evaluation and recommendation
keep propagating over the whole graph (once per evaluation, not once per step).  ``lightgcn``
(with or without text) implements them; the two-tower ``kgat`` (LightGCN backbone + gated KG
tower) does not yet, and ``--sampler neighbors`` says so for it.

On graphs where a batch's L-hop sample is large, :mod:`kgwb.train.history` (``--sampler
history``) draws one hop only and takes the deeper layers from per-epoch historical
embeddings, reusing :class:`NeighborSampler` for its one-hop draw.

A step therefore costs what it samples; on tables of 2M rows or more the embedding gradients
are row-sparse too, with a lazy row-wise Adam (:mod:`kgwb.train.sparse_optim`), so that no
step cost is proportional to the tables.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Protocol

import torch
from torch.nn import functional as F

from kgwb.errors import KgwbError  # noqa: F401

# the names and fan-out parsing live with the config (no torch): kgwb train --help stays fast
from kgwb.train.config import SAMPLERS, SamplerError, parse_fanouts  # noqa: F401


class SampledModel(Protocol):
    layers: int
    n_users: int

    def sampling_graphs(self) -> dict[str, torch.Tensor]: ...

    def layer0_nodes(self, nodes: torch.Tensor) -> torch.Tensor: ...

    def sampled_layer(
        self, layer: int, x: torch.Tensor, graphs: dict[str, torch.Tensor]
    ) -> torch.Tensor: ...


@dataclass(frozen=True)
class SamplerConfig:
    """``name`` from :data:`SAMPLERS`; ``fanouts[h]`` neighbours per node at hop ``h + 1``."""

    name: str = "full"
    fanouts: tuple[int, ...] = (15, 10)
    refresh: int = 0  # history: recompute the history every `refresh` steps (0: per epoch)

    def __post_init__(self) -> None:
        if self.name not in SAMPLERS:
            raise SamplerError(
                f"unknown sampler {self.name!r}; choose one of: {', '.join(SAMPLERS)}"
            )

    @property
    def sampled(self) -> bool:
        return self.name != "full"

    @property
    def sparse_min_rows(self) -> int:
        """Table rows from which the run's tables are row-sparse (:mod:`kgwb.train.sparse_optim`)."""
        from kgwb.train.sparse_optim import HISTORY_SPARSE_MIN_ROWS, SPARSE_MIN_ROWS

        return HISTORY_SPARSE_MIN_ROWS if self.name == "history" else SPARSE_MIN_ROWS

    def to_dict(self) -> dict:
        out = {"name": self.name, "fanouts": list(self.fanouts) if self.sampled else None}
        if self.name == "history":
            out["history_refresh_steps"] = self.refresh or None  # None: once per epoch
        return out


@dataclass
class SampledSubgraph:
    """Global ids of the sampled nodes (the ``n_seeds`` seeds first, then hop by hop) and, per
    layer, the sampled matrices restricted to the rows that layer must compute."""

    nodes: torch.Tensor
    n_seeds: int
    layers: list[dict[str, torch.Tensor]]


class _CSR:
    """Row pointers, columns and values of one full graph (rows = receivers)."""

    def __init__(self, matrix: torch.Tensor) -> None:
        if matrix.layout != torch.sparse_csr:
            matrix = matrix.to_sparse_csr()
        self.ptr = matrix.crow_indices().long()
        self.col = matrix.col_indices().long()
        self.val = matrix.values()
        self.n = matrix.shape[0]

    def draw(
        self, seeds: torch.Tensor, fanout: int, generator: torch.Generator | None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(count per seed, neighbour, weight)``: all neighbours of a seed whose degree is
        within ``fanout``, else ``fanout`` drawn with replacement, weights scaled by
        ``degree / drawn``."""
        start = self.ptr.index_select(0, seeds)
        degree = self.ptr.index_select(0, seeds + 1) - start
        count = degree.clamp(max=fanout)
        total = int(count.sum())
        owner = torch.repeat_interleave(torch.arange(len(seeds), device=seeds.device), count)
        first = torch.cumsum(count, 0) - count
        rank = torch.arange(total, device=seeds.device) - first.index_select(0, owner)
        deg = degree.index_select(0, owner)
        draw = torch.rand(total, device=seeds.device, generator=generator)
        offset = torch.where(deg <= fanout, rank, (draw * deg).long().clamp(max=deg - 1))
        pos = start.index_select(0, owner) + offset
        scale = deg.to(self.val.dtype) / count.index_select(0, owner).to(self.val.dtype)
        return count, self.col.index_select(0, pos), self.val.index_select(0, pos) * scale


class NeighborSampler:
    """Samples the L-hop neighbourhood of a batch in the graphs of a model (see module doc)."""

    def __init__(self, graphs: dict[str, torch.Tensor], fanouts: tuple[int, ...]) -> None:
        self.graphs = {name: _CSR(m) for name, m in graphs.items()}
        self.fanouts = tuple(fanouts)
        n = next(iter(self.graphs.values())).n
        device = next(iter(self.graphs.values())).ptr.device
        self._local = torch.full((n,), -1, dtype=torch.long, device=device)

    def sample(
        self, seeds: torch.Tensor, generator: torch.Generator | None = None
    ) -> SampledSubgraph:
        """Sample around ``seeds`` (unique global node ids)."""
        local = self._local
        nodes = [seeds]
        bounds = [0, len(seeds)]  # nodes[:bounds[h+1]] are the nodes within h hops
        local[seeds] = torch.arange(len(seeds), device=seeds.device)
        frontier = seeds
        hops: list[dict[str, tuple]] = []
        try:
            for fanout in self.fanouts:
                drawn = {
                    name: g.draw(frontier, fanout, generator) for name, g in self.graphs.items()
                }
                reached = torch.cat([nbr for _, nbr, _ in drawn.values()])
                # distinct first (no sort), then sorted: gathers in increasing row order
                new = _first_seen(reached[local[reached] < 0], local).sort().values
                local[new] = torch.arange(bounds[-1], bounds[-1] + len(new), device=seeds.device)
                nodes.append(new)
                bounds.append(bounds[-1] + len(new))
                hops.append(
                    {
                        name: (count, local.index_select(0, nbr), w)
                        for name, (count, nbr, w) in drawn.items()
                    }
                )
                frontier = new
        finally:
            all_nodes = torch.cat(nodes)
            local[all_nodes] = -1
        return SampledSubgraph(all_nodes, len(seeds), _layer_matrices(hops, bounds))


def _first_seen(ids: torch.Tensor, scratch: torch.Tensor) -> torch.Tensor:
    """The distinct values of ``ids`` (node ids whose ``scratch`` entry is ``-1``) without a
    sort: each position writes itself into ``scratch``; one writer per node wins and stands
    for it.  ``O(len(ids))`` (``torch.unique`` sorts); ``scratch`` is left as it was."""
    pos = torch.arange(len(ids), device=ids.device)
    scratch[ids] = pos
    new = ids[scratch[ids] == pos]
    scratch[ids] = -1
    return new


def _layer_matrices(hops: list[dict[str, tuple]], bounds: list[int]) -> list[dict]:
    """Per layer ``l`` (1-based), the matrix from the nodes within ``L - l + 1`` hops to those
    within ``L - l`` hops.  Rows of hop-``h`` nodes were drawn at hop ``h + 1``, in local-id
    order, so the rows of the first ``m`` nodes are a prefix of the concatenated draws."""
    n_layers = len(hops)
    names = list(hops[0])
    full = {
        name: (
            torch.cat([h[name][0] for h in hops]),
            torch.cat([h[name][1] for h in hops]),
            torch.cat([h[name][2] for h in hops]),
        )
        for name in names
    }
    out = []
    for layer in range(1, n_layers + 1):
        rows, cols = bounds[n_layers - layer + 1], bounds[n_layers - layer + 2]
        mats = {}
        for name, (count, col, val) in full.items():
            ptr = torch.zeros(rows + 1, dtype=torch.long, device=col.device)
            ptr[1:] = torch.cumsum(count[:rows], 0)
            nnz = int(ptr[-1])
            mats[name] = _sparse(ptr, col[:nnz], val[:nnz], (rows, cols))
        out.append(mats)
    return out


def _sparse(ptr, col, val, shape) -> torch.Tensor:
    with warnings.catch_warnings():  # "sparse CSR support is in beta state"
        warnings.simplefilter("ignore", UserWarning)
        return torch.sparse_csr_tensor(ptr, col, val, shape, check_invariants=False)


#: the backward of a sampled matmul scatters into its gradient (``index_add``, no sort) when the
#: matrix has at most this many entries per column and the gradient is at most
#: :data:`SCATTER_BACKWARD_MAX_BYTES`, else it multiplies by the transpose built with one sort.
#: One CPU thread, 64 columns: 0.25-0.47 vs 0.7-6 ms for the one-hop matrices of ``--sampler
#: history`` (10-26k entries, 1.4-2.7 per column); the 2-hop samples of ``--sampler neighbors``
#: (7-15 entries per column) keep the transpose, which does not materialise one row per entry
SCATTER_BACKWARD_MAX_ENTRIES_PER_COLUMN = 4
SCATTER_BACKWARD_MAX_BYTES = 8 << 20


class _SampledMatmul(torch.autograd.Function):
    """``A @ X`` for a sampled constant ``A``; the backward is ``A^T @ grad``: each entry's
    weighted row of ``grad`` added to its column's row (few entries per column, small
    gradients: :data:`SCATTER_BACKWARD_MAX_ENTRIES_PER_COLUMN`), or a multiplication by ``A^T``
    built as CSR by one sort of the columns."""

    @staticmethod
    def forward(ctx, a: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(a.crow_indices(), a.col_indices(), a.values())
        ctx.n_cols, ctx.dtype = a.shape[1], x.dtype
        with torch.autocast(x.device.type, enabled=False):
            return torch.sparse.mm(a, x.to(a.dtype))

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        ptr, col, val = ctx.saved_tensors
        n_rows = len(ptr) - 1
        rows = torch.repeat_interleave(torch.arange(n_rows, device=ptr.device), ptr.diff())
        grad = grad.to(val.dtype)
        scatter = len(col) <= SCATTER_BACKWARD_MAX_ENTRIES_PER_COLUMN * ctx.n_cols
        if (
            scatter
            and ctx.n_cols * grad.shape[1] * grad.element_size() <= SCATTER_BACKWARD_MAX_BYTES
        ):
            contrib = grad.index_select(0, rows).mul_(val.unsqueeze(1))
            out = grad.new_zeros((ctx.n_cols, grad.shape[1])).index_add_(0, col, contrib)
            return None, out.to(ctx.dtype)
        order = torch.argsort(col)  # the transpose in CSR: rows = this matrix's columns
        t_ptr = torch.zeros(ctx.n_cols + 1, dtype=torch.long, device=ptr.device)
        t_ptr[1:] = torch.cumsum(torch.bincount(col, minlength=ctx.n_cols), 0)
        a_t = _sparse(
            t_ptr, rows.index_select(0, order), val.index_select(0, order), (ctx.n_cols, n_rows)
        )
        with torch.autocast(grad.device.type, enabled=False):
            out = torch.sparse.mm(a_t, grad.contiguous())
        return None, out.to(ctx.dtype)


def sampled_matmul(a: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``a @ x`` for a sampled layer matrix (see :class:`NeighborSampler`)."""
    return _SampledMatmul.apply(a, x)


def propagate_sampled(model: SampledModel, sub: SampledSubgraph) -> torch.Tensor:
    """Final representations of ``sub``'s seeds: the mean over layers, as the full models."""
    x = model.layer0_nodes(sub.nodes)
    total = x[: sub.n_seeds]
    for layer, graphs in enumerate(sub.layers):
        x = model.sampled_layer(layer, x[: next(iter(graphs.values())).shape[1]], graphs)
        total = total + x[: sub.n_seeds]
    return total / (len(sub.layers) + 1)


def sampled_training(model, config: SamplerConfig):
    """The step helper of a sampled run: :class:`SampledTraining` (``neighbors``) or
    :class:`~kgwb.train.history.HistoryTraining` (``history``); ``None`` for ``full``."""
    if not config.sampled:
        return None
    if config.name == "history":
        from kgwb.train.history import HistoryTraining

        return HistoryTraining(model, config)
    return SampledTraining(model, config)


class SampledTraining:
    """What a training step needs in sampled mode: the sampler, rebuilt when the model's graphs
    change (``kgat``'s attention is recomputed every epoch)."""

    def __init__(self, model, config: SamplerConfig) -> None:
        for method in ("sampling_graphs", "layer0_nodes", "sampled_layer"):
            if not hasattr(model, method):
                raise SamplerError(
                    f"model {getattr(model, 'name', type(model).__name__)!r} does not support "
                    f"sampled training (use --sampler full)"
                )
        self.model, self.config = model, config
        self.sampler: NeighborSampler | None = None

    def on_epoch_start(self) -> None:
        self.sampler = NeighborSampler(self.model.sampling_graphs(), self.config.fanouts)

    def bpr_loss(self, users, pos, neg, reg: float, generator) -> tuple[torch.Tensor, torch.Tensor]:
        """The model's BPR loss and L2 penalty with sampled representations of the batch."""
        net = self.model
        n_users = net.n_users
        batch = torch.cat([users, pos + n_users, neg + n_users])
        seeds, inverse = torch.unique(batch, return_inverse=True)
        sub = self.sampler.sample(seeds, generator)
        u, p, n = propagate_sampled(net, sub).index_select(0, inverse).chunk(3)
        diff = (u * p).sum(-1) - (u * n).sum(-1)
        bpr = F.softplus(-diff).mean()
        l2 = sum(e.float().pow(2).sum() for e in net.ego(users, pos, neg))
        return bpr, reg * 0.5 * l2 / len(users)
