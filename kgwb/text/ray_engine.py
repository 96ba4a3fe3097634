"""Catalog-scale language-model inference on Ray Data: attribute extraction
(``kgwb extract apply --engine ray``) and text embedding (``embed_texts(engine="ray")``).

The driver does what the in-process path does before running the network — reads the titles,
tokenizes them (the Rust fast tokenizer: ~9,400 titles/s on 2 cores, the limit of this
design past ~40 CPU actors) and sorts them by token length — and
cuts the sorted order into the same padded batches.  Each batch becomes one row of a Ray
Dataset; ``map_batches`` sends the rows to a pool of actors (``ActorPoolStrategy``), each of
which loads the model once in its constructor and runs the batches it is given exactly as the
in-process loop does.  Same batches, same padding, same model: the spans (and vectors) are
identical to the in-process output, whatever the number of workers.  Actors take a GPU each
when the cluster has GPUs (``num_gpus=1``), else ``cpus_per_worker`` CPU threads.

``address=None`` starts (or joins) a local Ray on this machine; a cluster address
(``ray://head:10001`` or ``auto`` on a cluster node) runs the actors on its nodes, which need
kgwb installed (or ``runtime_env``) and the model folder at the same path.

Ray is an optional dependency (``pip install 'kgwb[scale]'``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from kgwb.errors import KgwbError

ENGINES = ("local", "ray")
INSTALL_HINT = "pip install 'kgwb[scale]'  (or: pip install 'ray[data]')"


class RayUnavailableError(KgwbError):
    """``--engine ray`` was asked for but Ray (Ray Data) is not installed."""


def require_ray():
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise RayUnavailableError(
            f"--engine ray needs Ray Data, which is not installed: {INSTALL_HINT}"
        ) from None
    return ray


def init_ray(address: str | None = None, workers: int | None = None) -> Any:
    """Connect to ``address`` or start a local Ray once per process (quiet, no dashboard)."""
    ray = require_ray()
    if not ray.is_initialized():
        options: dict[str, Any] = {
            "include_dashboard": False,
            "log_to_driver": False,
            "configure_logging": False,
        }
        if address:
            options["address"] = address
        for attempt in range(3):
            try:
                ray.init(**options)
                break
            except Exception as err:  # Ray's own: "node timed out during startup" (30 s, fixed)
                ray.shutdown()
                if attempt == 2 or "timed out during startup" not in str(err):
                    raise KgwbError(f"Ray did not start: {err}") from err
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = False
        ctx.verbose_progress = False
    return ray


def _pool(ray, workers: int | None, device: str | None) -> dict[str, Any]:
    """How many actors and what each asks for: a GPU each where the cluster has GPUs and the
    device allows, else an equal share of the CPUs."""
    resources = ray.cluster_resources()
    gpus = int(resources.get("GPU", 0))
    use_gpu = gpus > 0 and device in (None, "auto", "cuda")
    cpus = max(1, int(resources.get("CPU", 1)))
    n = workers or (gpus if use_gpu else cpus)
    n = max(1, n)
    return {
        "compute": ray.data.ActorPoolStrategy(size=n),
        "num_gpus": 1 if use_gpu else 0,
        "num_cpus": 1 if use_gpu else max(1, cpus // n),
        "device": "cuda" if use_gpu else "cpu",
    }


def _run(rows: list[dict], actor_cls, constructor: dict, *, address, workers, device) -> dict:
    """``rows`` through ``actor_cls`` actors; returns ``{batch index: result string}``."""
    ray = init_ray(address, workers)
    pool = _pool(ray, workers, device)
    dataset = ray.data.from_items(rows, override_num_blocks=max(1, min(len(rows), 256)))
    out = dataset.map_batches(
        actor_cls,
        fn_constructor_kwargs={
            **constructor,
            "device": pool["device"],
            "threads": pool["num_cpus"],
        },
        batch_size=1,  # one row = one padded batch of the in-process loop
        batch_format="pandas",
        compute=pool["compute"],
        num_cpus=pool["num_cpus"],
        num_gpus=pool["num_gpus"],
    )
    return {int(r["batch"]): r["result"] for r in out.iter_rows()}


def _threads(n: int) -> None:
    import torch

    torch.set_num_threads(max(1, int(n)))


# -------------------------------------------------------------------------------- extraction
class _ExtractActor:
    """Loads the extractor once; ``__call__`` extracts the spans of one batch of titles."""

    def __init__(self, model_dir: str, dtype: str, batch_size: int, device: str, threads: int):
        from kgwb.text.extract import load_extractor

        _threads(threads)
        self.extractor = load_extractor(model_dir, device=device, dtype=dtype)
        self.batch_size = batch_size

    def __call__(self, batch):
        import pandas as pd

        results = []
        for texts, cats in zip(batch["texts"], batch["categories"]):
            texts, cats = json.loads(texts), json.loads(cats)
            spans = self.extractor.extract(
                texts, cats if self.extractor.settings.use_category else "", batch_size=len(texts)
            )
            results.append(json.dumps(spans, ensure_ascii=False))
        return pd.DataFrame({"batch": batch["batch"], "result": results})


def ray_extract(
    extractor,
    texts: Sequence[str],
    categories: Sequence[str] | None,
    *,
    model_dir: str | os.PathLike[str],
    batch_size: int = 64,
    address: str | None = None,
    workers: int | None = None,
    device: str | None = None,
) -> list[list[dict]]:
    """Spans per title, as :meth:`Extractor.extract` gives them, computed by Ray actors.

    ``extractor`` (loaded in the driver) tokenizes and orders the titles exactly as the
    in-process path; the actors load ``model_dir`` themselves.
    """
    n = len(texts)
    cats = list(categories) if categories is not None else [""] * n
    todo = [i for i in range(n) if texts[i] and str(texts[i]).strip()]
    results: list[list[dict]] = [[] for _ in range(n)]
    if not todo:
        return results
    enc = extractor.encode([texts[i] for i in todo], [cats[i] for i in todo])
    order = sorted(range(len(todo)), key=lambda k: len(enc["input_ids"][k]))
    chunks = [order[b : b + batch_size] for b in range(0, len(order), batch_size)]
    rows = [
        {
            "batch": c,
            "texts": json.dumps([texts[todo[k]] for k in chunk], ensure_ascii=False),
            "categories": json.dumps([cats[todo[k]] for k in chunk], ensure_ascii=False),
        }
        for c, chunk in enumerate(chunks)
    ]
    done = _run(
        rows,
        _ExtractActor,
        {"model_dir": str(model_dir), "dtype": extractor.dtype, "batch_size": batch_size},
        address=address,
        workers=workers,
        device=device,
    )
    for c, chunk in enumerate(chunks):
        for k, spans in zip(chunk, json.loads(done[c])):
            results[todo[k]] = spans
    return results


# --------------------------------------------------------------------------------- embedding
class _EmbedActor:
    """Loads the encoder once; ``__call__`` embeds one padded batch."""

    def __init__(self, model: str, max_length: int, device: str, threads: int):
        from kgwb.text.embed import _load

        _threads(threads)
        self.tokenizer, self.encoder = _load(model, device)
        self.max_length, self.device = max_length, device

    def __call__(self, batch):
        import pandas as pd

        from kgwb.text.embed import embed_batch

        results = []
        for texts in batch["texts"]:
            vectors = embed_batch(
                self.tokenizer, self.encoder, json.loads(texts), self.max_length, self.device
            )
            results.append(vectors.astype(np.float32).tobytes().hex())
        return pd.DataFrame({"batch": batch["batch"], "result": results})


def ray_embed(
    chunks: list[list[str]],
    *,
    model: str,
    max_length: int,
    device: str | None = None,
    address: str | None = None,
    workers: int | None = None,
) -> np.ndarray:
    """The vectors of ``chunks`` (already length-sorted batches), stacked in chunk order."""
    rows = [
        {"batch": c, "texts": json.dumps(list(texts), ensure_ascii=False)}
        for c, texts in enumerate(chunks)
    ]
    if not rows:
        return np.zeros((0, 0), dtype=np.float32)
    done = _run(
        rows,
        _EmbedActor,
        {"model": str(model), "max_length": max_length},
        address=address,
        workers=workers,
        device=device,
    )
    parts = [np.frombuffer(bytes.fromhex(done[c]), dtype=np.float32) for c in range(len(rows))]
    dim = parts[0].size // len(chunks[0])
    return np.concatenate([p.reshape(-1, dim) for p in parts])
