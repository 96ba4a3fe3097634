"""The one stage shape (kgwb.stage / kgwb.rundir): config round trip, CLI derived from the
fields, one registry style, a RunDir that builds a stage once and reuses it."""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import pytest

from kgwb.errors import ConfigError, UnknownNameError
from kgwb.rundir import STAGES, RunDir, StageSpec
from kgwb.stage import Registry, StageConfig, StageResult, option


@dataclasses.dataclass
class ToyConfig(StageConfig):
    size: int = option(3, "how many rows")
    rate: float = option(0.5, "a rate")
    name: str | None = option(None, "a name")
    fanout: tuple[int, ...] = option((15, 10), "per hop")
    fast: bool = option(False, "go fast")
    path: Path = option(Path("x"), "a path")

    def validate(self) -> None:
        if self.size < 0:
            raise ConfigError(f"size must be >= 0, got {self.size}")


BUILDS: list[int] = []


@dataclasses.dataclass(kw_only=True)
class ToyResult(StageResult):
    STAGE = "toy"
    RECORD = "toy.json"
    config: ToyConfig
    rows: list[int]

    @property
    def metrics(self):
        return {"rows": len(self.rows)}

    def write_files(self, folder: Path) -> None:
        (folder / "rows.json").write_text(json.dumps(self.rows))

    @classmethod
    def load(cls, run):
        record = cls.read_record(run)
        folder = run.folder_of(cls.STAGE) if hasattr(run, "folder_of") else Path(run)
        return cls(
            config=ToyConfig.from_dict(record["config"]),
            rows=json.loads((folder / "rows.json").read_text()),
            environment=record["environment"],
        )


def build_toy(config: ToyConfig, run: RunDir) -> ToyResult:
    BUILDS.append(config.size)
    return ToyResult(config=config, rows=list(range(config.size)))


def test_config_round_trip_and_validation():
    cfg = ToyConfig(size=4, fanout=(5, 2), path=Path("/tmp/a"))
    data = json.loads(json.dumps(cfg.to_dict()))
    assert data["fanout"] == [5, 2] and data["path"] == "/tmp/a"
    assert ToyConfig.from_dict(data) == cfg
    with pytest.raises(ConfigError, match="size must be"):
        ToyConfig(size=-1)
    with pytest.raises(ConfigError, match="unknown key.*sise.*known: fanout"):
        ToyConfig.from_dict({"sise": 3})
    with pytest.raises(ConfigError, match=r"ToyConfig.size: 'many' is not a valid int"):
        ToyConfig.from_dict({"size": "many"})


def test_cli_flags_come_from_the_fields():
    parser = argparse.ArgumentParser()
    ToyConfig.add_arguments(parser, skip=("path",), size=7)
    args = parser.parse_args(["--fanout", "4,2", "--fast", "--name", "n"])
    cfg = ToyConfig.from_args(args)
    assert cfg == ToyConfig(size=7, fanout=(4, 2), fast=True, name="n")
    assert "how many rows (default 7)" in parser.format_help()
    assert "--path" not in parser.format_help()


def test_registry_is_lazy_and_lists_names():
    reg = Registry("widget", {"json": "json:dumps"})
    reg.register("one", 1)

    @reg.register("two")
    def two():
        return 2

    assert reg.names() == ["json", "one", "two"]
    assert reg.raw("json") == "json:dumps" and reg.get("json") is json.dumps
    with pytest.raises(
        UnknownNameError, match="unknown widget 'three'; choose one of: json, one, two"
    ):
        reg.get("three")


def test_rundir_builds_once_then_reuses(tmp_path):
    STAGES.register("toy", StageSpec(build=build_toy, result=ToyResult, folder="kge"))
    run = RunDir(tmp_path / "run")
    BUILDS.clear()
    first = run.get_or_build("toy", ToyConfig(size=3))
    assert (run.kge / "toy.json").is_file() and first.metrics == {"rows": 3}
    again = run.get_or_build("toy", ToyConfig(size=3))
    assert BUILDS == [3] and again.rows == [0, 1, 2] and again.environment == first.environment
    other = run.get_or_build("toy", ToyConfig(size=2))  # another config: built again
    assert BUILDS == [3, 2] and other.rows == [0, 1]
    record = json.loads((run.kge / "toy.json").read_text())
    assert (
        record["stage"] == "toy"
        and record["config"]["size"] == 2
        and record["metrics"] == {"rows": 2}
    )
    assert run.train("kgat+text") == run.root / "train" / "kgat_text"
    assert run.kg == run.root / "kg_build" / "kg"
