"""Stage 2 entry point: build the product KG from a dataset — catalog + text extraction +
entity resolution — store it in LadybugDB and report its quality.

``build_kg`` is what 02_build_kg and ``kgwb kg build`` call.  The extractor is either a
fine-tuned model folder (``extract_model=PATH``), trained here by distant supervision from the
dataset's own catalog attributes found in its titles (``extract_model="distant"``), or skipped
(``None``).  With ground truth (the sample generator's ``truth`` tables) the result is scored:
extraction precision/recall per attribute and entity-resolution pairwise precision/recall.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import pandas as pd

from kgwb.atomic import output_dir
from kgwb.data.schema import Dataset
from kgwb.errors import ConfigError, KgwbError
from kgwb.kg.catalog import catalog_graph
from kgwb.kg.model import KnowledgeGraph
from kgwb.kg.quality import add_part, extracted_graph_part, quality_report
from kgwb.kg.resolve import ResolutionConfig, ResolutionResult, pairwise_scores, resolve_entities
from kgwb.stage import Registry, StageConfig, StageResult, _folder_for, option

__all__ = [
    "EXTRACTORS",
    "KGBuildConfig",
    "KGBuildResult",
    "build_kg",
    "catalog_graph",
    "distant_records",
    "ensure_extractor",
    "extract_spans",
    "item_text_fields",
]

DISTANT = "distant"
BUILD_MANIFEST = "kg_build.json"
log = logging.getLogger(__name__)


def _distant_extractor(dataset: Dataset, config: Any, fields: list[str], work: Any, info: dict):
    """train here from the catalog's attribute values found in the item text"""
    return _train_distant(
        dataset,
        fields[0],
        holdout=config.holdout,
        max_items=config.extractor_max_items,
        out_dir=work,
        encoder=config.encoder,
        epochs=config.extractor_epochs,
        lr=config.extractor_lr,
        seed=config.seed,
        info=info,
    )


def _no_extractor(dataset: Dataset, config: Any, fields: list[str], work: Any, info: dict):
    """catalog only"""
    return None, None, set()


def _saved_extractor(dataset: Dataset, config: Any, fields: list[str], work: Any, info: dict):
    """a fine-tuned extractor folder, trained first from extract_train when it is missing"""
    from kgwb.text.extract import load_extractor

    folder = ensure_extractor(config.extract_model, train=config.extract_train, seed=config.seed)
    return load_extractor(folder), None, set()


#: the named extractors of the KG build: name -> ``(dataset, config, fields, work folder,
#: info) -> (extractor, distant training summary, held-out item ids)``; any other
#: ``extract_model`` is a fine-tuned extractor folder (or Hugging Face name)
EXTRACTORS = Registry("extractor", {DISTANT: _distant_extractor, "none": _no_extractor})


def extractor_source(name: str | None):
    """How the KG build gets the extractor called ``name`` (None: catalog only)."""
    if name is None:
        return _no_extractor
    return EXTRACTORS.get(name) if name in EXTRACTORS else _saved_extractor


def _extract_model_help() -> str:
    named = " or ".join(f"'{n}' ({EXTRACTORS.get(n).__doc__})" for n in EXTRACTORS.names())
    return f"a fine-tuned extractor folder, {named}"


@dataclass
class KGBuildConfig(StageConfig):
    """How the product KG is built from a dataset (the flags of ``kgwb kg build``)."""

    extract_model: str | None = option(DISTANT, _extract_model_help())
    extract_fields: tuple[str, ...] = option(
        ("title",), "comma-separated item text fields to extract from"
    )
    extract_train: str | None = option(
        None,
        "labelled titles (OA-Mine JSON lines) to train --extract-model FOLDER from when "
        "that folder does not exist yet",
    )
    extractor_epochs: int = option(5, "epochs for --extract-model distant", flag="--extract-epochs")
    extractor_max_items: int | None = option(
        None,
        "train the distant extractor on at most this many items (default: all)",
        flag="--extract-max-items",
    )
    extractor_lr: float = option(
        5e-4, "peak learning rate of the distant extractor", flag="--extract-lr"
    )
    holdout: float = option(
        0.2, "share of the items the distant extractor never sees, to score it on unseen text"
    )
    resolve: bool = option(True, "merge brand and value nodes that name one entity")
    include_users: bool = option(False, "add users and interaction edges", flag="--with-users")
    min_confidence: float = option(0.5, "drop extracted values less confident than this")
    store: bool = option(True, "build the LadybugDB store")
    seed: int = option(0, "random seed (also of the sample generator)")
    encoder: str | None = option(None, "encoder name or path (default: bundled MiniLM)")

    def __post_init__(self) -> None:
        model = self.extract_model
        if model is not None:
            model = str(model)
            self.extract_model = None if model.lower() == "none" else model
        fields = (
            self.extract_fields.split(",")
            if isinstance(self.extract_fields, str)
            else self.extract_fields
        )
        self.extract_fields = tuple(f.strip() for f in fields if f.strip())
        if self.extract_train is not None:
            self.extract_train = str(self.extract_train) or None
        super().__post_init__()

    def validate(self) -> None:
        if not 0.0 <= self.holdout < 1.0:
            raise ConfigError(f"holdout must be in [0, 1), not {self.holdout}")
        if self.extract_model is not None and not self.extract_fields:
            raise ConfigError("extract_fields is empty: name the item text fields to read")


@dataclass(kw_only=True)
class KGBuildResult(StageResult):
    """The built graph plus everything measured while building it."""

    STAGE: ClassVar[str] = "kg"
    RECORD: ClassVar[str] = BUILD_MANIFEST

    kg: KnowledgeGraph
    quality: dict[str, Any]
    config: KGBuildConfig
    timings: dict[str, float]
    extraction_training: dict[str, Any] | None = None
    resolution: ResolutionResult | None = None
    resolution_scores: dict[str, Any] | None = None
    spans: pd.DataFrame | None = None
    out_dir: Path | None = None
    store_path: Path | None = None
    skipped: dict[str, str] = field(default_factory=dict)
    #: what the build found: the dataset's name, items held out, spans below min_confidence
    build_info: dict[str, Any] = field(default_factory=dict)

    @property
    def metrics(self) -> dict[str, Any]:
        q = self.quality
        out: dict[str, Any] = {
            "nodes": q["nodes"],
            "edges": q["edges"],
            "edges_by_source": q["edges_by_source"],
            "nodes_by_type": q["nodes_by_type"],
            "duplicate_rate": q.get("duplicate_rate"),
            "attribute_coverage_mean": q.get("attribute_coverage_mean"),
            **{f"{k}_seconds": round(v, 2) for k, v in self.timings.items()},
        }
        if self.skipped:
            out["skipped"] = dict(self.skipped)
        for key in ("extraction", "extraction_heldout"):
            if key in q:
                out[key] = {k: q[key][k] for k in ("precision", "recall", "f1", "unit")}
        if self.extraction_training:
            out["extractor_training"] = self.extraction_training
        if self.resolution_scores:
            out["resolution"] = self.resolution_scores
        return out

    def record(self) -> dict[str, Any]:
        """``kg_build.json``: config, metrics, environment, plus what was skipped, the quality
        report, timings, ``build_info`` (and ``versions``, the environment's older name)."""
        return {
            **super().record(),
            "skipped": self.skipped,
            "quality": self.quality,
            "timings": self.timings,
            "build": self.build_info,
            "extraction_training": self.extraction_training,
            "resolution_scores": self.resolution_scores,
            "versions": self.environment,
        }

    def save(self, out_dir: Any = None, *, overwrite: bool = True, store: bool = False) -> Path:
        """Write the KG tables, spans, resolution tables, the LadybugDB store (``store=True``)
        and ``kg_build.json`` (last) into ``out_dir`` (a folder or a RunDir).

        The folder is replaced as a whole once everything is written (see :mod:`kgwb.atomic`),
        so a failed or killed rebuild leaves the earlier KG — tables and store alike — readable.
        """
        given = out_dir if out_dir is not None else self.out_dir
        if given is None:
            raise ConfigError("no output folder given")
        target = _folder_for(given, self.STAGE)
        with output_dir(
            target, kind="KG build", overwrite=overwrite, manifests=(BUILD_MANIFEST,)
        ) as work:
            self.write_into(work, final=target, store=store)
        self.out_dir = target
        return target

    def write_into(self, work: Path, *, final: Path, store: bool = False) -> None:
        """The writes of :meth:`save` into the folder ``work`` that becomes ``final``."""
        from kgwb.atomic import write_json, write_with

        self.kg.save(work / "kg", overwrite=True)
        tables = {"extracted_spans": self.spans}
        if self.resolution is not None:
            tables["resolution_mapping"] = self.resolution.mapping
            tables["resolution_pairs"] = self.resolution.pairs
        for name, df in tables.items():
            if df is not None:
                write_with(work / f"{name}.parquet", lambda p, df=df: df.to_parquet(p, index=False))
        if store:
            from kgwb.kg.store import GraphStore, default_store_path

            t = time.perf_counter()
            GraphStore.build(self.kg, default_store_path(work / "kg"), overwrite=True).close()
            self.store_path = default_store_path(final / "kg")
            self.timings["store"] = time.perf_counter() - t
        write_json(work / BUILD_MANIFEST, self.record(), default=str)

    @classmethod
    def load(cls, run: Any) -> KGBuildResult:
        """A saved build (a folder or a RunDir): the KG, spans, resolution tables and record."""
        from kgwb.kg.store import default_store_path

        folder = _folder_for(run, cls.STAGE)
        record = cls.read_record(folder)
        kg = KnowledgeGraph.load(folder / "kg")
        tables = {
            name: pd.read_parquet(folder / f"{name}.parquet")
            for name in ("extracted_spans", "resolution_mapping", "resolution_pairs")
            if (folder / f"{name}.parquet").is_file()
        }
        resolution = None
        if "resolution_mapping" in tables and "resolution_pairs" in tables:
            resolution = ResolutionResult(
                mapping=tables["resolution_mapping"], pairs=tables["resolution_pairs"], kg=kg
            )
        store = default_store_path(folder / "kg")
        return cls(
            kg=kg,
            quality=record["quality"],
            config=KGBuildConfig.from_dict(record["config"]),
            timings=dict(record.get("timings", {})),
            extraction_training=record.get("extraction_training"),
            resolution=resolution,
            resolution_scores=record.get("resolution_scores"),
            spans=tables.get("extracted_spans"),
            out_dir=folder,
            store_path=store if store.exists() else None,
            skipped=dict(record.get("skipped", {})),
            build_info=dict(record.get("build", {})),
            environment=record.get("environment") or record.get("versions") or {},
        )

    def summary(self) -> str:
        """A few lines for people: node counts by type (brand and category always named), edge
        counts by source, the stages skipped and the time each stage took."""
        q = self.quality
        types = dict(q["nodes_by_type"])
        named = {t: types.pop(t, 0) for t in ("item", "brand", "category", "value")}
        parts = [f"{t} {n:,}" for t, n in {**named, **dict(sorted(types.items()))}.items()]
        sources = ", ".join(f"{s} {n:,}" for s, n in sorted(q["edges_by_source"].items()))
        lines = [
            f"nodes: {q['nodes']:,} ({', '.join(parts)})",
            f"edges: {q['edges']:,}" + (f" ({sources})" if sources else ""),
        ]
        lines += [f"skipped: {note}" for note in self.skipped.values()]
        times = ", ".join(f"{k} {v:.1f} s" for k, v in self.timings.items())
        return "\n".join(lines + [f"seconds: {times}"])


def item_text_fields(items: pd.DataFrame, fields: tuple[str, ...] | list[str]) -> list[str]:
    """Those of ``fields`` that the items table has with at least one non-blank value."""
    present = []
    for name in fields:
        if name in items.columns:
            text = items[name].astype("string").str.strip()
            if bool((text.notna() & (text != "")).any()):
                present.append(name)
    return present


def distant_records(dataset: Dataset, *, field: str = "title") -> pd.DataFrame:
    """Distant-supervision records: each catalog attribute value with its item's text.

    Long format (item_id, text, category, attribute, value); the extractor labels the value where
    it occurs in the text and leaves it unlabelled where it does not.
    """
    if dataset.item_attributes is None or field not in dataset.items.columns:
        raise ValueError(
            f"distant supervision needs catalog attributes and item {field!r} text; "
            f"dataset {dataset.name!r} lacks them"
        )
    items = dataset.items[
        ["item_id", field] + (["category"] if "category" in dataset.items else [])
    ]
    items = items.rename(columns={field: "text"})
    if "category" not in items:
        items = items.assign(category="")
    rec = dataset.item_attributes[["item_id", "attribute", "value"]].merge(items, on="item_id")
    if "brand" in dataset.items.columns:  # the brand is an attribute of the text too
        brand = dataset.items[["item_id", "brand"]].dropna().rename(columns={"brand": "value"})
        brand = brand.assign(attribute="brand").merge(items, on="item_id")
        rec = pd.concat([rec, brand[rec.columns]], ignore_index=True)
    rec = rec.dropna(subset=["text"])
    # items without any catalog attribute still teach the model what is *not* a value
    bare = items[~items["item_id"].isin(rec["item_id"])].dropna(subset=["text"])
    bare = bare.assign(attribute=None, value=None)
    cols = ["item_id", "text", "category", "attribute", "value"]
    return pd.concat([rec[cols], bare[cols]], ignore_index=True)


def extract_spans(
    dataset: Dataset, extractor, *, fields: tuple[str, ...] = ("title",), batch_size: int = 64
) -> pd.DataFrame:
    """Run ``extractor`` over item text fields; one row per span with its provenance."""
    rows = []
    cats = (
        dataset.items["category"].fillna("").astype(str).tolist()
        if "category" in dataset.items
        else None
    )
    for fld in fields:
        if fld not in dataset.items.columns:
            continue
        texts = dataset.items[fld].fillna("").astype(str).tolist()
        found = extractor.extract(
            texts, cats if extractor.settings.use_category else None, batch_size=batch_size
        )
        for item_id, spans in zip(dataset.items["item_id"].astype(str), found):
            for s in spans:
                rows.append(
                    (
                        item_id,
                        fld,
                        s["attribute"],
                        s["value"],
                        s["start"],
                        s["end"],
                        s["confidence"],
                    )
                )
    return pd.DataFrame(
        rows, columns=["item_id", "field", "attribute", "value", "start", "end", "confidence"]
    )


def _resolution_scores(
    result: ResolutionResult, kg_before: KnowledgeGraph, truth: pd.DataFrame
) -> dict:
    """Pairwise precision/recall of brand resolution against ``entity_variants``."""
    brands = truth[truth["kind"] == "brand"]
    true_of_surface = brands.drop_duplicates("surface").set_index("surface")["canonical_id"]
    nodes = kg_before.nodes[kg_before.nodes["type"] == "brand"]
    surface = nodes.set_index("node_id")["name"].astype(str)
    truth_by_node = surface.map(true_of_surface).dropna()
    predicted = result.mapping.set_index("node_id")["canonical_id"]
    return {
        "brand": pairwise_scores(predicted.reindex(truth_by_node.index).dropna(), truth_by_node)
    }


def _skip(skipped: dict[str, str], stage: str, message: str) -> None:
    """Record that ``stage`` did not run and why (``result.summary()`` and the CLI print it)."""
    skipped[stage] = message
    log.info("%s", message)


def ensure_extractor(
    model_dir: str | Path,
    *,
    train: str | Path | None = None,
    epochs: int | None = None,
    seed: int = 0,
    encoder: str | None = None,
    valid_fraction: float = 0.1,
) -> Path:
    """The extractor folder ``model_dir``, trained first from ``train`` (labelled titles in
    OA-Mine JSON lines) when it does not exist yet; a missing folder without ``train`` is an
    error that says how to make one."""
    folder = Path(model_dir)
    if folder.exists():
        return folder
    if train is None or not str(train):
        raise KgwbError(
            f"{folder}: no such extractor folder; train one with `kgwb extract train --train "
            f"LABELLED.jsonl --out {folder}` or pass the labelled titles to train it here"
        )
    if not Path(train).is_file():
        raise KgwbError(f"{train}: no such file (labelled titles to train {folder} from)")
    from kgwb.text.extract import train_extractor

    log.warning("training the extractor %s from %s (once; later runs reuse it)", folder, train)
    options = {"epochs": epochs} if epochs else {}
    train_extractor(
        train=str(train),
        out_dir=folder,
        model=encoder,
        seed=seed,
        valid_fraction=valid_fraction,
        **options,
    )
    return folder


def _extraction_fields(
    dataset: Dataset, extract_model: str | Path | None, fields: tuple[str, ...], skipped: dict
) -> list[str]:
    """The text fields extraction will read; empty (and a ``skipped`` note) when there is
    nothing to read or nothing to learn from."""
    if extract_model is None:
        return []
    present = item_text_fields(dataset.items, fields)
    if not present:
        _skip(
            skipped,
            "extraction",
            f"text extraction skipped: the catalog has no {' or '.join(fields)} text",
        )
        return []
    attrs = dataset.item_attributes
    if str(extract_model) == DISTANT and (attrs is None or not len(attrs)):
        _skip(
            skipped,
            "extraction",
            "text extraction skipped: extract_model='distant' learns from catalog attribute "
            "values found in the item text, and this catalog has no attribute table "
            "(item_attributes); pass a trained extractor folder (`kgwb extract train`) instead",
        )
        return []
    return present


def _train_distant(
    dataset: Dataset,
    field_name: str,
    *,
    holdout: float,
    max_items: int | None,
    out_dir: str | Path | None,
    encoder: str | None,
    epochs: int,
    lr: float,
    seed: int,
    info: dict[str, Any],
):
    """Fine-tune an extractor on the catalog's own values; returns (extractor, training
    summary, held-out item ids); ``info`` gets the number of items held out."""
    from kgwb.text.extract import train_extractor

    records = distant_records(dataset, field=field_name)
    # items held out of training score the extractor honestly on unseen text
    ids = pd.Series(pd.unique(records["item_id"]))
    held = set(ids.sample(frac=holdout, random_state=seed)) if holdout > 0 else set()
    info["holdout_items"] = len(held)
    train_records = records[~records["item_id"].isin(held)]
    if max_items is not None:  # cap training cost on large catalogs
        keep_ids = pd.Series(pd.unique(train_records["item_id"]))
        if len(keep_ids) > max_items:
            keep_ids = keep_ids.sample(n=max_items, random_state=seed)
        train_records = train_records[train_records["item_id"].isin(set(keep_ids))]
    trained = train_extractor(
        train=train_records,
        out_dir=(Path(out_dir) / "extractor") if out_dir else None,
        model=encoder,
        epochs=epochs,
        lr=lr,
        seed=seed,
    )
    training = {
        "examples": trained.n_train,
        "values": trained.n_train_values,
        "values_not_in_text": trained.n_train_unplaced,
        "seconds": round(trained.train_seconds, 2),
        "final_loss": round(trained.losses[-1], 4) if trained.losses else None,
    }
    return trained.extractor, training, held


def _resolve_types(kg: KnowledgeGraph, cfg: ResolutionConfig, skipped: dict) -> bool:
    """Whether the graph has nodes of the types resolution merges (else a ``skipped`` note)."""
    if bool(kg.nodes["type"].isin(cfg.types).any()):
        return True
    _skip(
        skipped,
        "resolution",
        f"entity resolution skipped: the graph has no {' or '.join(cfg.types)} nodes to merge",
    )
    return False


def _catalog_note(dataset: Dataset, kg: KnowledgeGraph, skipped: dict) -> None:
    if len(kg.edges) == 0:
        _skip(
            skipped,
            "catalog",
            "catalog graph: item nodes only (the catalog has no brand, category, attribute or "
            "KG triple to link them)",
        )


def build_kg(
    config: KGBuildConfig | None = None,
    *,
    dataset: Dataset,
    out_dir: Any = None,
    overwrite: bool = True,
    resolution: ResolutionConfig | None = None,
    **options: Any,
) -> KGBuildResult:
    """Build, resolve, score, save and store the product KG of ``dataset``.

    ``config`` (:class:`KGBuildConfig`) holds the settings; its fields can also be given as
    keywords (``build_kg(dataset=ds, extract_model=None, seed=1)``), over the config's.
    ``extract_model``: ``"distant"`` (fine-tune here from catalog attributes, default), a folder
    with a fine-tuned extractor, or ``None`` (catalog only).  A folder that does not exist yet is
    trained first from ``extract_train`` (labelled titles, OA-Mine JSON lines) when given.
    Distant supervision trains on a seeded ``1 - holdout`` share of the items (at most
    ``extractor_max_items`` of them) and the held-out items score the extractor on text it never
    saw.  Extracted values below ``min_confidence`` are dropped (and counted in the metrics).
    Stages with nothing to work on are skipped and named in ``result.skipped``.  ``out_dir`` is
    a folder or a :class:`~kgwb.rundir.RunDir` (its ``kg_build`` folder); an earlier build there
    is replaced only once the new one (tables and store) is complete, and only with
    ``overwrite=True`` (the default here; ``kgwb kg build`` asks for ``--overwrite``).
    ``resolution`` tunes entity resolution (default: ``ResolutionConfig(model=encoder)``).
    """
    config = (config or KGBuildConfig()).replace(**options)
    if out_dir is None:
        return _build(config, dataset, resolution, work=None, final=None)
    final = _folder_for(out_dir, KGBuildResult.STAGE)
    # everything (the distant extractor too) is written into the folder output_dir gives
    with output_dir(
        final, kind="KG build", overwrite=overwrite, manifests=(BUILD_MANIFEST,)
    ) as work:
        result = _build(config, dataset, resolution, work=work, final=final)
    result.out_dir = final
    return result


def build_kg_stage(config: KGBuildConfig, run: Any) -> KGBuildResult:
    """The ``kg`` stage of :data:`kgwb.rundir.STAGES`: the KG of the run's saved dataset, saved
    into ``run.kg_build`` and stamped with the data it was built from."""
    from kgwb.data.stage import DataStageResult
    from kgwb.runs import data_key, stamp

    try:
        data = DataStageResult.load(run)
    except FileNotFoundError as err:
        raise KgwbError(
            f"{err}; build the data stage first: run.get_or_build('data', DataConfig(...))"
        ) from None
    result = build_kg(config, dataset=data.dataset, out_dir=run)
    stamp(result.out_dir, data_key(data.config.source, data.config.format, data.config.seed))
    return result


def _build(
    config: KGBuildConfig,
    dataset: Dataset,
    resolution: ResolutionConfig | None,
    *,
    work: Path | None,
    final: Path | None,
) -> KGBuildResult:
    """The build itself; with ``work`` it writes there (the folder that becomes ``final``)."""
    timings: dict[str, float] = {}
    skipped: dict[str, str] = {}
    info: dict[str, Any] = {"dataset": dataset.name}
    t = time.perf_counter()
    kg = catalog_graph(dataset, include_users=config.include_users)
    timings["catalog"] = time.perf_counter() - t
    _catalog_note(dataset, kg, skipped)
    kg, spans, training, heldout_ids = _add_extracted(
        dataset, kg, config, work=work, skipped=skipped, timings=timings, info=info
    )
    res = res_scores = merged_nodes = None
    cfg = resolution or ResolutionConfig(model=config.encoder)
    if config.resolve and _resolve_types(kg, cfg, skipped):
        t = time.perf_counter()
        before = kg
        res = resolve_entities(kg, cfg)
        kg = res.kg
        merged_nodes = res.merged_nodes
        timings["resolution"] = time.perf_counter() - t
        if "entity_variants" in dataset.truth:
            res_scores = _resolution_scores(res, before, dataset.truth["entity_variants"])

    kg.meta.update(
        {"seed": config.seed, "config": {"dataset": dataset.name, **config.to_dict(), **info}}
    )
    quality = _quality(kg, dataset, config.extract_fields, merged_nodes, heldout_ids)
    result = KGBuildResult(
        kg=kg,
        quality=quality,
        config=config,
        timings=timings,
        extraction_training=training,
        resolution=res,
        resolution_scores=res_scores,
        spans=spans,
        skipped=skipped,
        build_info=info,
    )
    if work is not None:
        result.write_into(work, final=final or work, store=config.store)
    return result


def _add_extracted(
    dataset: Dataset,
    kg: KnowledgeGraph,
    config: KGBuildConfig,
    *,
    work: Path | None,
    skipped: dict[str, str],
    timings: dict[str, float],
    info: dict[str, Any],
) -> tuple[KnowledgeGraph, pd.DataFrame | None, dict | None, set[str]]:
    """The graph with the values the extractor finds in the item text (confident ones), the
    spans, the distant training summary and the held-out item ids."""
    fields = _extraction_fields(dataset, config.extract_model, config.extract_fields, skipped)
    if not fields:
        return kg, None, None, set()
    t = time.perf_counter()
    extractor, training, heldout_ids = extractor_source(config.extract_model)(
        dataset, config, fields, work, info
    )
    timings["extractor_training" if training else "extractor_load"] = time.perf_counter() - t
    t = time.perf_counter()
    spans = extract_spans(dataset, extractor, fields=tuple(fields))
    timings["extraction"] = time.perf_counter() - t
    kept = spans[spans["confidence"] >= config.min_confidence]
    info["spans_below_min_confidence"] = int(len(spans) - len(kept))
    name = getattr(extractor.settings, "model", None) or "extractor"
    nodes, edges = extracted_graph_part(kept, extractor=f"kgwb-bio:{Path(str(name)).name}")
    return add_part(kg, nodes, edges), spans, training, heldout_ids


def _quality(
    kg: KnowledgeGraph,
    dataset: Dataset,
    extract_fields: tuple[str, ...],
    merged_nodes: int | None,
    heldout_ids: set[str],
) -> dict[str, Any]:
    """The quality report, scored against the dataset's truth tables when it has them."""
    truth = dataset.truth or None
    if truth and "attribute_spans" in truth:
        fields = set(extract_fields)
        spans_truth = truth["attribute_spans"]
        truth = {**truth, "attribute_spans": spans_truth[spans_truth["field"].isin(fields)]}
    quality = quality_report(kg, items=dataset.items, truth=truth, merged_nodes=merged_nodes)
    if heldout_ids and truth and "attribute_spans" in truth:
        from kgwb.kg.quality import extraction_scores

        held_edges = kg.edges[kg.edges["item_id"].isin(heldout_ids)]
        held_truth = truth["attribute_spans"][truth["attribute_spans"]["item_id"].isin(heldout_ids)]
        quality["extraction_heldout"] = extraction_scores(held_edges, held_truth)
    return quality
