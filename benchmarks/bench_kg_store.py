"""Benchmark: build the embedded graph store from a ~1.1M-triple KG and time a few queries.

    python benchmarks/bench_kg_store.py                 # amazon-beauty when shared data exists
    python benchmarks/bench_kg_store.py --synthetic     # 1.1M random triples
    python benchmarks/bench_kg_store.py --out /tmp/x    # keep the store there

Amazon-beauty (``<shared datasets>/amazon-beauty/kgat``) goes through the normal path:
``load_dataset(..., format="kgat")`` then ``catalog_graph``.  When either is unavailable the
KGAT ``kg_final.txt`` is converted directly (entities as nodes, ``dataset`` edges, confidence 1).
Target: the build under 60 s on CPU.
"""

from __future__ import annotations

import argparse
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from kgwb.kg.model import KnowledgeGraph
from kgwb.kg.store import GraphStore
from kgwb.paths import shared_datasets_dir


def synthetic_kg(
    n_triples: int = 1_100_000, n_items: int = 12_000, seed: int = 0
) -> KnowledgeGraph:
    """Random item-item and item-attribute triples in the shape of amazon-beauty."""
    rng = np.random.default_rng(seed)
    n_values = 110_000
    items = np.array([f"item:{i}" for i in range(n_items)], dtype=object)
    values = np.array([f"value:v{i}" for i in range(n_values)], dtype=object)
    nodes = pd.DataFrame(
        {
            "node_id": np.concatenate([items, values]),
            "type": ["item"] * n_items + ["value"] * n_values,
            "name": np.concatenate([items, values]),
        }
    )
    relations = np.array(["also_bought", "also_viewed", "has_value", "bought_together"])
    rel = rng.choice(relations, size=n_triples, p=[0.8, 0.14, 0.05, 0.01])
    head = items[rng.integers(0, n_items, n_triples)]
    to_value = rel == "has_value"
    tail = np.where(
        to_value,
        values[rng.integers(0, n_values, n_triples)],
        items[rng.integers(0, n_items, n_triples)],
    )
    edges = pd.DataFrame(
        {"head": head, "relation": rel, "tail": tail, "source": "dataset", "confidence": 1.0}
    )
    return KnowledgeGraph(nodes=nodes, edges=edges, meta={"name": "synthetic"})


def kgat_direct(folder: Path) -> KnowledgeGraph:
    """KGAT ``kg_final.txt`` straight into a KG (entity ids as nodes, relation names when the
    relation list has them)."""
    kg = pd.read_csv(
        folder / "kg_final.txt", sep=r"\s+", header=None, names=["h", "r", "t"], dtype=str
    )
    relation_names: dict[str, str] = {}
    rel_file = folder / "relation_list.txt"
    if rel_file.is_file():
        rl = pd.read_csv(rel_file, sep=r"\s+", dtype=str)
        relation_names = dict(zip(rl.iloc[:, 1], rl.iloc[:, 0], strict=False))
    ids = pd.unique(pd.concat([kg["h"], kg["t"]], ignore_index=True))
    nodes = pd.DataFrame({"node_id": "entity:" + pd.Series(ids), "type": "entity", "name": ids})
    edges = pd.DataFrame(
        {
            "head": "entity:" + kg["h"],
            "relation": kg["r"].map(relation_names).fillna(kg["r"]),
            "tail": "entity:" + kg["t"],
            "source": "dataset",
            "confidence": 1.0,
        }
    )
    return KnowledgeGraph(nodes=nodes, edges=edges, meta={"name": folder.parent.name})


def load_kg(synthetic: bool) -> tuple[str, KnowledgeGraph]:
    shared = shared_datasets_dir()
    folder = shared / "amazon-beauty" / "kgat" if shared else None
    if synthetic or folder is None or not folder.is_dir():
        return "synthetic (1.1M random triples)", synthetic_kg()
    try:
        from kgwb.data import load_dataset
        from kgwb.kg.build import catalog_graph

        return "amazon-beauty via load_dataset + catalog_graph", catalog_graph(
            load_dataset(folder, format="kgat")
        )
    except (ImportError, AttributeError, NotImplementedError) as err:
        print(f"(loader or catalog_graph unavailable: {err!r}; converting kg_final.txt directly)")
        return "amazon-beauty kg_final.txt (direct)", kgat_direct(folder)


def time_query(store: GraphStore, fn, repeat: int = 50) -> tuple[float, float]:
    """Median and p95 latency in milliseconds (after one warm-up call)."""
    fn(store)
    samples = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn(store)
        samples.append((time.perf_counter() - t) * 1000)
    samples.sort()
    return statistics.median(samples), samples[int(0.95 * (len(samples) - 1))]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--synthetic", action="store_true", help="ignore shared data")
    ap.add_argument("--out", type=Path, help="store folder to keep (default: a temp folder)")
    args = ap.parse_args(argv)

    t = time.perf_counter()
    label, kg = load_kg(args.synthetic)
    load_s = time.perf_counter() - t
    print(f"graph: {label}")
    print(f"python {platform.python_version()}, {platform.machine()}")
    print(f"nodes: {len(kg.nodes):,}  edges: {len(kg.edges):,}  (KG prepared in {load_s:.1f} s)")

    tmp = None if args.out else Path(tempfile.mkdtemp(prefix="kgwb-bench-"))
    path = args.out or tmp / "store"
    try:
        t = time.perf_counter()
        store = GraphStore.build(kg, path, overwrite=True)
        build_s = time.perf_counter() - t
        print(f"store build: {build_s:.2f} s (target < 60 s)")
        with store:
            assert store.count_edges() == len(kg.edges), "edge count mismatch"
            assert store.count_nodes() == len(kg.nodes), "node count mismatch"
            # the busiest node, so the look-up is not trivially small
            busiest = kg.edges["head"].value_counts().index[0]
            rel = kg.edges.loc[kg.edges["head"] == busiest, "relation"].iloc[0]
            value = kg.edges["tail"].value_counts().index[0]
            vrel = kg.edges.loc[kg.edges["tail"] == value, "relation"].iloc[0]
            for name, fn in (
                (f"neighbors({busiest!r}, limit=100)", lambda s: s.neighbors(busiest, limit=100)),
                (f"neighbors({busiest!r}, {rel!r})", lambda s: s.neighbors(busiest, rel)),
                (f"items_with({vrel!r}, {value!r})", lambda s: s.items_with(vrel, value)),
                ("count_edges()", lambda s: s.count_edges()),
            ):
                med, p95 = time_query(store, fn, repeat=20 if "count" in name else 50)
                print(f"query {name}: median {med:.2f} ms, p95 {p95:.2f} ms")
            t = time.perf_counter()
            counts = store.relation_counts()
            print(f"query relation_counts(): {(time.perf_counter() - t) * 1000:.1f} ms")
            print(counts.to_string(index=False))
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
