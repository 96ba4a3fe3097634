"""Benchmark the text tower (``text-tower``): training throughput in examples/s and catalogue
encoding throughput in items/s, on CPU and, when one is present, on a GPU (bf16 autocast).

    python benchmarks/bench_text_tower.py                          # sample:small, bundled MiniLM
    python benchmarks/bench_text_tower.py --dataset ../shared/datasets/amazon-scientific/recbole
    python benchmarks/bench_text_tower.py --train-layers 1 2 -1 --batch-size 256 --steps 20

A training example is one (user, positive item) pair of the in-batch softmax step that
:func:`kgwb.train.recommend.train_recommender` runs (forward, backward, Adam).  ``--train-layers``
lists the fine-tuned top layers to time (``-1``: the whole encoder; with frozen layers their
output is cached once per item, which the first step pays and the figure excludes).  Encoding
is the serving path: every catalogue item, batches of similar length, no gradients.
"""

from __future__ import annotations

import argparse
import json
import os
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def _parse(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", default="sample:small")
    p.add_argument("--encoder", default=None, help="HF name or folder (default bundled MiniLM)")
    p.add_argument("--train-layers", type=int, nargs="+", default=[1, -1])
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--max-length", type=int, default=64)
    p.add_argument("--steps", type=int, default=10, help="timed training steps")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    p.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    p.add_argument("--out", default=None, help="also write the results as JSON here")
    return p.parse_args(argv)


def _time_training(net, data, device, batch_size: int, steps: int) -> float:
    import torch

    from kgwb.train.recommend import _adam

    net.train()
    opt = _adam(net, 5e-3)
    gen = torch.Generator(device=device).manual_seed(0)
    pairs = torch.as_tensor(data.train, device=device)
    use_amp = device.type == "cuda"

    def step():
        pick = torch.randint(len(pairs), (batch_size,), device=device, generator=gen)
        users, pos = pairs[pick, 0], pairs[pick, 1]
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp):
            loss, l2 = net.bpr_loss(users, pos, pos, 1e-4)
        opt.zero_grad(set_to_none=True)
        (loss + l2).backward()
        opt.step()

    step()  # warm-up (and the cache of the frozen layers)
    if use_amp:
        torch.cuda.synchronize(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    if use_amp:
        torch.cuda.synchronize(device)
    return steps * batch_size / (time.perf_counter() - t0)


def _time_encoding(net, device) -> float:
    import torch

    net.eval()
    net.cache_valid.fill_(False)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    t0 = time.perf_counter()
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
        net.on_eval()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return net.n_items / (time.perf_counter() - t0)


def main(argv=None) -> int:
    args = _parse(argv)
    import torch

    from kgwb.data import load_dataset
    from kgwb.device import resolve_device
    from kgwb.train.data import prepare_interactions
    from kgwb.train.models import build_model
    from kgwb.train.text_tower import item_texts

    torch.set_num_threads(args.threads)
    device = torch.device(resolve_device(args.device))
    ds = load_dataset(args.dataset)
    data = prepare_interactions(ds, warn=False)
    texts = item_texts(ds, data.item_ids)
    results = []
    for train_layers in args.train_layers:
        torch.manual_seed(0)
        net = build_model(
            "text-tower",
            data,
            dim=64,
            item_texts=texts,
            encoder=args.encoder,
            train_layers=train_layers,
            max_length=args.max_length,
        ).to(device)
        row = {
            "dataset": args.dataset,
            "device": str(device),
            "threads": args.threads,
            "train_layers": train_layers,
            "batch_size": args.batch_size,
            "max_length": args.max_length,
            "train_examples_per_s": round(
                _time_training(net, data, device, args.batch_size, args.steps), 1
            ),
            "encode_items_per_s": round(_time_encoding(net, device), 1),
            "items": data.n_items,
        }
        results.append(row)
        print(json.dumps(row), flush=True)
    if args.out:
        with open(args.out, "w") as f:
            json.dump(results, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
