"""Sentence embeddings from the text encoder (mean pooling over tokens, L2-normalised).

Used by entity resolution (names of brands and attribute values) and semantic product search.
Inputs are deduplicated and length-sorted so that each batch pads little; the output keeps the
input order.  The model is loaded once per (model, device) and cached.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence

import numpy as np


@functools.lru_cache(maxsize=4)
def _load(model_path: str, device: str):
    from transformers import AutoModel, AutoTokenizer

    from kgwb.text.encoder import quiet_loading

    tokenizer = AutoTokenizer.from_pretrained(model_path)
    with quiet_loading():
        model = AutoModel.from_pretrained(model_path).to(device).eval()
    return tokenizer, model


def embed_texts(
    texts: Sequence[str],
    *,
    model: str | os.PathLike[str] | None = None,
    batch_size: int = 128,
    max_length: int = 128,
    device: str | None = None,
    progress: bool = False,
    engine: str = "local",
    address: str | None = None,
    workers: int | None = None,
) -> np.ndarray:
    """Embed ``texts`` into an ``(n, dim)`` float32 array of unit vectors.

    ``model`` is any encoder :func:`kgwb.text.encoder.resolve_encoder` accepts (default: the
    bundled MiniLM).  Duplicate texts are encoded once.  ``engine="ray"`` runs the same
    length-sorted batches as Ray Data actors (:mod:`kgwb.text.ray_engine`; ``address`` of a
    cluster, else a local Ray; ``workers`` actors) and returns the same vectors.
    """
    from kgwb.device import resolve_device
    from kgwb.text.encoder import resolve_encoder

    texts = ["" if t is None else str(t) for t in texts]
    uniques, inverse = np.unique(np.asarray(texts, dtype=object), return_inverse=True)
    order = np.argsort([len(t) for t in uniques], kind="stable")
    chunks = [order[s : s + batch_size] for s in range(0, len(order), batch_size)]
    if engine == "ray":
        from kgwb.text.ray_engine import ray_embed

        out = ray_embed(
            [[uniques[i] for i in idx] for idx in chunks],
            model=resolve_encoder(model),
            max_length=max_length,
            device=device,
            address=address,
            workers=workers,
        )
        vectors = np.zeros((len(uniques), out.shape[1] if len(out) else 0), dtype=np.float32)
        if len(out):
            vectors[np.concatenate(chunks)] = out
        return vectors[inverse.reshape(-1)]
    if engine != "local":
        from kgwb.errors import UnknownNameError

        raise UnknownNameError("engine", engine, ["local", "ray"])
    dev = resolve_device(device)
    tokenizer, enc = _load(resolve_encoder(model), dev)
    out = np.zeros((len(uniques), enc.config.hidden_size), dtype=np.float32)
    from tqdm.auto import tqdm

    bar = tqdm(
        chunks,
        desc="encoding texts",
        unit="batch",
        disable=not progress or os.environ.get("TQDM_DISABLE", "").lower() in ("1", "true", "yes"),
    )
    for idx in bar:
        out[idx] = embed_batch(tokenizer, enc, [uniques[i] for i in idx], max_length, dev)
    return out[inverse.reshape(-1)]


def embed_batch(tokenizer, enc, texts: list[str], max_length: int, device: str) -> np.ndarray:
    """Unit vectors of one padded batch (mean pooling over the tokens)."""
    import torch

    with torch.inference_mode():
        batch = tokenizer(
            texts, padding=True, truncation=True, max_length=max_length, return_tensors="pt"
        ).to(device)
        hidden = enc(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        pooled = torch.nn.functional.normalize(pooled, dim=-1)
        return pooled.float().cpu().numpy()
