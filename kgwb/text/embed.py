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
) -> np.ndarray:
    """Embed ``texts`` into an ``(n, dim)`` float32 array of unit vectors.

    ``model`` is any encoder :func:`kgwb.text.encoder.resolve_encoder` accepts (default: the
    bundled MiniLM).  Duplicate texts are encoded once.
    """
    import torch

    from kgwb.device import resolve_device
    from kgwb.text.encoder import resolve_encoder

    dev = resolve_device(device)
    tokenizer, enc = _load(resolve_encoder(model), dev)
    texts = ["" if t is None else str(t) for t in texts]
    uniques, inverse = np.unique(np.asarray(texts, dtype=object), return_inverse=True)
    order = np.argsort([len(t) for t in uniques], kind="stable")
    dim = enc.config.hidden_size
    out = np.zeros((len(uniques), dim), dtype=np.float32)
    from tqdm.auto import tqdm

    starts = tqdm(
        range(0, len(order), batch_size),
        desc="encoding texts",
        unit="batch",
        disable=not progress or os.environ.get("TQDM_DISABLE", "").lower() in ("1", "true", "yes"),
    )
    with torch.inference_mode():
        for start in starts:
            idx = order[start : start + batch_size]
            batch = tokenizer(
                [uniques[i] for i in idx],
                padding=True,
                truncation=True,
                max_length=max_length,
                return_tensors="pt",
            ).to(dev)
            hidden = enc(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            pooled = torch.nn.functional.normalize(pooled, dim=-1)
            out[idx] = pooled.float().cpu().numpy()
    return out[inverse.reshape(-1)]
