"""Inductive item representations from the knowledge graph: ``kg-inductive``.

An item's vector is computed from its KG neighbourhood (brand, categories, attributes,
extracted values, related items: whatever :func:`~kgwb.train.data.build_collab_kg` links it
to) instead of being looked up by id, so an item without any interaction — a new product with
a known brand or category — is ranked like any other.  Warm items add a learned id residual.

Model (users ``u``, items ``i``, entity table ``E``, relations ``R(i)`` of item ``i``)::

    content(i) = 1/|R(i)| Σ_{r ∈ R(i)} mean_{e ∈ N_r(i)} E[e]     (every relation an equal share)
    x_i        = content(i) + id(i)                                 (layer 0 of a warm item)
    user(u), warm(i) = LightGCN over the train user–item graph with items' layer 0 = x_i
    item(i)    = warm(i) for items with train interactions, content(i) for the others

Training is LightGCN's BPR with *id dropout* (DropoutNet, Volkovs et al., NeurIPS'17): in each
step a random share ``id_dropout`` of the batch's items is scored as a cold item would be
(``content(i)`` only), which trains the content path to rank against warm items on the same
scale.  Each epoch uses at most ``neighbors`` KG neighbours per (item, relation), resampled from
the epoch's seeded generator; evaluation uses all of them (as ``kgat`` does).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from kgwb.train.data import CollabKG, InteractionData
from kgwb.train.models import LightGCN, _csr, sparse_matmul


def item_neighbourhood(kg: CollabKG) -> np.ndarray:
    """``(n, 3)`` int64 ``(item, relation, entity)``: every KG neighbour of every item.

    Both directions of each triple whose end is an item; an inverse relation ``r`` is numbered
    ``r + n_relations`` (the item is the tail).  Self-loops are dropped.
    """
    t = np.asarray(kg.triples, dtype=np.int64).reshape(-1, 3)
    n_rel = max(kg.n_relations, 1)
    parts = []
    head_item = t[:, 0] < kg.n_items
    parts.append(t[head_item][:, [0, 1, 2]])
    tail_item = t[:, 2] < kg.n_items
    inv = t[tail_item][:, [2, 1, 0]].copy()
    inv[:, 1] += n_rel
    parts.append(inv)
    out = np.concatenate(parts) if parts else np.empty((0, 3), dtype=np.int64)
    return out[out[:, 0] != out[:, 2]]


def sample_per_block(block: torch.Tensor, cap: int, generator: torch.Generator) -> torch.Tensor:
    """Indices keeping at most ``cap`` random rows of each run of equal values of the sorted
    ``block`` tensor."""
    key = torch.rand(len(block), device=block.device, generator=generator, dtype=torch.float64)
    order = torch.argsort(block.double() + key)
    position = torch.arange(len(block), device=block.device)
    first = torch.ones(len(block), dtype=torch.bool, device=block.device)
    first[1:] = block[1:] != block[:-1]
    run_start = torch.cummax(torch.where(first, position, 0), 0).values
    return order[(position - run_start) < cap]


class KGInductive(LightGCN):
    """LightGCN whose item layer 0 is KG content plus an id residual (module docstring)."""

    name = "kg-inductive"
    uses_kg = True

    def __init__(
        self,
        data: InteractionData,
        *,
        kg: CollabKG | None = None,
        neighbors: int = 16,
        id_dropout: float = 0.3,
        id_residual: bool = True,
        **kw: Any,
    ) -> None:
        super().__init__(data, **kw)
        if kg is None:
            raise ValueError("the kg-inductive model needs a collaborative KG (kg=...)")
        if not 0.0 <= id_dropout < 1.0:
            raise ValueError(f"id_dropout must be in [0, 1), got {id_dropout!r}")
        self.neighbors, self.id_dropout, self.id_residual = neighbors, id_dropout, id_residual
        self.n_entities = kg.n_entities
        self.entity_emb = nn.Embedding(self.n_entities, self.dim)
        nn.init.xavier_uniform_(self.entity_emb.weight)
        warm = torch.as_tensor(data.warm_item_mask())
        self.register_buffer("warm", warm, persistent=False)
        if not id_residual:  # users keep their id embeddings; items are content only
            with torch.no_grad():
                self.embedding.weight[self.n_users :] = 0.0
            self.embedding.weight.register_hook(self._no_item_id_grad)
        nb = torch.as_tensor(item_neighbourhood(kg))
        n_rel2 = 2 * max(kg.n_relations, 1)
        block = nb[:, 0] * n_rel2 + nb[:, 1]
        order = torch.argsort(block, stable=True)
        self.register_buffer("nb", nb[order], persistent=False)
        self.register_buffer("nb_block", block[order], persistent=False)
        self.n_rel2 = n_rel2
        self._content_graph: tuple[torch.Tensor, torch.Tensor] | None = None
        self._drop: torch.Tensor | None = None

    def _no_item_id_grad(self, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.clone()
        grad[self.n_users :] = 0.0
        return grad

    def _apply(self, fn, recurse=True):
        super()._apply(fn, recurse)
        self._content_graph = None
        return self

    # -- the item × entity content matrix -----------------------------------------------
    @torch.no_grad()
    def _build_content_graph(self, generator: torch.Generator | None):
        nb, block = self.nb, self.nb_block
        if generator is not None and self.neighbors > 0 and len(nb):
            keep = sample_per_block(block, self.neighbors, generator)
            nb, block = nb[keep], block[keep]
        dev = nb.device
        item, entity = nb[:, 0], nb[:, 2]
        blocks, group, per_block = torch.unique(block, return_inverse=True, return_counts=True)
        relations_of_item = torch.bincount(blocks // self.n_rel2, minlength=self.n_items)
        weight = 1.0 / (per_block[group].float() * relations_of_item[item].float())
        shape = (self.n_items, self.n_entities)
        if len(nb) == 0:
            item = entity = torch.zeros(0, dtype=torch.long, device=dev)
        m = _csr(item, entity, weight, shape)
        m_t = _csr(entity, item, weight, (shape[1], shape[0]))
        return m, m_t

    def on_epoch_start(self, generator: torch.Generator) -> None:
        self._content_graph = self._build_content_graph(generator)
        self._generator = generator

    def on_eval(self) -> None:
        self._content_graph = self._build_content_graph(None)

    def content(self) -> torch.Tensor:
        """``(n_items, dim)``: every item's vector from its KG neighbourhood."""
        if self._content_graph is None:
            self.on_eval()
        m, m_t = self._content_graph
        return sparse_matmul(m, self.entity_emb.weight, m_t)

    # -- representations ------------------------------------------------------------
    def _nodes_and_content(self) -> tuple[torch.Tensor, torch.Tensor]:
        content = self.content()
        text = self.item_text()
        if text is not None:
            content = content + text
        x = self.embedding.weight
        items = content + x[self.n_users :] * self.warm[:, None]
        x = torch.cat([x[: self.n_users], items])
        total = x
        for _ in range(self.layers):
            x = sparse_matmul(self.adjacency, x)
            total = total + x
        return total / (self.layers + 1), content

    def _items(self, nodes: torch.Tensor, content: torch.Tensor, cold: torch.Tensor):
        return torch.where(cold[:, None], content, nodes[self.n_users :])

    def propagate(self) -> tuple[torch.Tensor, torch.Tensor]:
        nodes, content = self._nodes_and_content()
        return nodes[: self.n_users], self._items(nodes, content, ~self.warm)

    def propagate_nodes(self) -> torch.Tensor:
        users, items = self.propagate()
        return torch.cat([users, items])

    def batch_representations(self, users, pos, neg):
        nodes, content = self._nodes_and_content()
        cold = ~self.warm
        if self.training and self.id_dropout > 0:
            gen = getattr(self, "_generator", None)
            drop = torch.rand(self.n_items, device=cold.device, generator=gen) < self.id_dropout
            cold = cold | drop
        items = self._items(nodes, content, cold)
        return nodes[: self.n_users][users], items[pos], items[neg]


