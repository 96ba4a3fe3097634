"""Recommender models, chosen by name through :data:`MODELS`.

Every model maps user and item indices to final representations (:meth:`Recommender.propagate`)
and scores a user–item pair by their dot product; training minimises the BPR loss with an L2
penalty on the batch's layer-0 ("ego") embeddings.

* ``pop``       — item popularity in train (no parameters to learn; the baseline to beat).
* ``bprmf``     — matrix factorisation trained with BPR (Rendle et al., 2009).
* ``lightgcn``  — LightGCN (He et al., 2020): mean of ``layers`` propagations over the
  symmetrically normalised user–item graph.  The normalised adjacency is built once, as a
  ``torch.sparse_csr`` tensor; since it is symmetric, backward reuses it (``A^T = A``) instead
  of torch's generic sparse backward (PyG's ``LightGCN`` re-normalises the graph on every call:
  ``benchmarks/bench_train_scale.py`` measures both).
* ``kgat``      — the KG-aware model: a LightGCN backbone plus a tower with gated, relation-aware,
  attentive propagation over the collaborative KG (users, items and KG entities; train
  interactions plus the item–entity triples), mixed with a weight chosen on validation, so a KG
  that does not help leaves LightGCN.  See :class:`KGAT` for the design and how it relates to
  KGAT (Wang et al., 2019).

``<name>+text`` (e.g. ``lightgcn+text``, ``kgat+text``) adds item text features: a float matrix
``(n_items, d)`` (e.g. title embeddings) projected to ``dim`` by a learned linear map and added
to the item's ego embedding.  Any model except ``pop`` accepts ``text_features``.
"""

from __future__ import annotations

import warnings
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from kgwb.errors import ConfigError
from kgwb.train.data import CollabKG, InteractionData
from kgwb.train.registry import RECOMMENDERS, TEXT_SUFFIX, with_text  # noqa: F401


class _SparseMatmul(torch.autograd.Function):
    """``A @ X`` for a constant sparse ``A``, with ``A^T`` precomputed for the backward pass.

    torch's own backward for sparse-CSR @ dense rebuilds the transpose on every call; keeping
    ``A^T`` (which is ``A`` itself for a symmetric adjacency) makes a LightGCN step ~3× faster
    on CPU.  Kept instead of PyG's ``LGConv`` with the same precomputed weights: equal outputs
    and gradients, but ``benchmarks/bench_lgconv.py`` (2 layers, dim 64, 40k nodes, 1.2M
    entries, one thread, loaded 2-core machine) measured forward+backward at 64–92 ms CPU here,
    ~180 ms for ``LGConv`` over this CSR matrix and ~1,350 ms over ``edge_index`` + weights.
    """

    @staticmethod
    def forward(ctx, a: torch.Tensor, a_t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        ctx.a_t, ctx.dtype = a_t, x.dtype
        # sparse kernels stay in the matrix's precision (float32) under CUDA autocast
        with torch.autocast(x.device.type, enabled=False):
            return torch.sparse.mm(a, x.to(a.dtype))

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        with torch.autocast(grad.device.type, enabled=False):
            out = torch.sparse.mm(ctx.a_t, grad.to(ctx.a_t.dtype).contiguous())
        return None, None, out.to(ctx.dtype)


def sparse_matmul(
    a: torch.Tensor, x: torch.Tensor, a_t: torch.Tensor | None = None
) -> torch.Tensor:
    """``a @ x`` with a fast backward; ``a_t`` defaults to ``a`` (symmetric ``a``)."""
    return _SparseMatmul.apply(a, a if a_t is None else a_t, x)


def _csr(rows: torch.Tensor, cols: torch.Tensor, values: torch.Tensor, shape) -> torch.Tensor:
    """A CSR matrix with int32 indices (MKL's CPU kernel is ~2× faster with them than int64)."""
    with warnings.catch_warnings():  # "sparse CSR support is in beta state"
        warnings.simplefilter("ignore", UserWarning)
        coo = torch.sparse_coo_tensor(
            torch.stack([rows, cols]), values, tuple(shape), check_invariants=False
        ).coalesce()
        csr = coo.to_sparse_csr()
        if max(shape) < 2**31 - 1 and coo.values().numel() < 2**31 - 1:
            csr = torch.sparse_csr_tensor(
                csr.crow_indices().int(),
                csr.col_indices().int(),
                csr.values(),
                tuple(shape),
                check_invariants=False,
            )
    return csr


def normalized_adjacency(
    users: torch.Tensor, items: torch.Tensor, n_users: int, n_items: int
) -> torch.Tensor:
    """Symmetric ``D^-1/2 A D^-1/2`` of the bipartite user–item graph (users first), as CSR.

    The same matrix as PyG's ``gcn_norm(edge_index, add_self_loops=False)`` (the benchmark
    checks it); built with torch alone because importing PyG also imports transformers, which
    costs seconds per process.
    """
    n = n_users + n_items
    rows = torch.cat([users, items + n_users])
    cols = torch.cat([items + n_users, users])
    deg = torch.bincount(rows, minlength=n).float()
    inv_sqrt = deg.pow(-0.5).masked_fill(deg == 0, 0.0)
    return _csr(rows, cols, inv_sqrt[rows] * inv_sqrt[cols], (n, n))


class Recommender(nn.Module):
    """Base class: subclasses define :meth:`propagate` (and :meth:`ego` when they learn)."""

    name: ClassVar[str] = ""
    trainable: ClassVar[bool] = True
    uses_kg: ClassVar[bool] = False

    def __init__(
        self,
        data: InteractionData,
        *,
        dim: int = 64,
        layers: int = 2,
        text_features: torch.Tensor | None = None,
        kg: CollabKG | None = None,
    ) -> None:
        super().__init__()
        self.n_users, self.n_items, self.dim, self.layers = data.n_users, data.n_items, dim, layers
        if text_features is not None:
            if text_features.shape[0] != data.n_items:
                raise ConfigError(
                    f"text_features has {text_features.shape[0]} rows, expected one per item "
                    f"({data.n_items})"
                )
            self.register_buffer("text_features", text_features.float(), persistent=False)
            self.text_proj = nn.Linear(text_features.shape[1], dim, bias=False)
            nn.init.normal_(self.text_proj.weight, std=0.01)
        else:
            self.text_features = None
            self.text_proj = None

    # -- what subclasses provide ------------------------------------------------
    def propagate(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Final ``(user, item)`` representations for all users and items."""
        raise NotImplementedError

    def ego(self, users: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor) -> list[torch.Tensor]:
        """The layer-0 embeddings that the L2 penalty applies to."""
        return []

    def on_epoch_start(self, generator: torch.Generator) -> None:
        """Called before each training epoch with that epoch's seeded generator."""

    def on_eval(self) -> None:
        """Called before scoring for evaluation or recommendation."""

    def aux_loss(
        self, batch_size: int, generator: torch.Generator, reg: float
    ) -> torch.Tensor | None:
        """An extra loss added to each BPR step (e.g. a KG embedding loss), or None."""
        return None

    # -- shared -----------------------------------------------------------------
    def item_text(self) -> torch.Tensor | None:
        if self.text_proj is None:
            return None
        return self.text_proj(self.text_features)

    def bpr_loss(
        self, users: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor, reg: float
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(bpr, l2)``: mean ``-log σ(s_pos - s_neg)`` and ``reg · ½ Σ‖ego‖² / batch``."""
        u, p, n = self.batch_representations(users, pos, neg)
        diff = (u * p).sum(-1) - (u * n).sum(-1)
        bpr = F.softplus(-diff).mean()
        l2 = sum(e.float().pow(2).sum() for e in self.ego(users, pos, neg))
        return bpr, reg * 0.5 * l2 / len(users)

    def batch_representations(
        self, users: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Final representations of a batch's users, positive and negative items."""
        user_rep, item_rep = self.propagate()
        return user_rep[users], item_rep[pos], item_rep[neg]

    @torch.no_grad()
    def scorer(self):
        """A function user indices → ``(B, n_items)`` scores, propagating once."""
        self.on_eval()
        user_rep, item_rep = self.propagate()
        item_t = item_rep.t().contiguous()
        return lambda users: user_rep[users] @ item_t


class Popularity(Recommender):
    """Scores every item by its number of train interactions (same list for every user)."""

    name = "pop"
    trainable = False

    def __init__(self, data: InteractionData, **_: Any) -> None:
        super().__init__(data)
        self.register_buffer(
            "popularity", torch.as_tensor(data.item_popularity(), dtype=torch.float32)
        )

    def propagate(self) -> tuple[torch.Tensor, torch.Tensor]:
        ones = torch.ones(self.n_users, 1, device=self.popularity.device)
        return ones, self.popularity[:, None]


class BPRMF(Recommender):
    """Matrix factorisation with BPR."""

    name = "bprmf"

    def __init__(self, data: InteractionData, **kw: Any) -> None:
        super().__init__(data, **kw)
        self.user_emb = nn.Embedding(self.n_users, self.dim)
        self.item_emb = nn.Embedding(self.n_items, self.dim)
        nn.init.xavier_uniform_(self.user_emb.weight)
        nn.init.xavier_uniform_(self.item_emb.weight)

    def items0(self) -> torch.Tensor:
        text = self.item_text()
        return self.item_emb.weight if text is None else self.item_emb.weight + text

    def propagate(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.user_emb.weight, self.items0()

    def ego(self, users, pos, neg):
        return [self.user_emb(users), self.item_emb(pos), self.item_emb(neg)]


class LightGCN(Recommender):
    """LightGCN over the train user–item graph with a precomputed normalised adjacency.

    Users and items share one embedding table (users first), the layout of the adjacency, so
    a step neither concatenates nor splits the node embeddings.
    """

    name = "lightgcn"

    def __init__(self, data: InteractionData, **kw: Any) -> None:
        super().__init__(data, **kw)
        self.embedding = nn.Embedding(self.n_users + self.n_items, self.dim)
        nn.init.xavier_uniform_(self.embedding.weight)
        train = torch.as_tensor(data.train, dtype=torch.long)
        self.adjacency = normalized_adjacency(train[:, 0], train[:, 1], self.n_users, self.n_items)

    def _apply(self, fn, recurse=True):  # .to(device) moves the (non-buffer) sparse adjacency
        super()._apply(fn, recurse)
        self.adjacency = fn(self.adjacency)
        return self

    def propagate_nodes(self) -> torch.Tensor:
        """Final representations of all nodes (users first, then items)."""
        x = self.embedding.weight
        text = self.item_text()
        if text is not None:
            x = torch.cat([x[: self.n_users], x[self.n_users :] + text])
        total = x
        for _ in range(self.layers):
            x = sparse_matmul(self.adjacency, x)
            total = total + x
        return total / (self.layers + 1)

    def propagate(self) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.propagate_nodes()
        return out[: self.n_users], out[self.n_users :]

    def _batch_nodes(self, users, pos, neg) -> torch.Tensor:
        return torch.cat([users, pos + self.n_users, neg + self.n_users])

    def batch_representations(self, users, pos, neg):
        # one gather (and one scatter in backward) instead of three
        return self.propagate_nodes()[self._batch_nodes(users, pos, neg)].chunk(3)

    def ego(self, users, pos, neg):
        return [self.embedding(self._batch_nodes(users, pos, neg))]

    # -- sampled training (kgwb.train.sampler) ---------------------------------
    def sampling_graphs(self) -> dict[str, torch.Tensor]:
        return {"ui": self.adjacency}

    def layer0_nodes(self, nodes: torch.Tensor) -> torch.Tensor:
        # index_select: its backward is one index_add, embedding's sorts the indices (3x slower);
        # a sparse table (kgwb.train.sparse_optim) gets a row-sparse gradient instead
        w = self.embedding.weight
        x = self.embedding(nodes) if self.embedding.sparse else w.index_select(0, nodes)
        return _with_item_text(self, x, nodes - self.n_users)

    def layer0_rows(self, nodes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(layer0_nodes(nodes), table rows of nodes)`` in one gather: the table rows are what
        :meth:`ego` penalises, so a step that takes its L2 penalty from them gives the table a
        single gradient term (``--sampler history``)."""
        from kgwb.train.sparse_optim import gather_rows

        rows = gather_rows(self.embedding, nodes)
        return _with_item_text(self, rows, nodes - self.n_users), rows

    def sampled_layer(self, layer: int, x: torch.Tensor, graphs: dict) -> torch.Tensor:
        from kgwb.train.sampler import sampled_matmul

        return sampled_matmul(graphs["ui"], x)


class KGAT(Recommender):
    """The KG-aware model: a LightGCN backbone plus a gated KGAT-style tower over the
    collaborative knowledge graph, mixed with a weight chosen on validation.

    **Why two towers.** A KG can be rich (amazon-beauty's also_bought links: +35–40% Recall@20
    over LightGCN) or thin (brand and category only), where a KG term learned on the training
    loss alone can make the model worse than its own backbone (KGAT/KGIN/KGCL report the same
    sensitivity, and so did a reviewer: −17 to −21% on two brand/category KGs).  So by default
    (``backbone=True``) the model holds a LightGCN backbone trained on its own BPR loss — the
    same initial weights, batches and negatives as ``lightgcn``, bit for bit (without text
    features; with them the tower's text projection is drawn first) — and a KG tower
    trained on its own BPR loss; its score is ``(1 − a)·s_lightgcn + a·s_kg`` where ``a`` is
    chosen from ``mix_grid`` (0, 0.5, 1) at every validation, by valid Recall@20 — a weight
    above 0 only when it beats the backbone alone by at least ``mix_margin`` (2%, relative) —
    and saved with the weights (buffer ``mix``).  Where the KG does not help
    on validation the model *is* LightGCN; where it does, the KG tower (alone or averaged
    with the backbone) is used.  An epoch costs one LightGCN step more than the tower alone.

    **The KG tower.** Nodes are users and KG entities (items are entities ``0..n_items-1``);
    edges are the train interactions and the KG triples in both directions (relation ``r`` and
    its inverse ``r⁻¹``).  One layer is LightGCN's sparse matmul plus a gated KG term::

        x_h' = Σ_{u ∈ N(h)} x_u / sqrt(d_h d_u)  +  Σ_r g_{l,r} Σ_{(h,r,t)} π(h,r,t) x_t

    — for every relation direction ``r`` the attention-weighted mean of ``h``'s neighbours
    through ``r``, scaled by a learned gate ``g_{l,r}`` per layer and relation direction that
    starts at ``gate_init`` (0: the tower starts as LightGCN; :meth:`gate_table` reports the
    gates and how large each relation's messages into items are).  All relation directions go
    through one sparse matmul whose backward also gives the gates' gradient
    (:class:`_GatedGraph`).  ``π`` is a softmax within each (node, relation) block of KGAT's
    score ``e_t^T tanh(e_h + e_r)`` on the layer-0 embeddings; the final representation is
    the mean over layers.  With ``gate=False`` the KG term is the earlier ungated one: each
    relation of ``h`` an equal share, the whole term scaled by a learned ``β_l`` (initial
    ``kg_scale``).  With ``kg_loss_weight > 0`` the relation embeddings ``e_r`` (inverse
    relations use ``-e_r``) are trained by a TransE loss on a batch of triples per BPR batch,
    sharing the entity embeddings as in KGAT, and enter the score; the default is 0 (score
    ``e_t^T tanh(e_h)``, BPR the only loss) because on amazon-beauty the TransE loss lowered
    valid Recall@20 after 5 epochs from 0.086 to 0.067.

    As in KGAT (Wang et al., KDD'19) the attention is recomputed once per epoch (KGAT's
    ``update_attentive_A``) and is a constant within it.  Differences: no KG loss by default,
    and when enabled TransE instead of TransR (no per-relation projection matrices), added to
    every BPR step instead of run as a second phase over all triples; the aggregator
    is LightGCN's linear sum instead of Bi-Interaction, and each training epoch uses at most
    ``neighbors`` triples per (node, relation) block, resampled every epoch from a generator
    seeded from the epoch's (evaluation uses every triple).  These keep an epoch on
    amazon-beauty's 1.1M triples within a few times LightGCN's.
    """

    name = "kgat"
    uses_kg = True

    def __init__(
        self,
        data: InteractionData,
        *,
        kg: CollabKG | None = None,
        neighbors: int = 8,
        kg_loss_weight: float = 0.0,
        kg_scale: float = 0.5,
        gate: bool = True,
        gate_init: float = 0.0,
        backbone: bool = True,
        mix_grid: tuple[float, ...] = (0.0, 0.5, 1.0),
        mix_margin: float = 0.02,
        **kw: Any,
    ) -> None:
        super().__init__(data, **kw)
        if kg is None:
            raise ConfigError("the kgat model needs a collaborative KG (kg=...)")
        # the LightGCN backbone first: it draws its initial weights exactly as `lightgcn` does
        self.backbone = LightGCN(data, **kw) if backbone else None
        self.mix_grid = tuple(float(a) for a in mix_grid)
        self.mix_margin = float(mix_margin)
        # weight of the KG tower's score, chosen on validation (saved with the weights)
        self.register_buffer("mix", torch.tensor(0.5 if backbone else 1.0))
        self.n_entities, self.n_relations = kg.n_entities, max(kg.n_relations, 1)
        self.relation_names = list(kg.relations) or ["(none)"]
        self.neighbors, self.kg_loss_weight, self.gated = neighbors, kg_loss_weight, gate
        self.user_emb = nn.Embedding(self.n_users, self.dim)
        self.entity_emb = nn.Embedding(self.n_entities, self.dim)
        self.relation_emb = nn.Embedding(self.n_relations, self.dim)
        for emb in (self.user_emb, self.entity_emb, self.relation_emb):
            nn.init.xavier_uniform_(emb.weight)
        self.n_nodes = self.n_users + self.n_entities
        train = torch.as_tensor(data.train, dtype=torch.long)
        self.adjacency = normalized_adjacency(
            train[:, 0], train[:, 1], self.n_users, self.n_entities
        )
        if gate:
            # one learned gate per layer and relation direction (r, then r's inverse at r + R),
            # starting at `gate_init`: 0 gives exactly LightGCN's propagation at the start
            self.kg_gate = nn.Parameter(
                torch.full((self.layers, 2 * self.n_relations), float(gate_init))
            )
        else:
            # how much of the KG term each layer adds, learned (LightGCN alone at 0)
            self.kg_scale = nn.Parameter(torch.full((self.layers,), float(kg_scale)))
        t = torch.as_tensor(kg.triples, dtype=torch.long).reshape(-1, 3)
        self.register_buffer("triples", t, persistent=False)
        # both directions: (receiver, relation, sender) in node indices, inverse = r + R
        head, rel, tail = t[:, 0] + self.n_users, t[:, 1], t[:, 2] + self.n_users
        edges = torch.stack(
            [
                torch.cat([head, tail]),
                torch.cat([rel, rel + self.n_relations]),
                torch.cat([tail, head]),
            ],
            dim=1,
        )
        # sorted by (receiver, relation) block so that a block is a contiguous run
        block = edges[:, 0] * (2 * self.n_relations) + edges[:, 1]
        order = torch.argsort(block, stable=True)
        self.register_buffer("kg_edges", edges[order], persistent=False)
        self.register_buffer("kg_block", block[order], persistent=False)
        self._graph: tuple[torch.Tensor, torch.Tensor] | None = None

    def _apply(self, fn, recurse=True):
        super()._apply(fn, recurse)
        self.adjacency = fn(self.adjacency)
        self._graph = None
        return self

    # -- the attentive CKG Laplacian, rebuilt per epoch --------------------------------
    def on_epoch_start(self, generator: torch.Generator) -> None:
        if self.backbone is not None:
            # a private generator: the shared one keeps LightGCN's shuffling and negatives
            private = torch.Generator(device=generator.device)
            private.manual_seed((generator.initial_seed() * 7919 + 1) % (2**63))
            generator = private
        self._graph = self._build_graph(generator)

    def on_eval(self) -> None:
        # rebuilt every time: the attention depends on the current weights (e.g. just restored)
        self._graph = self._build_graph(None)

    @torch.no_grad()
    def _build_graph(self, generator: torch.Generator | None):
        edges, block = self.kg_edges, self.kg_block
        dev = edges.device
        if generator is not None and self.neighbors > 0 and len(edges):
            # at most `neighbors` random edges per (receiver, relation) block: sort by
            # (block, random key), keep the first ranks of each run (`block` is sorted, so the
            # runs sit at the same positions before and after)
            key = torch.rand(len(edges), device=dev, generator=generator, dtype=torch.float64)
            order = torch.argsort(block.double() + key)
            position = torch.arange(len(block), device=dev)
            first = torch.ones(len(block), dtype=torch.bool, device=dev)
            first[1:] = block[1:] != block[:-1]
            run_start = torch.cummax(torch.where(first, position, 0), 0).values
            keep = order[(position - run_start) < self.neighbors]
            edges, block = edges[keep], block[keep]
        receiver, relation, sender = edges[:, 0], edges[:, 1], edges[:, 2]
        x = self._layer0()
        rel = self.relation_emb.weight
        rel = torch.cat([rel, -rel])  # the inverse of r is -r in TransE's space
        use_relation = self.kg_loss_weight > 0  # untrained relation vectors would be noise
        scores = torch.empty(len(edges), device=dev)
        step = 1 << 18  # chunks bound the (edges, dim) temporaries
        for s in range(0, len(edges), step):
            sl = slice(s, s + step)
            h = x[receiver[sl]]
            h = torch.tanh(h + rel[relation[sl]] if use_relation else h)
            scores[sl] = (x[sender[sl]] * h).sum(-1)
        blocks, group = torch.unique(block, return_inverse=True)
        weight = _group_softmax(scores, group, len(blocks))
        shape = (self.n_nodes, self.n_nodes)
        if self.gated:  # attention-weighted means per relation direction, gated apart
            return _GatedGraph.build(receiver, relation, sender, weight, self.n_nodes)
        per_node = torch.bincount(blocks // (2 * self.n_relations), minlength=self.n_nodes)
        weight = weight / per_node[receiver].float()
        return _csr(receiver, sender, weight, shape), _csr(sender, receiver, weight, shape)

    def _layer0(self) -> torch.Tensor:
        ent = self.entity_emb.weight
        text = self.item_text()
        if text is not None:
            ent = torch.cat([ent[: self.n_items] + text, ent[self.n_items :]])
        return torch.cat([self.user_emb.weight, ent])

    def propagate_nodes(self) -> torch.Tensor:
        """Final representations of all nodes (users, then entities: items first)."""
        if self._graph is None:
            if self.training:
                raise RuntimeError("call on_epoch_start(generator) before training kgat")
            self.on_eval()
        x = self._layer0()
        total = x
        for layer in range(self.layers):
            x = sparse_matmul(self.adjacency, x) + self._kg_term(layer, x)
            total = total + x
        return total / (self.layers + 1)

    def _kg_term(self, layer: int, x: torch.Tensor) -> torch.Tensor:
        if not self.gated:
            a, a_t = self._graph
            return self.kg_scale[layer] * sparse_matmul(a, x, a_t)
        return self._graph.matmul(self.kg_gate[layer], x)

    def tower(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The KG tower's ``(user, item)`` representations."""
        out = self.propagate_nodes()
        return out[: self.n_users], out[self.n_users : self.n_users + self.n_items]

    def propagate(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self.backbone is None:
            return self.tower()
        return self._mixed(self.tower(), self.backbone.propagate(), float(self.mix))

    @staticmethod
    def _mixed(kg, base, a: float) -> tuple[torch.Tensor, torch.Tensor]:
        """Representations whose dot product is ``(1-a)·base + a·kg``."""
        if a >= 1.0:
            return kg
        if a <= 0.0:
            return base
        w_kg, w_base = a**0.5, (1 - a) ** 0.5
        return tuple(torch.cat([w_base * b, w_kg * k], 1) for k, b in zip(kg, base))

    def choose_mix(self, recall: dict[float, float]) -> float:
        """The mix weight to keep given each candidate's validation Recall@20: the best one,
        unless it beats the LightGCN backbone alone (weight 0) by less than ``mix_margin``
        (relative): a gain within validation noise is not worth the risk on test."""
        best = max(recall, key=lambda a: (recall[a], -a))
        base = recall.get(0.0)
        if base is not None and recall[best] < base * (1 + self.mix_margin):
            return 0.0
        return best

    @torch.no_grad()
    def mix_scorers(self) -> dict[float, Any]:
        """A scorer per candidate mix weight (``mix_grid``), propagating each tower once; the
        training loop keeps the weight with the best validation Recall@20 (None: no backbone)."""
        if self.backbone is None:
            return {}
        self.on_eval()
        kg, base = self.tower(), self.backbone.propagate()
        scorers = {}
        for a in self.mix_grid:
            user, item = self._mixed(kg, base, a)
            scorers[a] = _dot_scorer(user, item.t().contiguous())
        return scorers

    def bpr_loss(self, users, pos, neg, reg):
        """Each tower is trained on its own BPR loss: the backbone exactly as ``lightgcn``."""
        bpr, l2 = super().bpr_loss(users, pos, neg, reg)
        if self.backbone is not None:
            b_bpr, b_l2 = self.backbone.bpr_loss(users, pos, neg, reg)
            bpr, l2 = bpr + b_bpr, l2 + b_l2
        return bpr, l2

    @torch.no_grad()
    def gate_table(self, relations: list[str] | None = None):
        """Per relation direction: the gate of each layer and ``item_share``, the norm of the
        relation's messages into items over the norm of the interaction messages into items,
        summed over layers (evaluation graph), and ``kg_tower_weight``, the weight of the KG
        tower's score chosen on validation (0: the model is its LightGCN backbone).  ``r⁻¹`` is
        ``r`` read from head to tail."""
        import pandas as pd

        if not self.gated:
            raise ValueError("gate_table needs the gated kgat (gate=True, the default)")
        names = list(relations or self.relation_names)
        self.on_eval()
        items = slice(self.n_users, self.n_users + self.n_items)
        x = self._layer0()
        kg_norm = torch.zeros(2 * self.n_relations, device=x.device)
        ui_norm = 0.0
        for layer in range(self.layers):
            ui = sparse_matmul(self.adjacency, x)
            ui_norm += float(ui[items].norm())
            for r, a in self._graph.per_relation():
                kg_norm[r] += (self.kg_gate[layer, r] * torch.sparse.mm(a, x))[items].norm()
            x = ui + self._kg_term(layer, x)
        rows = []
        for r in range(2 * self.n_relations):
            base = names[r % self.n_relations] if r % self.n_relations < len(names) else str(r)
            row = {"relation": base + ("⁻¹" if r >= self.n_relations else "")}
            row.update({f"gate_l{i + 1}": float(self.kg_gate[i, r]) for i in range(self.layers)})
            row["item_share"] = float(kg_norm[r]) / ui_norm if ui_norm > 0 else 0.0
            row["kg_tower_weight"] = float(self.mix)  # the validation-chosen mix weight
            rows.append(row)
        return pd.DataFrame(rows).round(4)

    def batch_representations(self, users, pos, neg):
        nodes = torch.cat([users, pos + self.n_users, neg + self.n_users])
        return self.propagate_nodes()[nodes].chunk(3)

    def ego(self, users, pos, neg):
        return [self.user_emb(users), self.entity_emb(torch.cat([pos, neg]))]

    def aux_loss(self, batch_size: int, generator: torch.Generator, reg: float):
        """TransE loss on ``batch_size`` random triples with a random tail as the negative."""
        if self.kg_loss_weight <= 0 or len(self.triples) == 0:
            return None
        dev = self.triples.device
        pick = torch.randint(len(self.triples), (batch_size,), device=dev, generator=generator)
        h, r, t = self.triples[pick].unbind(1)
        t_neg = torch.randint(self.n_entities, (batch_size,), device=dev, generator=generator)
        eh, er = self.entity_emb(h), self.relation_emb(r)
        et, en = self.entity_emb(t), self.entity_emb(t_neg)
        pos = (eh + er - et).pow(2).sum(-1)
        neg = (eh + er - en).pow(2).sum(-1)
        loss = F.softplus(pos - neg).mean()
        l2 = sum(e.pow(2).sum() for e in (eh, er, et, en)) * 0.5 * reg / batch_size
        return self.kg_loss_weight * (loss + l2)


def _with_item_text(model: Recommender, x: torch.Tensor, item: torch.Tensor) -> torch.Tensor:
    """``x`` (layer-0 rows of some nodes) plus the projected text of the rows that are items
    (``item`` = node index - n_users, in ``[0, n_items)`` for items)."""
    if model.text_proj is None:
        return x
    is_item = (item >= 0) & (item < model.n_items)
    text = model.text_proj(model.text_features[item.clamp(0, model.n_items - 1)])
    return x + text * is_item[:, None].to(text.dtype)


def _dot_scorer(user: torch.Tensor, item_t: torch.Tensor):
    return lambda users: user[users] @ item_t


class _GatedGraph:
    """The KG edges of one epoch as one sparse matrix whose entries are ``Σ_r g_r w_e`` over the
    edges ``e`` of each (receiver, sender) pair: ``Σ_r g_r A_r x`` in one sparse matmul, with
    the gates' gradient ``Σ_e w_e ⟨dy_receiver, x_sender⟩`` per relation computed in backward
    (one matmul per relation would cost a call per relation: 52 on the sample's KG)."""

    def __init__(self, **tensors: torch.Tensor) -> None:
        self.__dict__.update(tensors)

    @classmethod
    def build(cls, receiver, relation, sender, weight, n_nodes: int) -> _GatedGraph:
        key = receiver * n_nodes + sender
        pairs, edge_pair = torch.unique(key, return_inverse=True)  # sorted: row-major order
        rows, cols = pairs // n_nodes, pairs % n_nodes
        order_t = torch.argsort(cols * n_nodes + rows)
        index = torch.int32 if max(n_nodes, len(pairs)) < 2**31 - 1 else torch.int64

        def crow(r):
            counts = torch.bincount(r, minlength=n_nodes)
            return torch.cat([counts.new_zeros(1), counts.cumsum(0)]).to(index)

        return cls(
            receiver=receiver,
            relation=relation,
            sender=sender,
            weight=weight,
            n_nodes=n_nodes,
            rows=rows,
            cols=cols,
            crow=crow(rows),
            col=cols.to(index),
            crow_t=crow(cols),
            col_t=rows[order_t].to(index),
            order_t=order_t,
            edge_pair=edge_pair,
        )

    def matmul(self, gates: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return _GatedSparseMatmul.apply(gates, x, self)

    def per_relation(self):
        """``(r, A_r)`` for every relation direction with edges (for reporting)."""
        shape = (self.n_nodes, self.n_nodes)
        for r in torch.unique(self.relation).tolist():
            m = self.relation == r
            yield r, _csr(self.receiver[m], self.sender[m], self.weight[m], shape)


class _GatedSparseMatmul(torch.autograd.Function):
    @staticmethod
    def forward(ctx, gates: torch.Tensor, x: torch.Tensor, g: _GatedGraph) -> torch.Tensor:
        with torch.autocast(x.device.type, enabled=False):
            gates32 = gates.float()
            values = torch.zeros(len(g.rows), device=x.device).index_add_(
                0, g.edge_pair, g.weight * gates32[g.relation]
            )
            ctx.g, ctx.dtype, ctx.n_gates = g, x.dtype, len(gates)
            ctx.save_for_backward(x, values)
            a = _csr_from(g.crow, g.col, values, g.n_nodes)
            return torch.sparse.mm(a, x.float())

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        g = ctx.g
        x, values = ctx.saved_tensors
        with torch.autocast(grad.device.type, enabled=False):
            grad = grad.float().contiguous()
            a_t = _csr_from(g.crow_t, g.col_t, values[g.order_t], g.n_nodes)
            dx = torch.sparse.mm(a_t, grad).to(ctx.dtype)
            x = x.float()
            dots = torch.empty(len(g.rows), device=grad.device)
            step = 1 << 18
            for s in range(0, len(g.rows), step):
                sl = slice(s, s + step)
                dots[sl] = (grad[g.rows[sl]] * x[g.cols[sl]]).sum(-1)
            dgates = torch.zeros(ctx.n_gates, device=grad.device).index_add_(
                0, g.relation, g.weight * dots[g.edge_pair]
            )
        return dgates, dx, None


def _csr_from(crow, col, values, n: int) -> torch.Tensor:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return torch.sparse_csr_tensor(crow, col, values, (n, n), check_invariants=False)


def _group_softmax(scores: torch.Tensor, group: torch.Tensor, n_groups: int) -> torch.Tensor:
    """Softmax of ``scores`` within each group (``group`` holds ids ``0..n_groups-1``):
    PyG's ``torch_geometric.utils.softmax``, bit-identical to the scatter-max/exp/index-add
    version it replaced and 5–10% less CPU (``benchmarks/bench_group_softmax.py``); imported
    here, as only ``kgat`` needs it (the import costs ~2 s of CPU)."""
    from torch_geometric.utils import softmax

    return softmax(scores, group, num_nodes=n_groups)


#: model name -> class (a lazy :class:`kgwb.stage.Registry`, :mod:`kgwb.train.registry`);
#: ``<name>+text`` adds item text features.
MODELS = RECOMMENDERS


def model_names() -> list[str]:
    """Every name :func:`build_model` accepts (``+text`` variants included)."""
    return RECOMMENDERS.names()


def parse_model_name(name: str) -> tuple[type[Recommender], bool]:
    """``"kgat+text"`` → ``(KGAT, True)``; unknown names raise UnknownNameError."""
    return RECOMMENDERS.get(name), with_text(name)


def build_model(
    name: str,
    data: InteractionData,
    *,
    dim: int = 64,
    layers: int = 2,
    kg: CollabKG | None = None,
    text_features: np.ndarray | torch.Tensor | None = None,
    **options: Any,
) -> Recommender:
    """Instantiate model ``name`` (on CPU; move it with ``.to(device)``); ``options`` go to the
    model class (e.g. ``neighbors=16`` for ``kgat``)."""
    cls, _ = parse_model_name(name)
    text = (
        None
        if text_features is None
        else torch.as_tensor(np.asarray(text_features), dtype=torch.float32)
    )
    kwargs: dict[str, Any] = {"dim": dim, "layers": layers, "text_features": text}
    if cls.uses_kg:
        kwargs["kg"] = kg
    try:
        return cls(data, **kwargs, **options)
    except TypeError as err:  # an option the model does not take (e.g. a typo in --option)
        if "unexpected keyword argument" not in str(err):
            raise
        raise ConfigError(f"model {name!r}: {err}; its options: {_options_of(cls)}") from None


def _options_of(cls: type[Recommender]) -> str:
    """The keyword options of a model class's constructor (its own and its bases')."""
    import inspect

    names = []
    for klass in cls.__mro__:
        if "__init__" in vars(klass) and issubclass(klass, Recommender):
            params = inspect.signature(klass.__init__).parameters.values()
            names += [p.name for p in params if p.kind is p.KEYWORD_ONLY]
    skip = ("text_features", "kg", "dim", "layers")
    return ", ".join(dict.fromkeys(n for n in names if n not in skip)) or "none"
