"""LightGCN propagation: kgwb's hand-written sparse matmul (``kgwb.train.models.sparse_matmul``,
``A^T = A`` reused in backward) vs PyG's ``LGConv`` with the same precomputed weights, over
``edge_index`` + weights and over the CSR matrix.  Forward + backward of 2 layers, dim 64, one
thread, on a random bipartite graph (30k users, 10k items, ~600k interactions).

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python benchmarks/bench_lgconv.py
"""

from __future__ import annotations

import time

import torch
from torch_geometric.nn import LGConv

from kgwb.train.models import normalized_adjacency, sparse_matmul


def main() -> None:
    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(0)
    n_users, n_items, n_edges, dim = 30_000, 10_000, 600_000, 64
    u = torch.randint(n_users, (n_edges,), generator=g)
    i = torch.randint(n_items, (n_edges,), generator=g)
    key = torch.unique(u * n_items + i)
    adj = normalized_adjacency(key // n_items, key % n_items, n_users, n_items)  # symmetric
    crow, col, val = adj.crow_indices(), adj.col_indices(), adj.values()
    row = torch.repeat_interleave(torch.arange(n_users + n_items), crow[1:] - crow[:-1])
    edge_index = torch.stack([col.long(), row])  # source -> target
    conv = LGConv(normalize=False)

    def propagate(step):
        def run(x):
            total = x
            for _ in range(2):
                x = step(x)
                total = total + x
            return total

        return run

    candidates = {
        "hand-written": propagate(lambda x: sparse_matmul(adj, x)),
        "LGConv edge_index+weight": propagate(lambda x: conv(x, edge_index, val)),
        "LGConv sparse CSR": propagate(lambda x: conv(x, adj)),
    }
    x0 = torch.randn(n_users + n_items, dim, generator=g)
    ref = None
    for name, fn in candidates.items():
        x = x0.clone().requires_grad_(True)
        out = fn(x)
        out.pow(2).sum().backward()
        if ref is None:
            ref = (out.detach(), x.grad.clone())
        diff = max((out.detach() - ref[0]).abs().max().item(), (x.grad - ref[1]).abs().max().item())
        t, cpu = time.perf_counter(), time.process_time()
        for _ in range(5):
            x = x0.clone().requires_grad_(True)
            fn(x).pow(2).sum().backward()
        wall, cpu = (time.perf_counter() - t) / 5, (time.process_time() - cpu) / 5
        print(
            f"{name:26s} {wall * 1000:8.1f} ms wall {cpu * 1000:8.1f} ms cpu  max diff {diff:.1e}"
        )


if __name__ == "__main__":
    main()
