"""Past one machine: sampled mini-batch epochs, data-parallel training, Ray inference.

    nice -n 10 python benchmarks/bench_scale_out.py sampled --steps 20          # medium, large
    nice -n 10 python benchmarks/bench_scale_out.py sampled --steps 15 --sizes medium,large,xlarge --sampled-only
    nice -n 10 python benchmarks/bench_scale_out.py sampled --samplers history --sizes medium,large,xlarge
    nice -n 10 python benchmarks/bench_scale_out.py accuracy --epochs 30        # amazon-beauty
    nice -n 10 python benchmarks/bench_scale_out.py ddp                         # sample:small
    nice -n 10 python benchmarks/bench_scale_out.py ray --extractor DIR         # OA-Mine test

``sampled``: seconds per training epoch of the full-graph and the sampled (``--fanout``) step
for each size, each in a fresh one-thread process, derived from ``--steps`` timed steps (after
one warm-up) × steps per epoch — the same step as ``train_recommender`` (BPR + L2 + the model's
auxiliary loss; the optimizer of ``train_recommender``: Adam, or in sampled mode on tables of
2M+ rows lazy row-wise Adam on row-sparse gradients, ``KGWB_SPARSE_MIN_ROWS`` overrides).
``--samplers history`` times :mod:`kgwb.train.history` (one hop drawn at the first
``--fanout``; its per-epoch history propagation is in the epoch's seconds).
Sampled runs also report the mean sampled nodes and edges per step and the CPU microseconds
per sampled edge (what a step costs per unit of what it samples).  Both wall-clock and process
CPU seconds are printed: CPU seconds of a one-thread process move much less than wall seconds
when other processes load the machine (still ±15% between runs at load ~10 on 2 cores).  The
growth exponent ``b`` of ``s/epoch ∝ interactions^b`` is fitted over the sizes (least squares in
log-log), and the ratio large/medium is the issue's bar (<= 15).

``accuracy``: test Recall@20 of full-graph vs sampled training on amazon-beauty (KGAT layout in
``../shared/datasets``) after ``--epochs`` epochs (or early stopping); ``KGWB_SPARSE_MIN_ROWS=0``
makes the sampled run use row-sparse tables with lazy Adam (``kgwb/train/sparse_optim.py``).

``ddp``: ``kgwb train --nproc 2 --device cpu`` vs one process on ``sample:small``: test
Recall@20, world size, seconds per epoch.

``ray``: ``kgwb extract apply`` in process vs ``--engine ray`` with 1 and 2 workers on OA-Mine
test titles: identical spans, titles/second.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("KGWB_SHARED_DATASETS", REPO.parent / "shared" / "datasets"))


# ----------------------------------------------------------------------------- sampled epochs
def step_timing(size: str, model: str, sampler: str, fanout: str, steps: int) -> dict:
    import resource

    import torch

    from kgwb.data import load_dataset
    from kgwb.train import build_collab_kg, build_model, prepare_interactions
    from kgwb.train.models import MODELS
    from kgwb.train.recommend import _adam, _NegativeSampler, _TrainStep
    from kgwb.train.sampler import SamplerConfig, parse_fanouts, sampled_training
    from kgwb.train.sparse_optim import sampled_optimizer

    torch.set_num_threads(1)
    ds = load_dataset(f"sample:{size}")
    data = prepare_interactions(ds, warn=False)
    ckg = build_collab_kg(data, ds, None) if MODELS[model].uses_kg else None
    net = build_model(model, data, kg=ckg)
    fanouts = parse_fanouts(fanout, net.layers)
    config = SamplerConfig(sampler, fanouts[:1] if sampler == "history" else fanouts)
    sampled = sampled_training(net, config)
    step = _TrainStep(net, sampled)
    opt = (
        sampled_optimizer(net, 1e-3, min_rows=config.sparse_min_rows)
        if config.sampled
        else _adam(net, 1e-3)
    )
    negatives = _NegativeSampler(data.train, data.n_items, torch.device("cpu"))
    train = torch.as_tensor(data.train)
    gen = torch.Generator().manual_seed(0)
    sub_gen = torch.Generator().manual_seed(1)
    net.train()
    t_epoch = time.perf_counter()
    net.on_epoch_start(gen)
    if sampled is not None:
        sampled.on_epoch_start()
    epoch_start_s = time.perf_counter() - t_epoch
    sizes = []  # per timed step: (sampled nodes, sampled edges over all layers)
    if sampled is not None:
        draw = sampled.sampler.sample

        def counting_sample(seeds, generator=None):
            sub = draw(seeds, generator)
            edges = sum(int(m.values().numel()) for layer in sub.layers for m in layer.values())
            sizes.append((len(sub.nodes), edges))
            return sub

        sampled.sampler.sample = counting_sample
    batch = 2048
    for i in range(steps + 1):
        if i == 1:  # the first step warms up allocators and lazy imports
            wall, cpu = time.perf_counter(), time.process_time()
        b = train[torch.randint(len(train), (batch,), generator=gen)]
        users, pos = b[:, 0], b[:, 1]
        loss, *_ = step(users, pos, negatives(users, gen), 1e-4, batch, gen, sub_gen)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    wall, cpu = (time.perf_counter() - wall) / steps, (time.process_time() - cpu) / steps
    per_epoch = math.ceil(len(train) / batch)
    return {
        "size": size,
        "model": model,
        "sampler": sampler,
        "fanout": ",".join(map(str, config.fanouts)) if config.sampled else None,
        "train_interactions": int(len(train)),
        "nodes": int(net.n_users + getattr(net, "n_entities", net.n_items)),
        "steps_timed": steps,
        "steps_per_epoch": per_epoch,
        "wall_s_per_epoch": wall * per_epoch + epoch_start_s,
        "cpu_s_per_epoch": cpu * per_epoch + epoch_start_s,
        "row_sparse_tables": type(opt).__name__ == "RowSparseAdam",
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        **_sampled_sizes(sizes[1:], cpu),
    }


def _sampled_sizes(sizes: list[tuple[int, int]], cpu_s_per_step: float) -> dict:
    """Mean sampled nodes and edges of the timed steps, and CPU microseconds per sampled
    edge: constant across sizes when no step cost grows with the whole graph."""
    if not sizes:
        return {}
    nodes = sum(n for n, _ in sizes) / len(sizes)
    edges = sum(e for _, e in sizes) / len(sizes)
    return {
        "sampled_nodes_per_step": round(nodes),
        "sampled_edges_per_step": round(edges),
        "cpu_us_per_sampled_edge": 1e6 * cpu_s_per_step / edges if edges else None,
        "cpu_s_per_step": cpu_s_per_step,
    }


def growth_exponent(points: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of log(seconds) on log(interactions)."""
    if len(points) < 2:
        return None
    xs = [math.log(n) for n, _ in points]
    ys = [math.log(t) for _, t in points]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    den = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / den if den else None


def run_sampled(args) -> dict:
    rows = []
    for model in args.models.split(","):
        samplers = args.samplers.split(",")
        for sampler in [s for s in samplers if s != "full"] if args.sampled_only else samplers:
            for size in args.sizes.split(","):
                res = _subprocess(
                    "steps", size, model, sampler, args.fanout, str(args.steps), nice=True
                )
                rows.append(res)
                print(json.dumps(res), flush=True)
    summary = {}
    for model in args.models.split(","):
        for sampler in args.samplers.split(","):
            pts = [r for r in rows if r.get("model") == model and r.get("sampler") == sampler]
            if not pts:
                continue
            by = {r["size"]: r for r in pts}
            entry = {
                "exponent_cpu": growth_exponent(
                    [(r["train_interactions"], r["cpu_s_per_epoch"]) for r in pts]
                ),
                "exponent_wall": growth_exponent(
                    [(r["train_interactions"], r["wall_s_per_epoch"]) for r in pts]
                ),
            }
            if "medium" in by and "large" in by:
                entry["large_over_medium_cpu"] = (
                    by["large"]["cpu_s_per_epoch"] / by["medium"]["cpu_s_per_epoch"]
                )
                entry["large_over_medium_wall"] = (
                    by["large"]["wall_s_per_epoch"] / by["medium"]["wall_s_per_epoch"]
                )
            summary[f"{model}/{sampler}"] = entry
    return {"runs": rows, "summary": summary}


# ---------------------------------------------------------------------------------- accuracy
def run_accuracy(args) -> dict:
    from kgwb.data import load_dataset
    from kgwb.train import train_recommender

    path = SHARED / "amazon-beauty" / "kgat"
    if not path.is_dir():
        return {"skipped": f"{path} not found"}
    ds = load_dataset(path, format="kgat")
    out = {}
    for model in args.models.split(","):
        for sampler in args.samplers.split(","):
            res = train_recommender(
                dataset=ds,
                model=model,
                epochs=args.epochs,
                sampler=sampler,
                fanouts=args.fanout,
                history_refresh=args.history_refresh,
                eval_every=args.eval_every,
                progress=False,
            )
            out[f"{model}/{sampler}"] = {
                "test_recall@20": res.test["recall@20"],
                "valid_recall@20": res.valid["recall@20"],
                "best_epoch": res.best_epoch,
                "epochs_run": res.epochs_run,
                "seconds_per_epoch": res.seconds_per_epoch,
                "optimizer": res.config["optimizer"],
            }
            print(model, sampler, json.dumps(out[f"{model}/{sampler}"]), flush=True)
    return out


# ---------------------------------------------------------------------------------------- ddp
def run_ddp(args) -> dict:
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for nproc in (1, 2):
            run = Path(tmp) / f"n{nproc}"
            cmd = [sys.executable, "-m", "kgwb", "train", "--dataset", args.dataset]
            cmd += ["--epochs", str(args.epochs), "--device", "cpu", "--out", str(run)]
            cmd += ["--no-progress", "--save-top-k", "0", "--nproc", str(nproc)]
            t0 = time.perf_counter()
            subprocess.run(cmd, check=True, capture_output=True)
            m = json.loads((run / "metrics.json").read_text())
            out[f"nproc={nproc}"] = {
                "world_size": m["config"]["world_size"],
                "test_recall@20": m["test"]["recall@20"],
                "seconds_per_epoch": m["seconds_per_epoch"],
                "wall_s": time.perf_counter() - t0,
            }
            print(nproc, json.dumps(out[f"nproc={nproc}"]), flush=True)
    one, two = out["nproc=1"]["test_recall@20"], out["nproc=2"]["test_recall@20"]
    out["relative_difference"] = abs(two - one) / one if one else None
    return out


# ---------------------------------------------------------------------------------------- ray
def run_ray(args) -> dict:
    if not args.extractor:
        return {"skipped": "--extractor DIR (a `kgwb extract train` folder) not given"}
    titles = Path(args.titles or SHARED / "oa-mine" / "test.jsonl")
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        outputs = {}
        for engine, workers in (("local", None), ("ray", 1), ("ray", 2)):
            name = engine if workers is None else f"ray-{workers}"
            target = Path(tmp) / f"{name}.jsonl"
            cmd = [sys.executable, "-m", "kgwb", "extract", "apply", "--model", args.extractor]
            cmd += ["--input", str(titles), "--out", str(target), "--engine", engine]
            cmd += ["--dtype", args.dtype]
            if workers:
                cmd += ["--workers", str(workers)]
            t0 = time.perf_counter()
            proc = subprocess.run(cmd, check=True, capture_output=True, text=True)
            wall = time.perf_counter() - t0
            summary = json.loads(proc.stdout)
            outputs[name] = [json.loads(line)["spans"] for line in target.open()]
            out[name] = {
                "titles": summary["n_titles"],
                "titles_per_second": summary["titles_per_second"],
                "command_wall_s": wall,
            }
            print(name, json.dumps(out[name]), flush=True)
        for name in ("ray-1", "ray-2"):
            out[name]["same_spans_as_local"] = outputs[name] == outputs["local"]
    return out


def _subprocess(kind: str, *args: str, nice: bool = False) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--_one", kind, *args]
    env = {**os.environ, "TQDM_DISABLE": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        sys.stderr.write(proc.stderr[-3000:])
        return {"error": f"exit {proc.returncode}", "args": args}
    return json.loads(lines[-1][len("RESULT ") :])


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "--_one":
        size, model, sampler, fanout, steps = argv[2:7]
        print("RESULT " + json.dumps(step_timing(size, model, sampler, fanout, int(steps))))
        return 0
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("section", choices=("sampled", "accuracy", "ddp", "ray"))
    p.add_argument("--sizes", default="medium,large")
    p.add_argument("--models", default="lightgcn")
    p.add_argument("--fanout", default="15,10")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--sampled-only", action="store_true", help="skip the full-graph runs")
    p.add_argument(
        "--samplers",
        default="full,neighbors",
        help="samplers to time (sampled) or train (accuracy)",
    )
    p.add_argument("--history-refresh", type=int, default=0, help="--sampler history: K steps")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--eval-every", type=int, default=5)
    p.add_argument("--dataset", default="sample:small")
    p.add_argument("--extractor", default=None, help="a `kgwb extract train` folder")
    p.add_argument("--titles", default=None, help="JSON lines of titles (default OA-Mine test)")
    p.add_argument("--dtype", default="float32")
    p.add_argument("--out", default=None, help="also write the figures to this JSON file")
    args = p.parse_args(argv)
    result = {
        "sampled": run_sampled,
        "accuracy": run_accuracy,
        "ddp": run_ddp,
        "ray": run_ray,
    }[args.section](args)
    print(json.dumps(result, indent=2))
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
