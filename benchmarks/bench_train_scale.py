"""How recommender training scales with the sample generator's sizes, and what the precomputed
adjacency buys.

    nice -n 10 python benchmarks/bench_train_scale.py              # medium (~100k), large (~1M)
    nice -n 10 python benchmarks/bench_train_scale.py --full       # + xlarge (~5M interactions)
    python benchmarks/bench_train_scale.py --full --steps 20        # s/epoch from 20 timed steps

For every size and model (default ``lightgcn`` and the KG-aware ``kgat``) a fresh subprocess
trains a couple of epochs with the default hyper-parameters (dim 64, 2 layers, batch 2048) and
reports seconds per training epoch, seconds of one full-ranking validation pass and the peak
memory (process peak RSS on CPU, max allocated on CUDA) — one process per run so that the peaks
do not mix.

With ``--steps N`` the runs time N training steps (after one warm-up step) instead of whole
epochs and report seconds per epoch as seconds per step × steps per epoch, which is how the 5M
size is measured on a CPU (one LightGCN epoch there is ~2,000 full-graph propagations): the same
step as ``train_recommender`` (BPR loss + L2 + the model's auxiliary loss, Adam), model built the
same way (the KG-aware model on its collaborative KG).  Peak memory is then that of the model,
graph and training steps, without a validation pass.

The adjacency section times one LightGCN training step (forward + backward + Adam) three ways on
the same graph: kgwb's LightGCN (normalised adjacency built once, CSR, symmetric backward),
PyG's ``LightGCN`` given the ``edge_index`` (``gcn_norm`` recomputed on every call, as in PyG's
example) and PyG's ``LightGCN`` given kgwb's precomputed matrix.  It also checks that kgwb's
matrix equals PyG's ``gcn_norm``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def one_run(size: str, model: str, epochs: int, device: str, threads: int) -> dict:
    import torch

    from kgwb.data import load_dataset
    from kgwb.train import train_recommender

    torch.set_num_threads(threads)
    t0 = time.perf_counter()
    ds = load_dataset(f"sample:{size}")
    load_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    res = train_recommender(
        dataset=ds,
        model=model,
        epochs=epochs,
        device=device,
        eval_every=epochs,
        patience=epochs + 1,
        progress=False,
    )
    return {
        "size": size,
        "model": model,
        "interactions": int(len(ds.interactions)),
        "users": res.data.n_users,
        "items": res.data.n_items,
        "kg_triples": (res.config.get("kg") or {}).get("kg_triples", 0),
        "load_s": load_s,
        "seconds_per_epoch": res.seconds_per_epoch,
        "eval_seconds": res.eval_seconds,
        "total_s": time.perf_counter() - t0,
        "peak_memory_mb": res.peak_memory_mb,
        "device": res.device,
        "valid_recall@20": res.valid["recall@20"],
    }


def training_steps(size: str, model: str, steps: int, device: str, threads: int) -> dict:
    """Seconds per training step of ``model`` on ``sample:size`` (batch 2048), timed over
    ``steps`` steps after a warm-up step, and the epoch time they imply."""
    import math

    import torch

    from kgwb.data import load_dataset
    from kgwb.train import build_collab_kg, build_model, prepare_interactions, resolve_device
    from kgwb.train.models import MODELS

    torch.set_num_threads(threads)
    dev = torch.device(resolve_device(device))
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    t0 = time.perf_counter()
    ds = load_dataset(f"sample:{size}")
    load_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    data = prepare_interactions(ds, warn=False)
    ckg = build_collab_kg(data, ds, None) if MODELS[model].uses_kg else None
    net = build_model(model, data, kg=ckg).to(dev)
    build_s = time.perf_counter() - t0
    train = torch.as_tensor(data.train, device=dev)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    gen = torch.Generator(device=dev).manual_seed(0)
    net.train()
    net.on_epoch_start(gen)
    batch = 2048
    for i in range(steps + 1):
        if i == 1:  # the first step warms up allocators and lazy imports
            if dev.type == "cuda":
                torch.cuda.synchronize(dev)
            t0 = time.perf_counter()
        b = train[torch.randint(len(train), (batch,), device=dev, generator=gen)]
        neg = torch.randint(data.n_items, (batch,), device=dev, generator=gen)
        bpr, l2 = net.bpr_loss(b[:, 0], b[:, 1], neg, 1e-4)
        loss = bpr + l2
        aux = net.aux_loss(batch, gen, 1e-4)
        if aux is not None:
            loss = loss + aux
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    per_step = (time.perf_counter() - t0) / steps
    per_epoch = math.ceil(len(train) / batch)
    if dev.type == "cuda":
        peak = torch.cuda.max_memory_allocated(dev) / 2**20
    else:
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "size": size,
        "model": model,
        "interactions": int(len(ds.interactions)),
        "users": data.n_users,
        "items": data.n_items,
        "kg_triples": (ckg.stats.get("kg_triples", 0) if ckg is not None else 0),
        "load_s": load_s,
        "build_s": build_s,
        "steps_timed": steps,
        "seconds_per_step": per_step,
        "steps_per_epoch": per_epoch,
        "seconds_per_epoch": per_step * per_epoch,
        "eval_seconds": None,
        "peak_memory_mb": peak,
        "device": dev.type,
    }


def adjacency_steps(size: str, device: str, threads: int, steps: int = 5) -> dict:
    """Seconds per LightGCN training step: precomputed CSR vs PyG re-normalising per call."""
    import torch
    from torch_geometric.nn.conv.gcn_conv import gcn_norm
    from torch_geometric.nn.models import LightGCN as PyGLightGCN

    from kgwb.data import load_dataset
    from kgwb.train import build_model, prepare_interactions, resolve_device

    torch.set_num_threads(threads)
    dev = torch.device(resolve_device(device))
    data = prepare_interactions(load_dataset(f"sample:{size}"), warn=False)
    train = torch.as_tensor(data.train, device=dev)
    n_users, n = data.n_users, data.n_users + data.n_items
    edge_index = torch.stack(
        [
            torch.cat([train[:, 0], train[:, 1] + n_users]),
            torch.cat([train[:, 1] + n_users, train[:, 0]]),
        ]
    )
    ours = build_model("lightgcn", data).to(dev)

    # kgwb's normalised adjacency == PyG's gcn_norm
    ei, w = gcn_norm(edge_index, None, n, add_self_loops=False)
    pyg_dense_check = torch.sparse_coo_tensor(ei, w, (n, n), check_invariants=False).coalesce()
    ours_coo = ours.adjacency.to_sparse_coo().coalesce()
    same = torch.equal(pyg_dense_check.indices(), ours_coo.indices()) and torch.allclose(
        pyg_dense_check.values(), ours_coo.values(), atol=1e-7
    )

    g = torch.Generator(device=dev).manual_seed(0)
    batches = [
        train[torch.randint(len(train), (2048,), device=dev, generator=g)] for _ in range(steps + 1)
    ]
    negs = [torch.randint(data.n_items, (2048,), device=dev, generator=g) for _ in range(steps + 1)]

    def time_steps(loss_fn, params) -> float:
        opt = torch.optim.Adam(params, lr=1e-3)
        for i in range(steps + 1):
            if i == 1:  # the first step warms up allocators and lazy imports
                if dev.type == "cuda":
                    torch.cuda.synchronize(dev)
                t0 = time.perf_counter()
            loss = loss_fn(batches[i], negs[i])
            opt.zero_grad()
            loss.backward()
            opt.step()
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        return (time.perf_counter() - t0) / steps

    def ours_loss(b, neg):
        bpr, l2 = ours.bpr_loss(b[:, 0], b[:, 1], neg, 1e-4)
        return bpr + l2

    pyg = PyGLightGCN(n, 64, 2).to(dev)

    def pyg_loss_with(adj):
        def loss(b, neg):
            emb = pyg.get_embedding(adj)
            u, p, q = emb[b[:, 0]], emb[b[:, 1] + n_users], emb[neg + n_users]
            return torch.nn.functional.softplus(-((u * p).sum(-1) - (u * q).sum(-1))).mean()

        return loss

    out = {
        "size": size,
        "nodes": n,
        "edges": int(edge_index.shape[1]),
        "same_matrix_as_gcn_norm": bool(same),
        "kgwb_precomputed_csr_s": time_steps(ours_loss, ours.parameters()),
        "pyg_recomputed_gcn_norm_s": time_steps(pyg_loss_with(edge_index), pyg.parameters()),
    }
    for conv in pyg.convs:
        conv.normalize = False
    out["pyg_precomputed_csr_s"] = time_steps(pyg_loss_with(ours.adjacency), pyg.parameters())
    return out


def _subprocess(kind: str, *args: str) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--_one", kind, *args]
    proc = subprocess.run(
        cmd, capture_output=True, text=True, env={**__import__("os").environ, "TQDM_DISABLE": "1"}
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        sys.stderr.write(proc.stderr[-3000:])
        return {"error": f"exit {proc.returncode}", "args": args}
    return json.loads(lines[-1][len("RESULT ") :])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--full", action="store_true", help="add xlarge (~5M interactions)")
    p.add_argument("--sizes", default=None, help="comma-separated sizes (overrides --full)")
    p.add_argument("--models", default="lightgcn,kgat")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument(
        "--steps",
        type=int,
        default=None,
        help="time this many training steps per run and derive s/epoch from them "
        "(instead of training --epochs whole epochs)",
    )
    p.add_argument("--skip-adjacency", action="store_true")
    p.add_argument("--out", default=None, help="write results.json here")
    p.add_argument("--_one", nargs="+", help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    if args._one:
        kind, *rest = args._one
        if kind == "train":
            size, model = rest
            res = one_run(size, model, args.epochs, args.device, args.threads)
        elif kind == "steps":
            size, model = rest
            res = training_steps(size, model, args.steps, args.device, args.threads)
        else:
            res = adjacency_steps(rest[0], args.device, args.threads)
        print("RESULT " + json.dumps(res))
        return 0

    sizes = (
        args.sizes.split(",")
        if args.sizes
        else ["medium", "large"] + (["xlarge"] if args.full else [])
    )
    common = ["--epochs", str(args.epochs), "--device", args.device, "--threads", str(args.threads)]
    if args.steps:
        common += ["--steps", str(args.steps)]
    runs, adjacency = [], []
    for size in sizes:
        if not args.skip_adjacency:
            print(f"adjacency step timing on {size} ...", flush=True)
            adjacency.append(_subprocess("adjacency", size, *common))
        for model in args.models.split(","):
            print(f"training {model} on {size} ...", flush=True)
            runs.append(_subprocess("steps" if args.steps else "train", size, model, *common))

    if args.steps:
        print(
            f"\n{args.steps} timed steps each (s/epoch = s/step × steps/epoch), {args.threads} thread(s)"
        )
    else:
        print(f"\n{args.epochs} epoch(s) each, {args.threads} thread(s)")
    print(
        f"{'size':<7} {'model':<9} {'interactions':>12} {'kg triples':>10} {'s/epoch':>8} "
        f"{'eval s':>7} {'peak MB':>8} {'device':>6}"
    )
    for r in runs:
        if "error" in r:
            print(f"failed: {r}")
            continue
        print(
            f"{r['size']:<7} {r['model']:<9} {r['interactions']:>12,} "
            f"{(format(r['kg_triples'], ',') if r['kg_triples'] else '-'):>10} "
            f"{r['seconds_per_epoch']:>8.2f} "
            f"{(format(r['eval_seconds'], '.2f') if r['eval_seconds'] is not None else '-'):>7} "
            f"{r['peak_memory_mb']:>8.0f} "
            f"{r['device']:>6}"
        )
    if adjacency:
        print("\nLightGCN training step (batch 2048, forward + backward + Adam), seconds")
        print(
            f"{'size':<7} {'edges':>10} {'kgwb CSR':>9} {'PyG recompute':>13} {'PyG + CSR':>9} "
            f"{'speed-up':>8} {'same A':>6}"
        )
        for a in adjacency:
            if "error" in a:
                print(f"failed: {a}")
                continue
            print(
                f"{a['size']:<7} {a['edges']:>10,} {a['kgwb_precomputed_csr_s']:>9.4f} "
                f"{a['pyg_recomputed_gcn_norm_s']:>13.4f} {a['pyg_precomputed_csr_s']:>9.4f} "
                f"{a['pyg_recomputed_gcn_norm_s'] / a['kgwb_precomputed_csr_s']:>7.1f}× "
                f"{a['same_matrix_as_gcn_norm']!s:>6}"
            )
    if args.out:
        Path(args.out).mkdir(parents=True, exist_ok=True)
        payload = {
            "runs": runs,
            "adjacency": adjacency,
            "epochs": None if args.steps else args.epochs,
            "steps": args.steps,
            "threads": args.threads,
        }
        (Path(args.out) / "results.json").write_text(json.dumps(payload, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
