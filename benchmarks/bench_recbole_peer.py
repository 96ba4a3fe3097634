"""Peer benchmark: kgwb's LightGCN (and KG-aware ``kgat``) against RecBole 1.2.1's LightGCN on
amazon-beauty, with the same fixed split and the same hyper-parameters on both sides.

    python benchmarks/bench_recbole_peer.py --epochs 300            # full run (hours on CPU)
    nice -n 10 python benchmarks/bench_recbole_peer.py --epochs 20   # a short comparison

RecBole needs an old numpy/pandas stack, so it lives in its own virtualenv, created on first use
under ``.bench/recbole-venv`` (the folder ignores itself) with::

    pip install torch==2.13.0 "numpy<1.24" "pandas<2.1" "scipy<1.12" "setuptools<81" recbole==1.2.1

and runs in a subprocess with ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1`` (it reloads its own pickled
checkpoint).  RecBole reads ``../shared/datasets/amazon-beauty/recbole`` (through a symlink named
after the dataset), kgwb reads the KGAT folder of the same split.

Same on both sides: embedding 64, 2 layers, Adam lr 1e-3, batch 2048, one uniform negative per
positive, L2 weight 1e-4 on the batch's ego embeddings, full ranking with train (and for test
valid) items masked, early stopping on valid Recall@20 with the same patience, ``--threads``
torch threads.  RecBole's ``eval_batch_size`` is 256 × (n_items + 1) (its default 4096 would score
one user per batch).  Printed: seconds per training epoch of each side and their ratio, the
seconds of one validation pass, and test Recall@20 / NDCG@20 (plus @10) of each model.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / ".bench"
VENV = BENCH / "recbole-venv"
RECBOLE_PACKAGES = [
    "torch==2.13.0",
    "numpy<1.24",
    "pandas<2.1",
    "scipy<1.12",
    "setuptools<81",
    "recbole==1.2.1",
]
DATASET = "amazon-beauty"

RUNNER = textwrap.dedent(
    """
    import json, sys, time
    import torch
    cfg = json.loads(sys.argv[1])
    torch.set_num_threads(cfg.pop("threads"))
    from recbole.config import Config
    from recbole.data import create_dataset, data_preparation
    from recbole.model.general_recommender import LightGCN
    from recbole.trainer import Trainer
    from recbole.utils import init_logger, init_seed

    config = Config(model="LightGCN", dataset=cfg.pop("dataset"), config_dict=cfg)
    init_seed(config["seed"], config["reproducibility"])
    init_logger(config)
    dataset = create_dataset(config)
    train_data, valid_data, test_data = data_preparation(config, dataset)
    model = LightGCN(config, train_data.dataset).to(config["device"])
    trainer = Trainer(config, model)
    train_times, eval_times = [], []

    def timed(fn, bucket):
        def wrapper(*a, **k):
            t = time.perf_counter()
            out = fn(*a, **k)
            bucket.append(time.perf_counter() - t)
            return out
        return wrapper

    valid_scores = []

    def record(fn):
        def wrapper(*a, **k):
            out = fn(*a, **k)
            valid_scores.append(float(out[0]))
            return out
        return wrapper

    trainer._train_epoch = timed(trainer._train_epoch, train_times)
    trainer._valid_epoch = timed(record(trainer._valid_epoch), eval_times)
    best_score, best_valid = trainer.fit(train_data, valid_data, saved=True, show_progress=False)
    test = trainer.evaluate(test_data, load_best_model=True, show_progress=False)
    print("RESULT " + json.dumps({
        "seconds_per_epoch": sum(train_times) / max(len(train_times), 1),
        "eval_seconds": sum(eval_times) / max(len(eval_times), 1),
        "epochs_run": len(train_times),
        "best_epoch": (valid_scores.index(max(valid_scores)) + 1) * config["eval_step"]
        if valid_scores else 0,
        "valid": {k: float(v) for k, v in best_valid.items()},
        "test": {k: float(v) for k, v in test.items()},
        "n_items": int(dataset.item_num),
        "n_users": int(dataset.user_num),
    }))
    """
)


def ensure_venv() -> Path:
    """Create ``.bench/recbole-venv`` with RecBole 1.2.1 unless it exists; returns its python."""
    python = VENV / "bin" / "python"
    BENCH.mkdir(exist_ok=True)
    (BENCH / ".gitignore").write_text("*\n")
    if python.is_file():
        probe = subprocess.run(
            [str(python), "-c", "import recbole"], capture_output=True, text=True
        )
        if probe.returncode == 0:
            return python
    subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", *RECBOLE_PACKAGES], check=True)
    return python


def run_recbole(args: argparse.Namespace, recbole_dir: Path, n_items: int) -> dict:
    python = ensure_venv()
    data_root = BENCH / "recbole-data"
    data_root.mkdir(exist_ok=True)
    link = data_root / DATASET
    if not link.exists():
        link.symlink_to(recbole_dir.resolve(), target_is_directory=True)
    workdir = BENCH / "recbole-run"
    workdir.mkdir(exist_ok=True)
    cfg = {
        "dataset": DATASET,
        "threads": args.threads,
        "data_path": str(data_root),
        "checkpoint_dir": str(workdir / "saved"),
        "benchmark_filename": ["train", "valid", "test"],
        "load_col": {"inter": ["user_id", "item_id"]},
        "eval_args": {"group_by": "user", "order": "RO", "mode": "full"},
        "topk": [10, 20],
        "metrics": ["Recall", "NDCG"],
        "valid_metric": "Recall@20",
        "use_gpu": False,
        "seed": args.seed,
        "reproducibility": True,
        "embedding_size": 64,
        "n_layers": 2,
        "learning_rate": 1e-3,
        "train_batch_size": 2048,
        "reg_weight": 1e-4,
        "train_neg_sample_args": {"distribution": "uniform", "sample_num": 1},
        "epochs": args.epochs,
        "eval_step": args.eval_every,
        "stopping_step": args.patience,
        "eval_batch_size": 256 * (n_items + 1),
        "show_progress": False,
        "log_wandb": False,
    }
    env = {
        **os.environ,
        "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD": "1",
        "OMP_NUM_THREADS": str(args.threads),
    }
    t0 = time.perf_counter()
    proc = subprocess.run(
        [str(python), "-c", RUNNER, json.dumps(cfg)],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
    )
    (workdir / "last_run.log").write_text(proc.stdout + proc.stderr)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        sys.stderr.write(proc.stdout[-4000:] + proc.stderr[-4000:])
        raise SystemExit(f"RecBole run failed (exit {proc.returncode}); log in {workdir}")
    out = json.loads(lines[-1][len("RESULT ") :])
    out["wall_seconds"] = time.perf_counter() - t0
    return out


def run_kgwb(args: argparse.Namespace, kgat_dir: Path, model: str) -> dict:
    import torch

    from kgwb.data import load_dataset
    from kgwb.train import train_recommender

    torch.set_num_threads(args.threads)
    dataset = load_dataset(kgat_dir, format="kgat")
    t0 = time.perf_counter()
    res = train_recommender(
        dataset=dataset,
        model=model,
        epochs=args.epochs,
        dim=64,
        layers=2,
        lr=1e-3,
        batch_size=2048,
        reg=1e-4,
        device=args.device,
        seed=args.seed,
        eval_every=args.eval_every,
        patience=args.patience,
        progress=False,
        out_dir=None if args.out is None else Path(args.out) / model,
    )
    return {
        "seconds_per_epoch": res.seconds_per_epoch,
        "eval_seconds": res.eval_seconds,
        "epochs_run": res.epochs_run,
        "best_epoch": res.best_epoch,
        "valid": res.valid,
        "test": res.test,
        "peak_memory_mb": res.peak_memory_mb,
        "device": res.device,
        "wall_seconds": time.perf_counter() - t0,
    }


def main(argv: list[str] | None = None) -> int:
    from kgwb.paths import shared_datasets_dir

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--epochs", type=int, default=300)
    p.add_argument("--eval-every", type=int, default=1)
    p.add_argument("--patience", type=int, default=10, help="evaluations without improvement")
    p.add_argument("--threads", type=int, default=1, help="torch threads on both sides")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu", help="kgwb's device (RecBole runs on the CPU)")
    p.add_argument("--models", default="lightgcn,kgat", help="kgwb models to run")
    p.add_argument("--skip-recbole", action="store_true")
    p.add_argument("--out", default=None, help="folder for kgwb's runs and results.json")
    args = p.parse_args(argv)

    shared = shared_datasets_dir()
    if shared is None or not (shared / DATASET).is_dir():
        print("amazon-beauty not found (../shared/datasets); nothing to compare")
        return 0
    kgat_dir, recbole_dir = shared / DATASET / "kgat", shared / DATASET / "recbole"
    n_items = sum(1 for _ in open(kgat_dir / "item_list.txt")) - 1

    results: dict[str, dict] = {}
    for model in [m for m in args.models.split(",") if m]:
        print(f"kgwb {model} ...", flush=True)
        results[f"kgwb {model}"] = run_kgwb(args, kgat_dir, model)
    if not args.skip_recbole:
        print("RecBole LightGCN ...", flush=True)
        results["recbole LightGCN"] = run_recbole(args, recbole_dir, n_items)

    def metric(res: dict, name: str) -> float:
        for key in (name, name.replace("recall", "Recall").replace("ndcg", "NDCG")):
            if key in res:
                return res[key]
            low = {k.lower(): v for k, v in res.items()}
            if key.lower() in low:
                return low[key.lower()]
        return float("nan")

    print(
        f"\namazon-beauty, epochs ≤ {args.epochs}, eval every {args.eval_every}, patience "
        f"{args.patience}, {args.threads} thread(s), seed {args.seed}"
    )
    header = f"{'run':<20} {'s/epoch':>8} {'eval s':>7} {'epochs':>6} {'best':>5} "
    header += f"{'R@10':>7} {'N@10':>7} {'R@20':>7} {'N@20':>7}"
    print(header)
    for name, res in results.items():
        best = res["best_epoch"]
        best = best if isinstance(best, int) else "-"
        row = f"{name:<20} {res['seconds_per_epoch']:>8.2f} {res['eval_seconds']:>7.2f} "
        row += f"{res['epochs_run']:>6} {best!s:>5} "
        row += " ".join(
            f"{metric(res['test'], m):>7.4f}"
            for m in ("recall@10", "ndcg@10", "recall@20", "ndcg@20")
        )
        print(row)
    if "kgwb lightgcn" in results and "recbole LightGCN" in results:
        ours, theirs = results["kgwb lightgcn"], results["recbole LightGCN"]
        ratio = ours["seconds_per_epoch"] / theirs["seconds_per_epoch"]
        d_recall = metric(ours["test"], "recall@20") - metric(theirs["test"], "recall@20")
        print(
            f"\nkgwb / RecBole LightGCN s/epoch: {ratio:.2f} (target ≤ 0.5); "
            f"test Recall@20 difference {d_recall:+.4f} (target ≥ 0)"
        )
    if "kgwb kgat" in results and "kgwb lightgcn" in results:
        d = metric(results["kgwb kgat"]["test"], "recall@20") - metric(
            results["kgwb lightgcn"]["test"], "recall@20"
        )
        print(f"kgwb kgat − lightgcn test Recall@20: {d:+.4f} (target > 0)")
    if args.out:
        Path(args.out).mkdir(parents=True, exist_ok=True)
        (Path(args.out) / "results.json").write_text(json.dumps(results, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
