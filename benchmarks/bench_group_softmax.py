"""Grouped softmax of kgat's attention: PyG's ``torch_geometric.utils.softmax`` (used by
``kgwb.train.models._group_softmax``) vs the scatter-max / exp / index-add version it replaced.

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python benchmarks/bench_group_softmax.py
"""

from __future__ import annotations

import time

import torch
from torch_geometric.utils import softmax


def hand_written(scores: torch.Tensor, group: torch.Tensor, n_groups: int) -> torch.Tensor:
    peak = torch.full((n_groups,), float("-inf"), dtype=scores.dtype)
    peak = peak.scatter_reduce(0, group, scores, reduce="amax")
    e = torch.exp(scores - peak[group])
    total = torch.zeros(n_groups, dtype=scores.dtype).index_add_(0, group, e)
    return e / total[group]


def main() -> None:
    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(0)
    for n, groups in ((200_000, 20_000), (2_000_000, 300_000)):
        scores = torch.randn(n, generator=g)
        group = torch.sort(torch.randint(groups, (n,), generator=g)).values
        blocks, group = torch.unique(group, return_inverse=True)
        a = hand_written(scores, group, len(blocks))
        b = softmax(scores, group, num_nodes=len(blocks))
        print(f"{n} scores, {len(blocks)} groups: bit-identical {torch.equal(a, b)}")
        k = len(blocks)
        for name, fn in (
            ("hand-written", lambda s=scores, g=group, k=k: hand_written(s, g, k)),
            ("pyg softmax", lambda s=scores, g=group, k=k: softmax(s, g, num_nodes=k)),
        ):
            fn()
            t, cpu = time.perf_counter(), time.process_time()
            for _ in range(10):
                fn()
            wall, cpu = (time.perf_counter() - t) / 10, (time.process_time() - cpu) / 10
            print(f"  {name:14s} {wall * 1000:7.2f} ms wall {cpu * 1000:7.2f} ms cpu")


if __name__ == "__main__":
    main()
