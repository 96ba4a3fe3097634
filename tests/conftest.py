"""Shared pytest fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from kgwb.paths import shared_datasets_dir

# Tests never reach a model hub, whichever module imports huggingface_hub first.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="session")
def shared_datasets() -> Path:
    """``../shared/datasets`` beside the repository; the test is skipped where it is absent."""
    folder = shared_datasets_dir()
    if folder is None:
        pytest.skip("shared datasets folder not found (set KGWB_SHARED_DATASETS)")
    return folder


@pytest.fixture
def check_bad_input():
    """Check one bad-input case of a loader under both error modes.

    ``load(errors)`` runs the loader.  Under ``"raise"`` the DataError must name the file, the
    1-based line (or row), the column where given, the reason and what was expected; under
    ``"skip"`` exactly one row is rejected for ``reason`` and the report balances.  Returns the
    dataset loaded under ``"skip"``.
    """
    from kgwb.errors import DataError

    def check(load, *, file, line, reason, column=None, row_kind="line"):
        with pytest.raises(DataError) as info:
            load("raise")
        err = info.value
        text = str(err)
        assert Path(err.file).name == file, text
        assert err.line == line, text
        where = f"{file}:{line}:" if row_kind == "line" else f"{file}:{row_kind} {line}:"
        assert where in text, text
        if column is not None:
            assert err.column == column, text
            assert f"column {column}:" in text, text
        assert reason in text, text
        assert "(expected " in text, text

        ds = load("skip")
        report = ds.report
        assert report.rejected_by_reason[reason] == 1, report.to_dict()
        assert report.rows_loaded + report.rejected_count == report.rows_read
        assert any(
            Path(r.file).name == file and r.line == line and r.reason == reason
            for r in report.rejected
        ), report.to_dict()
        return ds

    return check


@pytest.fixture(scope="module")
def tiny_encoder(tmp_path_factory):
    """A 2-layer, 32-wide random BERT with the bundled MiniLM's tokenizer: no download."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    from kgwb.text.encoder import resolve_encoder

    folder = tmp_path_factory.mktemp("tiny-bert")
    tokenizer = AutoTokenizer.from_pretrained(resolve_encoder(None))
    tokenizer.save_pretrained(folder)
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
    )
    torch.manual_seed(0)
    BertModel(config).save_pretrained(folder)
    return str(folder)
