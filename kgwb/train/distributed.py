"""Data-parallel recommender training on ``torch.distributed`` (DDP): gloo on CPU, NCCL on GPUs.

``kgwb train --nproc N`` starts ``N`` local processes (:func:`launch`); ``torchrun
--nproc-per-node N [--nnodes M --rdzv-endpoint HOST:PORT] -m kgwb train …`` does the same across
machines — every process finds its rank in the environment torchrun sets
(:func:`context_from_env`).  What each rank does (:class:`DistContext`):

* every rank holds the whole model and graph, and draws the same epoch permutation and the same
  negatives (generators seeded with ``(seed, epoch)``, as a single process does); each global
  BPR batch is split into ``world_size`` equal shards and every rank trains on its own, so one
  optimiser step sees the same global batch as one process, and ``DistributedDataParallel``
  averages the gradients.  A run therefore follows the single-process run up to floating-point
  summation order, and ``--resume`` works across world sizes (the random streams do not depend
  on the world size);
* validation, the best/last checkpoints, ``metrics.json`` and the top-k table are done on rank 0
  alone; the early-stopping signal is broadcast from there;
* ``world_size`` and the backend are recorded in the run's config.
"""

from __future__ import annotations

import datetime
import math
import os
import socket
from dataclasses import dataclass
from typing import Any

from kgwb.errors import KgwbError


class DistributedError(KgwbError):
    """A distributed run could not start or one of its processes failed."""


@dataclass
class DistContext:
    """This process's place in a run; the default is the single-process run."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str | None = None

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world_size > 1

    def device(self, requested: str) -> str:
        """NCCL runs pin each process to GPU ``local_rank``."""
        if self.backend == "nccl" and requested in ("auto", "cuda"):
            return f"cuda:{self.local_rank}"
        return requested

    def to_dict(self) -> dict[str, Any]:
        return {"world_size": self.world_size, "backend": self.backend}

    def shard(self, *tensors):
        """This rank's equal share of each tensor (rows ``rank, rank + world, …``, wrapping
        around so that every rank gets ``ceil(n / world)`` rows and no shard is empty)."""
        if not self.active:
            return tensors
        import torch

        n = len(tensors[0])
        per = math.ceil(n / self.world_size)
        idx = (torch.arange(per, device=tensors[0].device) * self.world_size + self.rank) % n
        return tuple(t[idx] for t in tensors)

    def wrap(self, module):
        """``DistributedDataParallel`` around ``module`` (unchanged in a single process)."""
        if not self.active:
            return module
        from torch.nn.parallel import DistributedDataParallel

        params = [p for p in module.parameters() if p.requires_grad]
        dev = params[0].device if params else None
        return DistributedDataParallel(
            module,
            device_ids=[dev] if dev is not None and dev.type == "cuda" else None,
            broadcast_buffers=False,  # the graph buffers are the same on every rank
            find_unused_parameters=True,  # e.g. kgat's relation vectors without its KG loss
        )

    def broadcast(self, value: float) -> float:
        """Rank 0's ``value`` on every rank."""
        if not self.active:
            return value
        import torch
        import torch.distributed as dist

        t = torch.tensor([float(value)], dtype=torch.float64, device=self._comm_device())
        dist.broadcast(t, src=0)
        return float(t.item())

    def mean(self, values):
        """Element-wise mean of a float tensor over the ranks."""
        if not self.active:
            return values
        import torch.distributed as dist

        t = values.detach().to(self._comm_device()).double()
        dist.all_reduce(t)
        return (t / self.world_size).to(values.device)

    def barrier(self) -> None:
        if self.active:
            import torch.distributed as dist

            dist.barrier()

    def _comm_device(self):
        import torch

        return torch.device(f"cuda:{self.local_rank}" if self.backend == "nccl" else "cpu")


def context_from_env(device: str = "auto") -> DistContext:
    """The process group torchrun (or :func:`launch`) describes in the environment
    (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``), initialised
    once; a single-process context when ``WORLD_SIZE`` is unset or 1."""
    world = int(os.environ.get("WORLD_SIZE", "1") or 1)
    if world <= 1:
        return DistContext()
    import torch
    import torch.distributed as dist

    use_cuda = str(device).startswith("cuda") or (device == "auto" and torch.cuda.is_available())
    backend = "nccl" if use_cuda else "gloo"
    local_rank = int(os.environ.get("LOCAL_RANK", os.environ.get("RANK", "0")))
    if use_cuda:
        torch.cuda.set_device(local_rank)
    if not dist.is_initialized():
        dist.init_process_group(backend=backend, timeout=datetime.timedelta(minutes=30))
    return DistContext(dist.get_rank(), dist.get_world_size(), local_rank, backend)


def shutdown() -> None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(local_rank: int, nproc: int, port: int, threads: int, fn, args) -> None:
    os.environ.update(
        {
            "RANK": str(local_rank),
            "LOCAL_RANK": str(local_rank),
            "WORLD_SIZE": str(nproc),
            "LOCAL_WORLD_SIZE": str(nproc),
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": str(port),
        }
    )
    import torch

    torch.set_num_threads(threads)
    try:
        fn(*args)
    finally:
        shutdown()


def launch(fn, nproc: int, *args) -> None:
    """Run ``fn(*args)`` in ``nproc`` local processes forming one process group (the
    environment torchrun would set); CPU threads are split between them."""
    if nproc < 1:
        raise DistributedError(f"--nproc {nproc}: expected a positive number of processes")
    import torch.multiprocessing as mp

    threads = max(1, (os.cpu_count() or 1) // nproc)
    try:
        mp.spawn(_worker, args=(nproc, _free_port(), threads, fn, args), nprocs=nproc, join=True)
    except mp.ProcessRaisedException as err:
        raise DistributedError(f"a training process failed:\n{err}") from None
    except mp.ProcessExitedException as err:
        raise DistributedError(f"a training process exited early: {err}") from None
