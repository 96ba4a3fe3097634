"""Sampled training with historical embeddings: a step costs ``batch × fan-out`` of ONE hop.

``--sampler neighbors`` (:mod:`kgwb.train.sampler`) expands every batch to its L-hop sampled
neighbourhood; on graphs whose 2-hop neighbourhoods are large (``sample:large``: 52k nodes /
400k edges per step at fan-out 15,10) a step costs several times more than on a small graph
whose whole node set a batch already covers, and the epoch grows faster than the data.

``--sampler history`` bounds a step by ONE hop, with historical embeddings as in GNNAutoScale
(Fey et al., ICML 2021) and the control variate of VR-GCN (Chen, Zhu & Song, ICML 2018).  At
the start of every epoch (and, with ``--history-refresh K``, every ``K`` steps) one full
sparse propagation without gradient (``O(L × edges)``: linear) stores, for every node, its
layer-0 embedding ``h^(0)_v`` and the sum of its propagated layers ``s_v = Σ_{l=1..L} h^(l)_v``.
A step then represents each seed ``v`` (the batch's users, positive and negative items) as::

    z_v = ( e^(0)_v + s_v + Σ_{u ∈ S(v)} w'_vu (e^(0)_u − h^(0)_u) ) / (L + 1)

* ``e^(0)``: the embedding table (with text features, as the model's layer 0): gradient;
* ``S(v)``: at most ``fanout`` neighbours drawn once for the step (the one-hop draw of
  :class:`~kgwb.train.sampler.NeighborSampler`, weights ``w'_vu = w_vu · degree / drawn``,
  the GraphSAGE estimator; all neighbours, unscaled, when the degree is within the fan-out);
* the sum is VR-GCN's correction of the first layer for how far the weights moved since the
  history: ``h^(1)_v + Σ w' (e^(0) − h^(0))`` is an unbiased estimate of the current first layer
  whose variance shrinks with the drift (zero right after a refresh, whatever the fan-out), so
  a small fan-out suffices; the deeper layers ``h^(2..L)_v`` are the history's own, stale by at
  most one epoch (``K`` steps).

Why this rather than aggregating the neighbours' histories ``Σ_u w'_vu h^(l-1)_u`` for the
deeper layers (GNNAutoScale's form): with full neighbourhoods that sum *is* ``h^(l)_v`` from
the same history, so sampling it only adds variance and work.  Exactness: with a fresh history
(or a fan-out covering the degrees) ``z_v`` equals full-graph LightGCN's representation
(``tests/test_scale_out.py``).  Gradient: through layer 0 and the sampled first layer (an
unbiased estimate of that layer's gradient); the deeper layers' gradient into the 2-hop rows
is dropped, as in GNNAutoScale.  A step touches the rows of the seeds and their sampled
neighbours, at most ``3 × batch × (1 + fanout)``, with one sampled matmul; an epoch costs
``steps × batch × fanout`` plus ``(1 + steps / K) × L × edges``, both linear in the
interactions.  Memory: two ``nodes × dim`` tables besides the model.

When to use it: graphs on which the ``neighbors`` sample of a batch is large (average degrees
above the fan-outs, ~10^5 nodes and more); on small graphs the full-graph default is faster.
Only models with the :class:`~kgwb.train.sampler.SampledModel` methods (``lightgcn``,
``lightgcn+text``) support it.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from kgwb.train.config import SamplerError
from kgwb.train.sampler import NeighborSampler, SamplerConfig, _sparse


class HistoryTraining:
    """What a training step needs in ``history`` mode: the one-hop sampler over the model's
    full graphs and the history of every node (module doc)."""

    def __init__(self, model, config: SamplerConfig) -> None:
        missing = [
            m for m in ("sampling_graphs", "layer0_nodes", "sampled_layer") if not hasattr(model, m)
        ]
        if missing:
            raise SamplerError(
                f"model {getattr(model, 'name', type(model).__name__)!r} does not support "
                f"sampled training with --sampler history (it lacks {', '.join(missing)}; "
                "supported: lightgcn, lightgcn+text); use --sampler full"
            )
        self.model, self.config = model, config
        self.fanout = int(config.fanouts[0])
        self.refresh = int(config.refresh)
        self.sampler: NeighborSampler | None = None
        self.layer0: torch.Tensor | None = None  # h^(0) of every node
        self.history: torch.Tensor | None = None  # Σ_{l>=1} h^(l) of every node
        self.steps = 0

    def on_epoch_start(self) -> None:
        self.sampler = NeighborSampler(self.model.sampling_graphs(), (self.fanout,))
        self.steps = 0
        self.refresh_history()

    @torch.no_grad()
    def refresh_history(self) -> None:
        """``h^(0)`` and ``s = Σ_{l=1..L} h^(l)`` of every node from the current weights."""
        net, graphs = self.model, self.sampler.graphs
        full = {name: _sparse(g.ptr, g.col, g.val, (g.n, g.n)) for name, g in graphs.items()}
        n = next(iter(graphs.values())).n
        x = net.layer0_nodes(torch.arange(n, device=next(iter(graphs.values())).ptr.device))
        self.layer0, total = x, torch.zeros_like(x)
        for layer in range(net.layers):
            x = net.sampled_layer(layer, x, full)
            total += x
        self.history = total

    def representations(self, seeds: torch.Tensor, generator=None):
        """Final representations of ``seeds`` (unique global node ids) and the sample used."""
        reps, sub, _ = self._representations(seeds, generator)
        return reps, sub

    def _representations(self, seeds: torch.Tensor, generator=None):
        """:meth:`representations` and the seeds' table rows (``None`` for a model without
        ``layer0_rows``: its L2 penalty then gathers them again)."""
        net = self.model
        sub = self.sampler.sample(seeds, generator)
        graphs = sub.layers[0]  # rows: the seeds; columns: seeds + their sampled neighbours
        if hasattr(net, "layer0_rows"):  # one gather for layer 0 and the L2 penalty
            x0, rows = net.layer0_rows(sub.nodes)
            rows = rows[: sub.n_seeds]
        else:
            x0, rows = net.layer0_nodes(sub.nodes), None
        # index_select, not tensor[index]: ~20x faster on CPU for 10^4 rows of a large table,
        # and its backward is one index_add
        h0 = self.layer0.index_select(0, sub.nodes)
        drift = net.sampled_layer(0, x0 - h0, graphs)
        total = x0[: sub.n_seeds] + self.history.index_select(0, seeds) + drift
        return total / (net.layers + 1), sub, rows

    def bpr_loss(self, users, pos, neg, reg: float, generator) -> tuple[torch.Tensor, torch.Tensor]:
        """The model's BPR loss and L2 penalty with one-hop + history representations (module doc)."""
        net = self.model
        if self.refresh and self.steps and self.steps % self.refresh == 0:
            self.refresh_history()
        self.steps += 1
        batch = torch.cat([users, pos + net.n_users, neg + net.n_users])
        seeds, inverse = torch.unique(batch, return_inverse=True)
        reps, _, rows = self._representations(seeds, generator)
        u, p, n = reps.index_select(0, inverse).chunk(3)
        diff = (u * p).sum(-1) - (u * n).sum(-1)
        bpr = F.softplus(-diff).mean()
        if rows is None:
            l2 = sum(e.float().pow(2).sum() for e in net.ego(users, pos, neg))
        else:  # = the ego rows' penalty: each batch entry's row, from the seeds' rows
            l2 = rows.index_select(0, inverse).float().pow(2).sum()
        return bpr, reg * 0.5 * l2 / len(users)
