"""The stages outside kgwb/train in the one shape (#11): data, kg and extract take a config,
return a StageResult, derive their CLI flags from the config, and RunDir builds them once."""

from __future__ import annotations

import argparse
import json

import pytest

from kgwb.data import FORMATS
from kgwb.data.stage import DataConfig, DataStageResult, prepare_data
from kgwb.errors import ConfigError, UnknownNameError
from kgwb.kg.build import KGBuildConfig, KGBuildResult
from kgwb.rundir import STAGES, RunDir
from kgwb.text.extract import ExtractorConfig, ExtractorTrainResult

CATALOG_ONLY = KGBuildConfig(extract_model="none", resolve=False, store=False)


def _parse(config_cls, argv, **defaults):
    parser = argparse.ArgumentParser()
    config_cls.add_arguments(parser, **defaults)
    return config_cls.from_args(parser.parse_args(argv)), parser.format_help()


def test_the_stages_and_formats_are_registered_lazily():
    assert {"data", "kg", "extract"} <= set(STAGES.names())
    assert isinstance(STAGES.raw("kg").build, str)  # nothing imported until asked for
    assert FORMATS.names() == ["attributes", "kgat", "kgwb", "recbole", "sample", "table"]
    assert FORMATS.get("kgwb").__qualname__ == "Dataset.load"
    with pytest.raises(UnknownNameError, match="unknown format 'csvx'; choose one of: attributes"):
        DataConfig(source="x.csv", format="csvx")


def test_data_config_flags_and_round_trip():
    cfg, help_text = _parse(DataConfig, ["sample:tiny", "--on-bad-rows", "skip", "--seed", "3"])
    assert cfg == DataConfig(source="sample:tiny", errors="skip", seed=3)
    assert DataConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    assert "seed of the sample generator (default 0)" in help_text
    with pytest.raises(SystemExit):  # the source is a required positional argument
        _parse(DataConfig, [])
    with pytest.raises(ConfigError, match="errors must be 'raise' or 'skip'"):
        DataConfig(errors="ignore")


def test_prepare_data_takes_a_config_or_keywords(tmp_path):
    by_config = prepare_data(DataConfig(source="sample:tiny", seed=1), out_dir=tmp_path)
    by_keywords = prepare_data(source="sample:tiny", seed=1)
    assert by_config.config == by_keywords.config
    assert by_config.summary == by_keywords.summary
    record = json.loads((tmp_path / "data_stage.json").read_text())
    assert record["stage"] == "data" and record["config"]["seed"] == 1
    assert record["versions"] == record["environment"] == by_config.versions
    again = DataStageResult.load(tmp_path)
    assert again.summary == by_config.summary and again.metrics["items"] == 150
    assert again.dataset.items.equals(by_config.dataset.items)


def test_kg_build_config_normalises_and_reads_its_flags():
    assert KGBuildConfig(extract_model="None").extract_model is None
    assert KGBuildConfig(extract_fields="title, description").extract_fields == (
        "title",
        "description",
    )
    cfg, help_text = _parse(
        KGBuildConfig,
        ["--extract-model", "none", "--no-resolve", "--with-users", "--extract-epochs", "2"],
    )
    assert cfg.extract_model is None and not cfg.resolve and cfg.include_users
    assert cfg.extractor_epochs == 2 and cfg.store
    assert "--extract-fields EXTRACT_FIELDS" in help_text and "--no-store" in help_text
    with pytest.raises(ConfigError, match="holdout must be in"):
        KGBuildConfig(holdout=1.0)


def test_rundir_builds_data_and_kg_once_and_rebuilds_on_other_data(tmp_path):
    run = RunDir(tmp_path / "run")
    data = run.get_or_build("data", DataConfig(source="sample:tiny"))
    assert isinstance(data, DataStageResult) and (run.dataset / "dataset.json").is_file()
    kg = run.get_or_build("kg", CATALOG_ONLY)
    assert isinstance(kg, KGBuildResult) and (run.kg / "kg.json").is_file()
    record = json.loads((run.kg_build / "kg_build.json").read_text())
    assert record["stage"] == "kg" and record["config"] == CATALOG_ONLY.to_dict()
    assert record["build"]["dataset"] == "sample-tiny" and record["skipped"] == kg.skipped

    again = run.get_or_build("kg", CATALOG_ONLY)  # reused: read back from the folder
    assert again is not kg and again.metrics == kg.metrics and again.out_dir == run.kg_build
    assert again.kg.nodes.equals(kg.kg.nodes)
    assert json.loads((run.kg_build / "kg_build.json").read_text()) == record  # not rewritten

    run.get_or_build("data", DataConfig(source="sample:tiny", seed=1))
    rebuilt = run.get_or_build("kg", CATALOG_ONLY)  # same config, other data: built again
    assert rebuilt.build_info["dataset"] == "sample-tiny"
    assert len(rebuilt.kg.nodes) != len(kg.kg.nodes)


def test_the_kg_stage_asks_for_the_data_stage_first(tmp_path):
    with pytest.raises(Exception, match="build the data stage first"):
        RunDir(tmp_path / "empty").get_or_build("kg", CATALOG_ONLY)


def test_extractor_config_flags_validation_and_keyword_form():
    cfg, help_text = _parse(
        ExtractorConfig, ["--train", "t.jsonl", "--threads", "2", "--no-use-category"], ensemble=3
    )
    assert cfg.train == "t.jsonl" and cfg.num_threads == 2 and cfg.ensemble == 3
    assert not cfg.use_category and cfg.device == "auto"
    assert "--threads THREADS" in help_text and "training epochs (default 15)" in help_text
    with pytest.raises(ConfigError, match="unknown label_scheme 'x'; choose one of"):
        ExtractorConfig(label_scheme="x")
    with pytest.raises(ConfigError, match="ensemble must be at least 1"):
        ExtractorConfig(ensemble=0)
    from kgwb.text.extract import train_extractor

    with pytest.raises(TypeError, match="unexpected keyword.*epoch"):
        train_extractor(train=[], epoch=3)


def test_rundir_trains_the_extractor_once(tmp_path):
    records = [
        {"input": f"Acme {c} shoe {i}", "category": "Shoes", "target_scores": {"Color": {c: 1}}}
        for i, c in enumerate(["red", "blue", "green", "black"] * 2)
    ]
    train = tmp_path / "train.jsonl"
    train.write_text("".join(json.dumps(r) + "\n" for r in records))
    config = ExtractorConfig(train=str(train), epochs=1, batch_size=8, max_length=16, num_threads=1)
    run = RunDir(tmp_path / "run")
    first = run.get_or_build("extract", config.replace(test=str(train)))
    saved = json.loads((run.extractor / "metrics.json").read_text())
    assert saved["config"]["train"] == str(train) and saved["config"]["device"] == "auto"
    assert saved["environment"]["device"] in ("cpu", "cuda")
    assert (run.extractor / "model").is_dir()
    again = run.get_or_build("extract", config.replace(test=str(train)))
    assert isinstance(again, ExtractorTrainResult) and again.metrics == first.metrics
    spans = again.extractor.extract(["Acme red shoe"], ["Shoes"])
    assert spans == first.extractor.extract(["Acme red shoe"], ["Shoes"])


def test_extractors_and_language_configs_share_the_registry_and_flags():
    from kgwb.kg.build import EXTRACTORS, _saved_extractor, extractor_source
    from kgwb.kg.check import CheckConfig
    from kgwb.qa import QAConfig
    from kgwb.viz.graph import EgoConfig

    assert EXTRACTORS.names() == ["distant", "none"]
    assert extractor_source("some/folder") is _saved_extractor
    assert extractor_source(None) is EXTRACTORS.get("none")
    check, _ = _parse(CheckConfig, ["--readers", "dictionary", "--min-confidence", "0.7"])
    assert check.readers == ("dictionary",) and check.min_confidence == 0.7
    assert CheckConfig.from_dict(json.loads(json.dumps(check.to_dict()))) == check
    qa, _ = _parse(QAConfig, ["--k", "5"])
    assert qa.k == 5 and qa.model is None
    with pytest.raises(ConfigError, match="max_nodes must be at least 1"):
        EgoConfig(max_nodes=0)
