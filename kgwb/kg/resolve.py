"""Entity resolution: merge surface variants of one entity (brand spellings, value variants).

How it decides, cheapest first:

1. **Normalised key.**  Unicode-folded, case-folded, ``&`` → ``and``, punctuation and legal
   suffixes (``Inc.``, ``Co.``, ``Corp``, ``Ltd``, ``LLC``, ...) removed, spaces removed:
   ``"L'Oréal Paris Inc."`` and ``"loreal paris"`` share the key ``lorealparis``.  Same key → same
   entity.
2. **Blocking.**  Further candidates are only compared inside small blocks, so the work grows
   with the number of names, not its square: names that share a key prefix (sorted
   neighbourhood), plus the ``k`` nearest neighbours by encoder embedding (exact cosine top-k in
   chunks), plus acronym blocks (``P&G`` ↔ ``Procter & Gamble``).
3. **Scoring.**  A candidate pair is merged when one name is the acronym of the other (and the
   acronym is unambiguous), or — only if both carry the same numbers, so ``50 ml`` never merges
   with ``250 ml`` — when the keys differ by a small edit distance (typos), abbreviate each other
   word by word (``Dev.`` ↔ ``Devices``), have a high character-trigram similarity, or have both
   encoder cosine and trigram similarity above their thresholds.
   Merges are transitive (union-find); each cluster's canonical node is its most connected
   member (ties: the spelling most members share, then the shortest name).

Value nodes are only compared with values of the same attribute.  Pairwise precision and recall
against a ground-truth table (the sample generator's ``entity_variants``) are computed by
:func:`pairwise_scores`.
"""

from __future__ import annotations

import html
import re
import unicodedata
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any

import numpy as np
import pandas as pd

from kgwb.kg.model import KnowledgeGraph

LEGAL_SUFFIXES = frozenset(
    "inc incorporated co company corp corporation ltd limited llc plc gmbh ag sa srl bv the".split()
)
_NON_ALNUM = re.compile(r"[^0-9a-z& ]+")
_ACRONYM_FORM = re.compile(r"^[A-Z][A-Z.&\- ]{0,8}$")


def _fold(text: str) -> str:
    text = unicodedata.normalize("NFKD", html.unescape(html.unescape(str(text))))
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).casefold()
    return _NON_ALNUM.sub(" ", text.replace("'", ""))


def name_tokens(name: str) -> list[str]:
    """Folded tokens of a name with ``&`` spelled ``and`` and legal suffixes removed."""
    tokens = _fold(name).replace("&", " and ").split()
    while len(tokens) > 1 and tokens[-1] in LEGAL_SUFFIXES:
        tokens.pop()
    if len(tokens) > 1 and tokens[0] == "the":
        tokens = tokens[1:]
    return tokens


def match_key(name: str) -> str:
    """The normalised key (step 1 of the module docstring)."""
    return "".join(name_tokens(name))


def acronym(name: str) -> str:
    """Initials of a multi-word name (``and``/``of`` skipped); empty for one-word names."""
    words = [t for t in name_tokens(name) if t not in ("and", "of", "for")]
    if len(words) < 2 or all(len(w) == 1 for w in words):  # "P&G" is an acronym already
        return ""
    return "".join(w[0] for w in words)


_DIGITS = re.compile(r"\d+")
_COMPACT_SUFFIXES = ("llc", "inc", "ltd", "corp", "gmbh")


def compact_key(name: str) -> str:
    """:func:`match_key` with a legal suffix glued to the name removed (``UmberDevicesLLC``)."""
    key = match_key(name)
    for suffix in _COMPACT_SUFFIXES:
        if key.endswith(suffix) and len(key) - len(suffix) >= 4:
            return key[: -len(suffix)]
    return key


def edit_distance(a: str, b: str, limit: int = 3) -> int:
    """Optimal-string-alignment distance (insert, delete, substitute, swap), capped at ``limit``+1."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            cost = 0 if ca == cb else 1
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                cur[j] = min(cur[j], prev2[j - 2] + 1)
        if min(cur) > limit:
            return limit + 1
        prev2, prev = prev, cur
    return prev[-1]


def abbreviates(a: str, b: str) -> bool:
    """Word-by-word abbreviation: ``"Umber Dev. LLC"`` ↔ ``"Umber Devices LLC"`` — same number of
    words, each equal or a 3+ letter prefix written with a dot, at least one abbreviated."""
    ta, tb = name_tokens(a), name_tokens(b)
    if len(ta) != len(tb) or len(ta) < 2 or "." not in a + b:
        return False
    shortened = 0
    for x, y in zip(ta, tb):
        if x == y:
            continue
        short, long_ = (x, y) if len(x) < len(y) else (y, x)
        if len(short) < 3 or not long_.startswith(short):
            return False
        shortened += 1
    return shortened > 0


def same_numbers(a: str, b: str) -> bool:
    """Names with different numbers are different entities ("50 ml" vs "250 ml", "5.0" vs "5.3")."""
    return _DIGITS.findall(a) == _DIGITS.findall(b)


def _trigrams(key: str) -> set[str]:
    padded = f"##{key}#"
    return {padded[i : i + 3] for i in range(len(padded) - 2)}


def trigram_similarity(a: str, b: str) -> float:
    """Jaccard similarity of character trigrams (1.0 for equal keys)."""
    ta, tb = _trigrams(a), _trigrams(b)
    return len(ta & tb) / len(ta | tb) if ta or tb else 1.0


class _UnionFind:
    def __init__(self, n: int) -> None:
        self.parent = np.arange(n)

    def find(self, i: int) -> int:
        root = i
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[i] != root:
            self.parent[i], i = root, self.parent[i]
        return root

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


@dataclass
class ResolutionConfig:
    """Thresholds and blocking sizes (defaults chosen on the sample generator, seed 0)."""

    types: tuple[str, ...] = ("brand", "value")
    use_embeddings: bool = True
    model: str | None = None
    neighbours: int = 10
    embedding_threshold: float = 0.85
    trigram_with_embedding: float = 0.35
    trigram_alone: float = 0.72
    prefix_len: int = 3
    max_block: int = 200


@dataclass
class ResolutionResult:
    """Which node merged into which, the scored candidate pairs, and the merged graph."""

    mapping: pd.DataFrame  # node_id, canonical_id, type, cluster_size
    pairs: pd.DataFrame  # a, b, reason, trigram, cosine, merged
    kg: KnowledgeGraph
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def merged_nodes(self) -> int:
        return int((self.mapping["node_id"] != self.mapping["canonical_id"]).sum())


def _group_of(nodes: pd.DataFrame) -> pd.Series:
    """Comparison group: the node type, and for values also the attribute."""
    attr = nodes["node_id"].str.extract(r"^value:([^=]*)=", expand=False)
    return nodes["type"].where(attr.isna(), "value:" + attr.fillna(""))


def _candidate_pairs(
    keys: list[str], names: list[str], emb: np.ndarray | None, cfg: ResolutionConfig
):
    n = len(keys)
    pairs: dict[tuple[int, int], str] = {}

    def add(i: int, j: int, why: str) -> None:
        if i != j:
            pairs.setdefault((min(i, j), max(i, j)), why)

    by_key: dict[str, list[int]] = {}
    for i, k in enumerate(keys):
        by_key.setdefault(k, []).append(i)
    for members in by_key.values():
        for j in members[1:]:
            add(members[0], j, "key")
    # sorted neighbourhood over keys: neighbours in sort order share a prefix
    order = sorted(range(n), key=lambda i: keys[i])
    window = 6
    for pos, i in enumerate(order):
        for j in order[pos + 1 : pos + window]:
            if keys[i][: cfg.prefix_len] == keys[j][: cfg.prefix_len]:
                add(i, j, "prefix")
    # acronyms: a short key equal to the initials of exactly one longer name
    by_acronym: dict[str, list[int]] = {}
    for i, name in enumerate(names):
        a = acronym(name)
        if a:
            by_acronym.setdefault(a, []).append(i)
    for i, name in enumerate(names):
        if not _ACRONYM_FORM.match(name.strip()):
            continue  # "eos" is a word, "EOS" or "E.O.S." an acronym
        short = "".join(t for t in name_tokens(name) if t not in ("and", "of", "for"))
        hits = by_acronym.get(short, [])
        if len(short) <= 5 and hits and len({keys[j] for j in hits}) == 1:
            add(i, hits[0], "acronym")  # unambiguous: all expansions are one entity
    if emb is not None and n > 1:
        k = min(cfg.neighbours, n - 1)
        for start in range(0, n, 2048):
            sims = emb[start : start + 2048] @ emb.T
            for row, i in enumerate(range(start, min(start + 2048, n))):
                sims[row, i] = -1.0
            top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
            for row, i in enumerate(range(start, min(start + 2048, n))):
                for j in top[row]:
                    add(i, int(j), "embedding")
    return pairs


def resolve_entities(
    kg: KnowledgeGraph, config: ResolutionConfig | None = None
) -> ResolutionResult:
    """Find clusters of nodes that denote one entity and return the merged graph."""
    cfg = config or ResolutionConfig()
    nodes = kg.nodes[kg.nodes["type"].isin(cfg.types)].reset_index(drop=True)
    groups = _group_of(nodes)
    names = nodes["name"].fillna(nodes["node_id"].str.split(":", n=1).str[1]).astype(str).tolist()
    keys = [match_key(n) or n.casefold() for n in names]
    emb = None
    if cfg.use_embeddings and len(nodes):
        from kgwb.text.embed import embed_texts

        emb = embed_texts(names, model=cfg.model)
    degree = pd.concat([kg.edges["head"], kg.edges["tail"]]).value_counts()
    uf = _UnionFind(len(nodes))
    rows = []
    for _, idx in pd.Series(range(len(nodes))).groupby(groups.to_numpy()):
        idx = idx.to_numpy()
        sub_keys = [keys[i] for i in idx]
        sub_names = [names[i] for i in idx]
        sub_emb = emb[idx] if emb is not None else None
        for (a, b), why in _candidate_pairs(sub_keys, sub_names, sub_emb, cfg).items():
            ka, kb = sub_keys[a], sub_keys[b]
            tri = trigram_similarity(ka, kb)
            cos = float(sub_emb[a] @ sub_emb[b]) if sub_emb is not None else float("nan")
            ca, cb = compact_key(sub_names[a]), compact_key(sub_names[b])
            typo = min(len(ca), len(cb)) >= 6 and edit_distance(ca, cb) <= max(1, len(ca) // 8)
            merged = why in ("key", "acronym") or (
                same_numbers(ka, kb)
                and (
                    ca == cb
                    or typo
                    or abbreviates(sub_names[a], sub_names[b])
                    or tri >= cfg.trigram_alone
                    or (cos >= cfg.embedding_threshold and tri >= cfg.trigram_with_embedding)
                )
            )
            if merged:
                uf.union(int(idx[a]), int(idx[b]))
            rows.append(
                (nodes["node_id"].iat[idx[a]], nodes["node_id"].iat[idx[b]], why, tri, cos, merged)
            )
    pairs = pd.DataFrame(rows, columns=["a", "b", "reason", "trigram", "cosine", "merged"])
    roots = np.array([uf.find(i) for i in range(len(nodes))], dtype=np.int64)
    mapping = pd.DataFrame(
        {
            "node_id": nodes["node_id"].astype(str),
            "type": nodes["type"].astype(str),
            "root": roots,
            "degree": nodes["node_id"].map(degree).fillna(0).astype(int).to_numpy(),
            "key": keys,
            "name_len": [len(n) for n in names],
        }
    )
    mapping["key_votes"] = mapping.groupby(["root", "key"])["node_id"].transform("size")
    best = mapping.sort_values(
        ["root", "degree", "key_votes", "name_len", "node_id"],
        ascending=[True, False, False, True, True],
    )
    canonical = best.drop_duplicates("root").set_index("root")["node_id"]
    mapping["canonical_id"] = mapping["root"].map(canonical)
    mapping["cluster_size"] = mapping.groupby("root")["node_id"].transform("size")
    mapping = mapping[["node_id", "canonical_id", "type", "cluster_size"]]
    return ResolutionResult(
        mapping=mapping, pairs=pairs, kg=merge_nodes(kg, mapping), config=cfg.__dict__.copy()
    )


def merge_nodes(kg: KnowledgeGraph, mapping: pd.DataFrame) -> KnowledgeGraph:
    """Rewire edges from merged nodes to their canonical node; keep the variants as ``aliases``."""
    moved = mapping[mapping["node_id"] != mapping["canonical_id"]]
    if moved.empty:
        return kg
    to = pd.Series(moved["canonical_id"].to_numpy(), index=moved["node_id"].to_numpy())
    edges = kg.edges.copy()
    for end in ("head", "tail"):
        hit = edges[end].isin(to.index)
        edges.loc[hit, end] = edges.loc[hit, end].map(to).astype("string")
    edges = edges.drop_duplicates(
        ["head", "relation", "tail", "source", "item_id", "start"]
    ).reset_index(drop=True)
    nodes = kg.nodes.copy()
    names = nodes.set_index("node_id")["name"]
    aliases = (
        moved.assign(alias=moved["node_id"].map(names))
        .groupby("canonical_id")["alias"]
        .agg(lambda s: "|".join(sorted(set(map(str, s)))))
    )
    nodes = nodes[~nodes["node_id"].isin(to.index)].copy()
    nodes["aliases"] = nodes["node_id"].map(aliases).astype("string")
    meta = {**kg.meta, "resolved_nodes": int(len(moved))}
    return KnowledgeGraph(nodes=nodes.reset_index(drop=True), edges=edges, meta=meta)


def pairwise_scores(predicted: pd.Series, truth: pd.Series) -> dict[str, float]:
    """Pairwise precision / recall / F1 of a clustering.

    ``predicted`` and ``truth`` map the same element ids (index) to cluster labels.  A pair of
    elements is positive when both share a cluster; precision = true positive pairs / predicted
    pairs, recall = true positive pairs / true pairs.
    """
    common = predicted.index.intersection(truth.index)
    p, t = predicted.loc[common], truth.loc[common]

    def pairs(labels: pd.Series) -> set[tuple[str, str]]:
        out: set[tuple[str, str]] = set()
        for _, members in labels.groupby(labels.to_numpy()):
            ids = sorted(map(str, members.index))
            out.update(combinations(ids, 2))
        return out

    pp, tp_ = pairs(p), pairs(t)
    hit = len(pp & tp_)
    precision = hit / len(pp) if pp else 1.0
    recall = hit / len(tp_) if tp_ else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "precision": round(precision, 4),
        "recall": round(recall, 4),
        "f1": round(f1, 4),
        "predicted_pairs": len(pp),
        "true_pairs": len(tp_),
        "elements": int(len(common)),
    }
