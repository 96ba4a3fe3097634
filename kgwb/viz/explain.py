"""Explained recommendations: the KG paths that link what a user bought to an item recommended.

:func:`explain_paths` takes item ids only (the user's history and one recommended item, with or
without the ``item:`` prefix), finds every simple path of at most ``max_hops`` edges between a
history item and the recommended item (edges followed in either direction; no other history item
inside a path), and ranks them.  :func:`paths_graph` and :func:`paths_html` draw the union of the
paths; each :class:`ExplainedPath` has a one-line ``text``.

Score of a path (higher is better, in (0, 1])::

    score = LENGTH_DECAY ** (edges - 1) * prod(edge confidence) * prod(specificity(inner node))
    specificity(n) = max(MIN_SPECIFICITY, log((N + 1) / (degree(n) + 1)) / log(N + 1))

``N`` is the number of KG nodes and ``degree`` counts a node's edges in the whole KG, so a brand
with three products is nearly 1 while a root category linked to every item is nearly 0: sharing
a niche brand explains more than sharing "Beauty".  ``LENGTH_DECAY`` (0.5) makes each extra hop
halve the score.  When two paths visit the same nodes (parallel edges of two relations or
sources) the better one is kept.

Paths are found by meeting in the middle: half-paths of up to ``ceil(L/2)`` edges from the
recommended item are joined with half-paths of up to ``floor(L/2)`` edges from the history.  A
half-path is not extended through a node with more than ``max_expand_degree`` edges (it may still
end there, so two items sharing a hub are found): such paths score near zero anyway and would
otherwise enumerate the whole catalog.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kgwb.errors import DataError
from kgwb.kg.model import KnowledgeGraph

LENGTH_DECAY = 0.5
MIN_SPECIFICITY = 0.01
ITEM_PREFIX = "item:"


@dataclass
class ExplainedPath:
    """One path from a history item to the recommended item."""

    nodes: list[str]
    edges: list[dict[str, Any]]  # relation, source, confidence, head, tail (KG direction)
    score: float
    text: str
    history_item: str
    recommended_item: str
    names: list[str] = field(default_factory=list)

    @property
    def length(self) -> int:
        return len(self.edges)

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "score": round(self.score, 6),
            "history_item": self.history_item,
            "recommended_item": self.recommended_item,
            "nodes": self.nodes,
            "names": self.names,
            "edges": self.edges,
        }


# ---------------------------------------------------------------------------- phrasing
def _attribute(relation: str) -> str:
    return relation.removeprefix("has_").replace("_", " ")


_SYMMETRIC = {"also_bought": "is often bought with", "also_viewed": "is often viewed with"}


def _forward(relation: str, other: str) -> str:
    """How an item-side node relates to ``other`` along ``relation`` (KG direction)."""
    if relation in _SYMMETRIC:
        return f"{_SYMMETRIC[relation]} {other}"
    if relation == "produced_by":
        return f"is made by {other}"
    if relation == "belongs_to":
        return f"is in the {other} category"
    if relation == "subcategory_of":
        return f"is part of {other}"
    if relation.startswith("has_"):
        return f"has {_attribute(relation)} {other}"
    if relation == "interacted":
        return f"bought {other}"
    return f"{relation.replace('_', ' ')} {other}"


def _backward(relation: str, other: str) -> str:
    """How a node relates to ``other`` when the KG edge points from ``other`` to it."""
    if relation in _SYMMETRIC:
        return f"{_SYMMETRIC[relation]} {other}"
    if relation == "produced_by":
        return f"makes {other}"
    if relation == "belongs_to":
        return f"includes {other}"
    if relation == "subcategory_of":
        return f"includes {other}"
    if relation.startswith("has_"):
        return f"is the {_attribute(relation)} of {other}"
    if relation == "interacted":
        return f"was bought by {other}"
    return f"is {relation.replace('_', ' ')} of {other}"


def _shared(relation: str, node: str) -> str:
    if relation == "produced_by":
        return f"are both made by {node}"
    if relation == "belongs_to":
        return f"are both in the {node} category"
    if relation.startswith("has_"):
        return f"both have {_attribute(relation)} {node}"
    if relation == "interacted":
        return "were both bought by the same shopper"
    return f"both {relation.replace('_', ' ')} {node}"


def _text(names: list[str], edges: list[dict[str, Any]], nodes: list[str]) -> str:
    first, last = names[0], names[-1]
    intro = f"You bought {first}"
    if len(edges) == 2 and edges[0]["head"] == nodes[0] and edges[1]["head"] == nodes[2]:
        if edges[0]["relation"] == edges[1]["relation"]:
            return f"{intro}; {first} and {last} {_shared(edges[0]['relation'], names[1])}."
    steps = []
    for i, e in enumerate(edges):
        here, there = names[i], names[i + 1]
        verb = (
            _forward(e["relation"], there)
            if e["head"] == nodes[i]
            else _backward(e["relation"], there)
        )
        steps.append(f"{here} {verb}")
    if len(steps) > 1:
        steps[-1] = "and " + steps[-1]
    return f"{intro}; " + ", ".join(steps) + "."


# ------------------------------------------------------------------------------ search
class PathExplainer:
    """The KG prepared for path search (adjacency in both directions, degrees); build once and
    call :meth:`explain` for many recommendations."""

    def __init__(self, kg: KnowledgeGraph, *, max_expand_degree: int = 5000) -> None:
        self.kg = kg
        self.max_expand_degree = int(max_expand_degree)
        self.node_ids = pd.Index(kg.nodes["node_id"].astype(str).to_numpy(dtype=object))
        self.names = (
            kg.nodes["name"]
            .astype("string")
            .fillna(pd.Series(self.node_ids))
            .to_numpy(dtype=object)
        )
        e = kg.edges
        h = self.node_ids.get_indexer(e["head"].astype(str).to_numpy(dtype=object))
        t = self.node_ids.get_indexer(e["tail"].astype(str).to_numpy(dtype=object))
        ok = (h >= 0) & (t >= 0)
        h, t = h[ok], t[ok]
        self.rel = e["relation"].astype(str).to_numpy(dtype=object)[ok]
        self.source = e["source"].astype(str).to_numpy(dtype=object)[ok]
        self.conf = e["confidence"].to_numpy(dtype=float)[ok]
        self.heads, self.tails = h, t
        n = len(self.node_ids)
        # both directions: row j < m is edge j forward, row m + j is edge j backward
        u = np.concatenate([h, t])
        v = np.concatenate([t, h])
        order = np.argsort(u, kind="stable")
        self.adj_u, self.adj_v, self.adj_edge = (
            u[order],
            v[order],
            np.concatenate([np.arange(len(h)), np.arange(len(h))])[order],
        )
        self.ptr = np.zeros(n + 1, dtype=np.int64)
        np.add.at(self.ptr, self.adj_u + 1, 1)
        self.ptr = np.cumsum(self.ptr)
        self.degree = np.diff(self.ptr)
        big_n = max(n, 2)
        spec = np.log((big_n + 1) / (self.degree + 1.0)) / math.log(big_n + 1)
        self.specificity = np.maximum(spec, MIN_SPECIFICITY)

    # ----------------------------------------------------------------- helpers
    def _index(self, item: str) -> int:
        for candidate in (item, ITEM_PREFIX + item):
            i = self.node_ids.get_indexer([candidate])[0]
            if i >= 0:
                return int(i)
        raise DataError(
            f"item {item!r} is not in the knowledge graph",
            expected="an item id (with or without the 'item:' prefix) of the KG's item nodes",
        )

    def _half_paths(self, seeds: np.ndarray, depth: int) -> list[np.ndarray]:
        """Paths from ``seeds`` as arrays of adjacency rows: ``out[d]`` has shape (P, 1 + d)
        (column 0 the seed node, then the adjacency rows of d steps); d = 0..depth."""
        out = [seeds.reshape(-1, 1).astype(np.int64)]
        for d in range(1, depth + 1):
            prev = out[-1]
            ends = prev[:, 0] if d == 1 else self.adj_v[prev[:, -1]]
            if d > 1:  # do not walk on through hubs
                keep = self.degree[ends] <= self.max_expand_degree
                prev, ends = prev[keep], ends[keep]
            starts, counts = self.ptr[ends], self.degree[ends]
            total = int(counts.sum())
            if total == 0:
                out.append(np.empty((0, d + 1), dtype=np.int64))
                continue
            rep = np.repeat(np.arange(len(prev)), counts)
            offsets = np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)
            rows = starts[rep] + offsets
            out.append(np.concatenate([prev[rep], rows.reshape(-1, 1)], axis=1))
        return out

    def _nodes_of(self, half: np.ndarray) -> np.ndarray:
        """Node sequence (P, 1 + d) of half-paths."""
        if half.shape[1] == 1:
            return half
        return np.concatenate([half[:, :1], self.adj_v[half[:, 1:]]], axis=1)

    # ------------------------------------------------------------------ explain
    def explain(
        self,
        user_history_items: Iterable[str],
        recommended_item: str,
        *,
        max_hops: int = 3,
        k: int = 5,
    ) -> list[ExplainedPath]:
        """The ``k`` best paths (see the module docstring), best first; [] when none exists."""
        target = self._index(recommended_item)
        history = sorted({self._index(i) for i in user_history_items} - {target})
        if not history or max_hops < 1:
            return []
        hist = np.asarray(history, dtype=np.int64)
        is_hist = np.zeros(len(self.node_ids), dtype=bool)
        is_hist[hist] = True
        a_max, b_max = (max_hops + 1) // 2, max_hops // 2
        from_target = self._half_paths(np.asarray([target]), a_max)
        from_hist = self._half_paths(hist, b_max)
        found: dict[tuple[int, ...], tuple[float, list[int], list[int]]] = {}
        for length in range(1, max_hops + 1):
            a = (length + 1) // 2
            b = length - a
            left, right = from_target[a], from_hist[b]
            if len(left) == 0 or len(right) == 0:
                continue
            ln, rn = self._nodes_of(left), self._nodes_of(right)
            lf = pd.DataFrame({"meet": ln[:, -1], "li": np.arange(len(left))})
            rf = pd.DataFrame({"meet": rn[:, -1], "ri": np.arange(len(right))})
            joined = lf.merge(rf, on="meet")
            if joined.empty:
                continue
            li, ri = joined["li"].to_numpy(), joined["ri"].to_numpy()
            # full node sequence: history ... meet ... target
            seq = np.concatenate([rn[ri], ln[li][:, ::-1][:, 1:]], axis=1)
            inner = seq[:, 1:-1]
            ok = np.ones(len(seq), dtype=bool)
            if inner.shape[1]:
                ok &= ~is_hist[inner].any(axis=1) & (inner != target).all(axis=1)
            # simple paths only
            srt = np.sort(seq, axis=1)
            ok &= (np.diff(srt, axis=1) != 0).all(axis=1)
            for row in np.nonzero(ok)[0]:
                nodes = seq[row].tolist()
                edge_rows = list(right[ri[row], 1:]) + list(left[li[row], 1:][::-1])
                edge_ids = [int(self.adj_edge[r]) for r in edge_rows]
                score = LENGTH_DECAY ** (length - 1)
                score *= float(np.prod(self.conf[edge_ids]))
                if len(nodes) > 2:
                    score *= float(np.prod(self.specificity[nodes[1:-1]]))
                key = tuple(nodes)
                if key not in found or score > found[key][0]:
                    found[key] = (score, nodes, edge_ids)
        ranked = sorted(found.values(), key=lambda x: (-x[0], len(x[1]), x[1]))[: max(int(k), 0)]
        return [self._explained(score, nodes, edge_ids) for score, nodes, edge_ids in ranked]

    def _explained(self, score: float, nodes: list[int], edge_ids: list[int]) -> ExplainedPath:
        ids = [str(self.node_ids[i]) for i in nodes]
        names = [str(self.names[i]) for i in nodes]
        edges = [
            {
                "head": str(self.node_ids[self.heads[e]]),
                "relation": str(self.rel[e]),
                "tail": str(self.node_ids[self.tails[e]]),
                "source": str(self.source[e]),
                "confidence": float(self.conf[e]),
            }
            for e in edge_ids
        ]
        return ExplainedPath(
            nodes=ids,
            edges=edges,
            score=score,
            text=_text(names, edges, ids),
            history_item=ids[0].removeprefix(ITEM_PREFIX),
            recommended_item=ids[-1].removeprefix(ITEM_PREFIX),
            names=names,
        )


def explain_paths(
    kg: KnowledgeGraph | PathExplainer,
    user_history_items: Sequence[str],
    recommended_item: str,
    *,
    max_hops: int = 3,
    k: int = 5,
) -> list[ExplainedPath]:
    """The ``k`` best KG paths from the user's history items to ``recommended_item``.

    ``kg`` is a :class:`~kgwb.kg.model.KnowledgeGraph` or a :class:`PathExplainer` built from one
    (faster when explaining many recommendations).  See the module docstring for the score.
    """
    explainer = kg if isinstance(kg, PathExplainer) else PathExplainer(kg)
    return explainer.explain(user_history_items, recommended_item, max_hops=max_hops, k=k)


def paths_graph(kg: KnowledgeGraph, paths: Sequence[ExplainedPath]) -> Any:
    """The union of ``paths`` as a ``networkx.MultiDiGraph`` (KG edge directions and attributes;
    node attribute ``role``: history, recommended or via)."""
    import networkx as nx

    g = nx.MultiDiGraph()
    names = kg.nodes.set_index("node_id")
    seen_edges = set()
    for p in paths:
        for i, nid in enumerate(p.nodes):
            role = "history" if i == 0 else "recommended" if i == len(p.nodes) - 1 else "via"
            if nid not in g:
                row = names.loc[nid]
                g.add_node(nid, type=str(row["type"]), name=p.names[i], role=role)
            elif role != "via":
                g.nodes[nid]["role"] = role
        for e in p.edges:
            key = (e["head"], e["relation"], e["tail"], e["source"])
            if key not in seen_edges:
                seen_edges.add(key)
                g.add_edge(
                    e["head"],
                    e["tail"],
                    **{k: v for k, v in e.items() if k not in ("head", "tail")},
                )
    return g


def paths_html(
    kg: KnowledgeGraph,
    paths: Sequence[ExplainedPath],
    *,
    title: str = "Why this recommendation",
    path: str | Path | None = None,
    user: str | None = None,
) -> str:
    """The union of ``paths`` drawn with :func:`kgwb.viz.graph.graph_html`: items the user bought
    (green border, "bought:"), the recommended item (red border, "recommended:") and, with
    ``user``, the user linked to what they bought; a legend says which is which."""
    from kgwb.viz.graph import graph_html

    g = paths_graph(kg, paths)
    if user is not None:
        node = f"user:{user}" if not str(user).startswith("user:") else str(user)
        g.add_node(node, type="user", name=str(user).removeprefix("user:"), role="user")
        for nid, attrs in list(g.nodes(data=True)):
            if attrs.get("role") == "history":
                g.add_edge(node, nid, relation="bought", source="interaction", confidence=1.0)
    ends = {p.nodes[0] for p in paths} | {p.nodes[-1] for p in paths}
    return graph_html(g, title=title, highlight=ends, height=500, path=path)


__all__ = [
    "LENGTH_DECAY",
    "MIN_SPECIFICITY",
    "ExplainedPath",
    "PathExplainer",
    "explain_paths",
    "paths_graph",
    "paths_html",
]


def explain_recommendations(
    kg: KnowledgeGraph | PathExplainer,
    recommendations: pd.DataFrame,
    history: Mapping[str, Sequence[str]],
    *,
    max_hops: int = 3,
    paths_per_item: int = 3,
) -> tuple[pd.DataFrame, dict[tuple[str, str], list[ExplainedPath]]]:
    """Explain a table of recommendations (``user_id, rank, item_id, score``, e.g. from
    ``RecommenderResult.recommend``) with KG paths from each user's ``history``.

    Returns one row per recommendation with the best path's text and score and the number of
    paths found, and the paths themselves keyed by ``(user_id, item_id)``.
    """
    explainer = kg if isinstance(kg, PathExplainer) else PathExplainer(kg)
    rows, found = [], {}
    for rec in recommendations.itertuples(index=False):
        user, item = str(rec.user_id), str(rec.item_id)
        paths = explainer.explain(
            list(history.get(user, [])), item, max_hops=max_hops, k=paths_per_item
        )
        found[(user, item)] = paths
        rows.append(
            {
                "user_id": user,
                "rank": int(rec.rank),
                "item_id": item,
                "score": float(rec.score),
                "paths": len(paths),
                "best_path_score": round(paths[0].score, 4) if paths else 0.0,
                "why": paths[0].text if paths else "(no KG path within reach)",
            }
        )
    return pd.DataFrame(rows), found
