"""Benchmark kgwb.train.kge: TransE, DistMult, ComplEx and RotatE on PyKEEN's bundled UMLS and
Nations graphs, plus TransE on a sample of the amazon-beauty product graph (``kg_final.txt``)
when ``kgwb.paths.shared_datasets_dir()`` finds it.

Prints one line per run: filtered MRR, Hits@1/10 (both sides, realistic ranks, PyKEEN's
evaluator), epochs trained and seconds.  ``--json PATH`` also writes every run's metrics.

    nice -n 10 .venv/bin/python benchmarks/bench_kge.py                # everything, CPU
    .venv/bin/python benchmarks/bench_kge.py --datasets nations --models transe --epochs 20
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from kgwb.paths import shared_datasets_dir
from kgwb.train.kge import MODELS, read_triples_file, train_kge

#: shared settings; early stopping on validation MRR (every 10 epochs) ends most runs sooner
SETTINGS = {"dim": 64, "lr": 0.01, "batch_size": 256, "negatives": 4}


def amazon_beauty_sample(n_triples: int, *, seed: int = 0) -> pd.DataFrame | None:
    """All triples of randomly chosen items until about ``n_triples`` (heads are items in
    kg_final.txt), so sampled items keep their whole neighbourhood; relation ids -> names."""
    root = shared_datasets_dir()
    kgat = root / "amazon-beauty" / "kgat" if root is not None else None
    if kgat is None or not (kgat / "kg_final.txt").is_file():
        return None
    triples = read_triples_file(kgat / "kg_final.txt")
    names = pd.read_csv(kgat / "relation_list.txt", sep=r"\s+", dtype=str)
    triples["relation"] = triples["relation"].map(dict(zip(names["remap_id"], names["org_id"])))
    per_item = triples["head"].value_counts()
    items = per_item.index.to_numpy()[np.random.default_rng(seed).permutation(len(per_item))]
    counts = per_item.loc[items].to_numpy()
    keep = items[: int(np.searchsorted(np.cumsum(counts), n_triples)) + 1]
    return triples[triples["head"].isin(keep)].reset_index(drop=True)


def _line(name: str, m: dict) -> str:
    return (
        f"{name:<28} {m['model']:<9} ent={m['num_entities']:>6} triples={m['num_triples']:>7} "
        f"MRR={m['mrr']:.3f} H@1={m['hits@1']:.3f} H@10={m['hits@10']:.3f} "
        f"epochs={m['epochs']:>3} train={m['train_seconds']:7.1f}s eval={m['evaluate_seconds']:5.1f}s"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", default="umls,nations", help="bundled PyKEEN graphs")
    parser.add_argument("--models", default=",".join(MODELS), help="comma-separated models")
    parser.add_argument("--epochs", type=int, default=200, help="maximum epochs (default 200)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--amazon-triples",
        type=int,
        default=50_000,
        help="size of the amazon-beauty sample for TransE (0 skips it; default 50000)",
    )
    parser.add_argument("--amazon-epochs", type=int, default=30)
    parser.add_argument(
        "--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)"
    )
    parser.add_argument("--json", type=Path, default=None, help="also write all metrics here")
    args = parser.parse_args(argv)
    os.environ.setdefault("TQDM_DISABLE", "1")
    import torch

    if args.threads is not None:
        torch.set_num_threads(args.threads)

    runs: list[dict] = []

    def run(name: str, triples, model: str, epochs: int, early_stopping: bool = True) -> None:
        result = train_kge(
            triples=triples,
            model=model,
            epochs=epochs,
            early_stopping=early_stopping,
            seed=args.seed,
            device=args.device,
            progress=False,
            **SETTINGS,
        )
        runs.append({"data": name, **result.metrics})
        print(_line(name, result.metrics), flush=True)

    print(
        f"settings: {SETTINGS} max_epochs={args.epochs} seed={args.seed} "
        f"torch_threads={torch.get_num_threads()} cpus={os.cpu_count()}",
        flush=True,
    )
    for dataset in [d.strip() for d in args.datasets.split(",") if d.strip()]:
        for model in [m.strip() for m in args.models.split(",") if m.strip()]:
            run(dataset, dataset, model, args.epochs)

    if args.amazon_triples > 0:
        started = time.perf_counter()
        sample = amazon_beauty_sample(args.amazon_triples, seed=args.seed)
        if sample is None:
            print("amazon-beauty: not found under shared_datasets_dir(); skipped")
        else:
            seconds = time.perf_counter() - started
            counts = sample["relation"].value_counts().to_dict()
            print(
                f"amazon-beauty sample: {len(sample)} triples of {sample['head'].nunique()} "
                f"items, read+sampled in {seconds:.1f}s; per relation {counts}",
                flush=True,
            )
            # no early stopping: one filtered ranking of the validation triples against ~24k
            # entities costs as much as a few dozen epochs on CPU
            run(
                f"amazon-beauty[{len(sample)}]",
                sample,
                "transe",
                args.amazon_epochs,
                early_stopping=False,
            )

    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(runs, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
