"""LightGCN against the default KG-aware model (gated ``kgat``) on a thin and a rich KG, with the
KG-informativeness table of each dataset (:mod:`kgwb.train.kg_diagnostic`).

    nice -n 10 python benchmarks/bench_kg_gate.py --epochs 60                 # every dataset
    nice -n 10 python benchmarks/bench_kg_gate.py --datasets beauty-thin --epochs 60
    python benchmarks/bench_kg_gate.py --datasets sample --epochs 30 --models kgat:gate=false

Datasets (the real ones are read from ``../shared/datasets`` or ``$KGWB_SHARED_DATASETS``, and
skipped when absent):

* ``beauty`` — amazon-beauty, KGAT layout, its full KG (also_bought, also_viewed, ... 1.1M triples);
* ``beauty-thin`` — the same split with ``kg_final.txt`` cut to ``produced_by`` and ``belongs_to``
  (brand and category only: the thin-KG case), written to a temporary folder;
* ``scientific`` — amazon-scientific (RecBole layout), KG from the catalog's brand and categories;
* ``sample`` — ``sample:small``, whose KG carries the users' tastes, and ``sample-random``, the
  same KG with its item nodes shuffled (a KG that says nothing).

Both models: untouched defaults of :func:`kgwb.train.train_recommender` (dim 64, 2 layers, Adam
lr 1e-3, batch 2048, L2 1e-4; ``--lr 0.01`` is ``kgwb train``'s default), same seed, validation
every epoch, patience 10, ``--threads`` torch threads (1 by default).  Printed per dataset: the
informativeness table, then one JSON line per model with valid/test Recall@20 and NDCG@20, the
best epoch and seconds per epoch, and for ``kgat`` the per-relation gate table (:func:`kgwb.train.kg_diagnostic.kg_usage`).
A model may carry options: ``kgat:gate=false,neighbors=16``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
THIN_RELATIONS = ("produced_by", "belongs_to")


def shared_root() -> Path | None:
    root = Path(os.environ.get("KGWB_SHARED_DATASETS", REPO.parent / "shared" / "datasets"))
    return root if root.is_dir() else None


def thin_kgat_copy(src: Path, dst: Path, relations=THIN_RELATIONS) -> Path:
    """A copy of the KGAT folder ``src`` whose ``kg_final.txt`` keeps only ``relations``."""
    import pandas as pd

    dst.mkdir(parents=True, exist_ok=True)
    for f in src.glob("*.txt"):
        if f.name != "kg_final.txt":
            shutil.copy(f, dst / f.name)
    names = pd.read_csv(src / "relation_list.txt", sep=r"\s+", dtype=str)
    keep = set(names.loc[names["org_id"].isin(relations), "remap_id"].astype(int))
    kg = np.loadtxt(src / "kg_final.txt", dtype=np.int64).reshape(-1, 3)
    np.savetxt(dst / "kg_final.txt", kg[np.isin(kg[:, 1], list(keep))], fmt="%d")
    return dst


def random_kg(dataset, seed: int = 0):
    """The catalog KG of ``dataset`` with its item nodes shuffled: same shape, no information."""
    from kgwb.kg.catalog import catalog_graph
    from kgwb.kg.model import KnowledgeGraph

    kg = catalog_graph(dataset)
    edges = kg.edges.copy()
    ends = _item_nodes(edges)
    perm = dict(zip(ends, np.random.default_rng(seed).permutation(ends)))
    for col in ("head", "tail"):
        edges[col] = edges[col].map(lambda v: perm.get(v, v))
    return KnowledgeGraph(nodes=kg.nodes, edges=edges)


def _item_nodes(edges) -> np.ndarray:
    ends = np.concatenate([edges["head"].to_numpy(object), edges["tail"].to_numpy(object)])
    return np.asarray(sorted({e for e in ends if str(e).startswith("item:")}), dtype=object)


def load(name: str, tmp: Path):
    """``(dataset, kg)`` for a benchmark dataset name, or None when its files are absent."""
    from kgwb.data import load_dataset

    root = shared_root()
    if name in ("sample", "sample-random"):
        ds = load_dataset("sample:small")
        return ds, (random_kg(ds) if name == "sample-random" else None)
    if root is None:
        return None
    if name == "beauty":
        return load_dataset(root / "amazon-beauty" / "kgat", format="kgat"), None
    if name == "beauty-thin":
        folder = thin_kgat_copy(root / "amazon-beauty" / "kgat", tmp / "amazon-beauty-thin")
        return load_dataset(folder, format="kgat"), None
    if name == "scientific":
        return load_dataset(root / "amazon-scientific" / "recbole", format="recbole"), None
    raise SystemExit(f"unknown dataset {name!r}")


def parse_model(spec: str) -> tuple[str, dict]:
    name, _, opts = spec.partition(":")
    options = {}
    for pair in filter(None, opts.split(",")):
        key, _, value = pair.partition("=")
        options[key] = json.loads(value.lower() if value.lower() in ("true", "false") else value)
    return name, options


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="sample,sample-random,scientific,beauty-thin,beauty")
    parser.add_argument("--models", default="lightgcn,kgat")
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--eval-every", type=int, default=1)
    parser.add_argument("--patience", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--lr", type=float, default=None, help="default: train_recommender's")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--no-diagnostic", action="store_true")
    args = parser.parse_args()

    import pandas as pd
    import torch

    from kgwb.train.kg_diagnostic import kg_informativeness, kg_usage
    from kgwb.train.recommend import train_recommender

    torch.set_num_threads(args.threads)
    warnings.simplefilter("ignore")
    pd.set_option("display.width", 200)
    pd.set_option("display.max_columns", 20)
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.datasets.split(","):
            loaded = load(name, Path(tmp))
            if loaded is None:
                print(f"# {name}: skipped (no ../shared/datasets)")
                continue
            dataset, kg = loaded
            print(f"# {name}")
            if not args.no_diagnostic:
                print(kg_informativeness(dataset, kg).to_string(index=False))
            for spec in args.models.split(","):
                model, options = parse_model(spec)
                t0 = time.perf_counter()
                res = train_recommender(
                    dataset=dataset,
                    model=model,
                    kg=kg,
                    epochs=args.epochs,
                    eval_every=args.eval_every,
                    patience=args.patience,
                    seed=args.seed,
                    device=args.device,
                    progress=False,
                    model_options=options or None,
                    **({"lr": args.lr} if args.lr is not None else {}),
                )
                row = {
                    "dataset": name,
                    "model": spec,
                    "valid_recall@20": round(res.valid["recall@20"], 4),
                    "test_recall@20": round(res.test["recall@20"], 4),
                    "test_ndcg@20": round(res.test["ndcg@20"], 4),
                    "best_epoch": res.best_epoch,
                    "epochs_run": res.epochs_run,
                    "s_per_epoch": round(res.seconds_per_epoch, 2),
                    "wall_s": round(time.perf_counter() - t0),
                }
                print(json.dumps(row), flush=True)
                if model == "kgat" and getattr(res.model, "gated", False):
                    print(kg_usage(res.model).to_string(index=False), flush=True)


if __name__ == "__main__":
    main()
