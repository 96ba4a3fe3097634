"""Nothing lost: a full disk at every write of a stage, a SIGKILL in the middle of one, a
read-only output folder and a real 3 MB tmpfs leave the previous result readable, byte for byte,
and the rerun succeeds (cleaning what the failed one left)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from kgwb import atomic
from kgwb.cli import main
from kgwb.data.sample import generate
from kgwb.data.schema import Dataset

TINY = generate("tiny")
TINY_1 = generate("tiny", seed=1)
FAST_TRAIN = {"epochs": 1, "dim": 8, "layers": 1, "progress": False, "device": "cpu"}


# ------------------------------------------------------------------------------- helpers
def snapshot(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def leftovers(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.rglob(".*") if p.name != atomic.MARKER)


class FullDiskAt:
    """Make the ``k``-th file write fail with ENOSPC (``k=0``: only count the writes)."""

    def __init__(self, monkeypatch, k: int = 0) -> None:
        self.k, self.n = k, 0
        real = atomic._flush

        def flush(tmp: Path, sync: bool) -> None:
            self.n += 1
            if self.n == self.k:
                raise atomic.no_space(tmp)
            real(tmp, sync)

        monkeypatch.setattr(atomic, "_flush", flush)


def check_every_write_fails_cleanly(monkeypatch, folder: Path, overwrite, loads) -> None:
    """Count the writes of ``overwrite()``, then fail each one in turn: ``folder`` stays as it
    was (and ``loads(folder)`` works) and nothing is left beside it; finally it succeeds."""
    before = snapshot(folder)
    with monkeypatch.context() as m:
        counter = FullDiskAt(m)
        overwrite()
    writes = counter.n
    assert writes >= 3
    # put the first result back (the counting run replaced it)
    for rel in set(snapshot(folder)) - set(before):
        (folder / rel).unlink()
    for rel, data in before.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_bytes(data)
    for k in range(1, writes + 1):
        with monkeypatch.context() as m:
            FullDiskAt(m, k)
            with pytest.raises(OSError) as info:
                overwrite()
        assert info.value.errno == 28, info.value
        assert snapshot(folder) == before, f"write {k} of {writes} changed the folder"
        loads(folder)
        assert leftovers(folder.parent) == [], f"write {k}"
    overwrite()
    assert snapshot(folder) != before


# ------------------------------------------------------------------- a full disk, per stage
def test_dataset_survives_a_full_disk_at_every_write(tmp_path, monkeypatch):
    out = TINY.save(tmp_path / "ds")
    check_every_write_fails_cleanly(
        monkeypatch, out, lambda: TINY_1.save(out, overwrite=True), Dataset.load
    )
    assert Dataset.load(out).interactions.equals(TINY_1.interactions)


def test_kg_build_survives_a_full_disk_at_every_write(tmp_path, monkeypatch):
    from kgwb.kg.build import build_kg
    from kgwb.kg.model import KnowledgeGraph
    from kgwb.kg.store import GraphStore, default_store_path

    options = {"extract_model": None, "resolve": False, "store": True}
    out = build_kg(dataset=TINY, out_dir=tmp_path / "kg", **options).out_dir
    n_nodes = len(KnowledgeGraph.load(out / "kg").nodes)

    def loads(folder: Path) -> None:  # tables and store describe the same (old) KG
        assert len(KnowledgeGraph.load(folder / "kg").nodes) == n_nodes
        with GraphStore.open(default_store_path(folder / "kg")) as store:
            assert store.count_nodes() == n_nodes

    check_every_write_fails_cleanly(
        monkeypatch,
        out,
        lambda: build_kg(dataset=TINY_1, out_dir=out, include_users=True, **options),
        loads,
    )


def test_training_run_survives_a_full_disk_at_every_write(tmp_path, monkeypatch):
    from kgwb.train.recommend import load_recommender, train_recommender

    out = tmp_path / "run"
    train_recommender(dataset=TINY, model="bprmf", out_dir=out, **FAST_TRAIN)

    def loads(folder: Path) -> None:
        assert load_recommender(folder, device="cpu").model_name == "bprmf"

    check_every_write_fails_cleanly(
        monkeypatch,
        out,
        lambda: train_recommender(dataset=TINY_1, model="lightgcn", out_dir=out, **FAST_TRAIN),
        loads,
    )
    assert load_recommender(out, device="cpu").model_name == "lightgcn"


def test_extractor_run_survives_a_full_disk_at_every_write(tmp_path, monkeypatch):
    from kgwb.text.extract import load_extractor, train_extractor

    records = [
        {"input": f"Acme {c} shoe {i}", "category": "Shoes", "target_scores": {"Color": {c: 1}}}
        for i, c in enumerate(["red", "blue", "green", "black"] * 2)
    ]
    result = train_extractor(
        train=records, out_dir=None, epochs=1, batch_size=8, max_length=16, seed=0, num_threads=1
    )
    out = result.save(tmp_path / "extractor")
    result.config.seed = 1  # a different run to write over it

    check_every_write_fails_cleanly(
        monkeypatch, out, lambda: result.save(out), lambda f: load_extractor(f / "model")
    )


def test_the_cli_reports_a_full_disk_as_kgwb_error(tmp_path, monkeypatch, capsys):
    out = tmp_path / "ds"
    assert main(["data", "convert", "sample:tiny", "--out", str(out)]) == 0
    before = snapshot(out)
    FullDiskAt(monkeypatch, 2)
    assert (
        main(["data", "convert", "sample:tiny", "--seed", "1", "--out", str(out), "--overwrite"])
        == 2
    )
    err = capsys.readouterr().err
    assert err.startswith(f"kgwb: error: {out}: No space left on device"), err
    assert snapshot(out) == before


# ------------------------------------------------------------------------ overwrite rules
def test_overwrite_rules(tmp_path, capsys):
    out = tmp_path / "ds"
    assert main(["data", "convert", "sample:tiny", "--out", str(out)]) == 0
    assert main(["data", "convert", "sample:tiny", "--out", str(out)]) == 2
    assert "pass --overwrite to replace it" in capsys.readouterr().err
    for bad_out in (out, out / "inner"):  # equal to or inside the input
        assert main(["data", "convert", str(out), "--out", str(bad_out), "--overwrite"]) == 2
        assert "the input" in capsys.readouterr().err
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("not kgwb's")
    assert main(["data", "convert", "sample:tiny", "--out", str(mine), "--overwrite"]) == 2
    assert "was not written by kgwb" in capsys.readouterr().err
    assert (mine / "notes.txt").read_text() == "not kgwb's"


def test_train_needs_overwrite_or_resume(tmp_path, capsys):
    out = tmp_path / "run"
    args = ["train", "--dataset", "sample:tiny", "--model", "pop", "--epochs", "0"]
    args += ["--out", str(out), "--no-progress", "--save-top-k", "0"]
    assert main(args) == 0
    assert main(args) == 2
    assert "--overwrite to replace it or --resume" in capsys.readouterr().err
    assert main([*args, "--overwrite"]) == 0


def test_extract_apply_refuses_to_replace_its_input(tmp_path, capsys):
    titles = tmp_path / "titles.jsonl"
    titles.write_text('{"input": "Acme red shoe"}\n')
    rc = main(
        ["extract", "apply", "--model", str(tmp_path), "--input", str(titles), "--out", str(titles)]
    )
    assert rc == 2
    assert "the input" in capsys.readouterr().err
    assert titles.read_text() == '{"input": "Acme red shoe"}\n'


def test_a_torn_train_state_is_a_clear_error(tmp_path):
    from kgwb.train.recommend import CheckpointError, train_recommender

    out = tmp_path / "run"
    train_recommender(dataset=TINY, model="bprmf", out_dir=out, **FAST_TRAIN)
    state = out / "checkpoints" / "train_state.json"
    state.write_text(state.read_text()[:40])
    with pytest.raises(CheckpointError, match="train_state.json: damaged"):
        train_recommender(dataset=TINY, model="bprmf", out_dir=out, resume=True, **FAST_TRAIN)


# --------------------------------------------------------------------- a kill mid-stage
KILLER = """
import os, signal, sys
import kgwb.atomic as atomic
k, n, real = int(sys.argv[1]), [0], atomic._flush
def flush(tmp, sync):
    n[0] += 1
    if n[0] == k:
        os.kill(os.getpid(), signal.SIGKILL)
    real(tmp, sync)
atomic._flush = flush
from kgwb.cli import main
sys.exit(main(sys.argv[2:]))
"""


def _cli(args: list[str], kill_at: int = 0) -> subprocess.CompletedProcess:
    env = {**os.environ, "TQDM_DISABLE": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-c", KILLER, str(kill_at), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


@pytest.mark.parametrize(
    ("stage", "command", "kill_at"),
    [
        ("data", "data convert sample:tiny --seed 1", 4),
        ("kg", "kg build --dataset sample:tiny --extract-model none --no-resolve --with-users", 3),
        (
            "train",
            "train --dataset sample:tiny --model bprmf --epochs 1 --dim 8 --no-progress"
            " --save-top-k 0 --device cpu --seed 1",
            3,
        ),
    ],
)
def test_a_kill_mid_stage_keeps_the_previous_result(tmp_path, stage, command, kill_at):
    """SIGKILL at the ``kill_at``-th file write of an overwrite (in a child process)."""
    out, args = tmp_path / stage, command.split()
    first_args = args[:-2] if args[-2] == "--seed" else args
    assert main([*first_args, "--out", str(out)]) == 0
    before = snapshot(out)
    killed = _cli([*args, "--out", str(out), "--overwrite"], kill_at=kill_at)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert snapshot(out) == before
    assert any(name.startswith(f".{stage}.tmp-") for name in leftovers(tmp_path))
    assert main([*args, "--out", str(out), "--overwrite"]) == 0  # and it cleans up
    assert leftovers(tmp_path) == []


# --------------------------------------------------------- read-only and a real full disk
@contextlib.contextmanager
def tmpfs(path: Path, size: str) -> object:
    path.mkdir(parents=True, exist_ok=True)
    mount = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
        capture_output=True,
        text=True,
    )
    if mount.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mount.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def test_a_read_only_output_folder_is_a_clear_error(tmp_path, capsys):
    with tmpfs(tmp_path / "fs", "8m") as fs:
        out = fs / "ds"
        assert main(["data", "convert", "sample:tiny", "--out", str(out)]) == 0
        before = snapshot(out)
        remount = subprocess.run(["mount", "-o", "remount,ro", str(fs)], capture_output=True)
        if remount.returncode != 0:
            pytest.skip("cannot remount read-only")
        capsys.readouterr()
        rc = main(
            ["data", "convert", "sample:tiny", "--seed", "1", "--out", str(out), "--overwrite"]
        )
        assert rc == 2
        err = capsys.readouterr().err
        assert err.startswith("kgwb: error: ") and "Read-only file system" in err, err
        assert snapshot(out) == before
        Dataset.load(out)
        subprocess.run(["mount", "-o", "remount,rw", str(fs)], check=True)
        assert (
            main(
                ["data", "convert", "sample:tiny", "--seed", "1", "--out", str(out), "--overwrite"]
            )
            == 0
        )


def test_a_full_3mb_tmpfs_keeps_the_dataset_and_the_run(tmp_path, capsys):
    """The reviewer's check: a converted dataset and a trained run survive a failed overwrite
    on a full 3 MB tmpfs, and the failure is ``kgwb: error`` with status 2."""
    from kgwb.train.recommend import load_recommender

    with tmpfs(tmp_path / "fs", "3m") as fs:
        ds, run = fs / "ds", fs / "run"
        assert main(["data", "convert", "sample:tiny", "--out", str(ds)]) == 0
        train = ["train", "--dataset", "sample:tiny", "--model", "bprmf", "--epochs", "1"]
        train += ["--dim", "8", "--no-progress", "--device", "cpu"]
        assert main([*train, "--out", str(run)]) == 0
        kept_ds, kept_run = snapshot(ds), snapshot(run)
        capsys.readouterr()

        rc = main(["data", "convert", "sample:medium", "--out", str(ds), "--overwrite"])
        assert rc == 2
        assert capsys.readouterr().err.startswith("kgwb: error: ")
        assert snapshot(ds) == kept_ds
        Dataset.load(ds)

        rc = main(
            [
                "train",
                "--dataset",
                "sample:small",
                "--model",
                "lightgcn",
                "--epochs",
                "1",
                "--no-progress",
                "--device",
                "cpu",
                "--out",
                str(run),
                "--overwrite",
            ]
        )
        assert rc == 2
        assert capsys.readouterr().err.startswith("kgwb: error: ")
        assert snapshot(run) == kept_run
        assert load_recommender(run, device="cpu").model_name == "bprmf"
        assert leftovers(fs) == []


def test_leftovers_of_dead_processes_are_cleaned_and_a_half_swap_is_undone(tmp_path):
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    pid = int(dead.stdout)
    target = tmp_path / "ds"
    TINY.save(tmp_path / f".ds.old-{pid}")  # killed between the two renames of a swap
    (tmp_path / f".ds.tmp-{pid}").mkdir()  # the new copy it was writing
    (tmp_path / f".ds.tmp-{os.getpid()}-0").write_text("a live writer's file")
    atomic.clean_leftovers(target)
    assert Dataset.load(target).interactions.equals(TINY.interactions)
    assert leftovers(tmp_path) == [f".ds.tmp-{os.getpid()}-0"]


def test_a_killed_first_run_resumes_to_the_uninterrupted_result(tmp_path):
    """A new run is written in place, so ``--resume`` continues it after a SIGKILL."""
    args = "train --dataset sample:tiny --model bprmf --epochs 2 --dim 8 --no-progress"
    args += " --save-top-k 0 --device cpu"
    killed = _cli([*args.split(), "--out", str(tmp_path / "run")], kill_at=5)  # in epoch 2
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert main([*args.split(), "--out", str(tmp_path / "run"), "--resume"]) == 0
    assert main([*args.split(), "--out", str(tmp_path / "straight")]) == 0
    resumed = json.loads((tmp_path / "run" / "metrics.json").read_text())
    straight = json.loads((tmp_path / "straight" / "metrics.json").read_text())
    assert [c["loss"] for c in resumed["curve"]] == [c["loss"] for c in straight["curve"]]
    assert resumed["test"] == straight["test"]


def test_a_mount_point_as_out_keeps_its_dataset_on_a_full_disk(tmp_path, capsys):
    """A mount point cannot be renamed: the new result is staged inside it and its entries
    are swapped, with the same guarantee."""
    with tmpfs(tmp_path / "fs", "3m") as fs:
        assert main(["data", "convert", "sample:tiny", "--out", str(fs)]) == 0
        kept = snapshot(fs)
        assert main(["data", "convert", "sample:medium", "--out", str(fs), "--overwrite"]) == 2
        assert capsys.readouterr().err.startswith("kgwb: error: ")
        assert snapshot(fs) == kept
        assert (
            main(["data", "convert", "sample:tiny", "--seed", "1", "--out", str(fs), "--overwrite"])
            == 0
        )
        assert Dataset.load(fs).interactions.equals(TINY_1.interactions)
        assert leftovers(fs) == []
