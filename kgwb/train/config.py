"""The training stages' configurations, importable without torch (``kgwb train --help``).

* :class:`RecommenderConfig` — :func:`kgwb.train.recommend.train_recommender`;
* :class:`KGEConfig` — :func:`kgwb.train.kge.train_kge`.

Each is a :class:`kgwb.stage.StageConfig`: defaults in the fields, validated on creation,
JSON round trip, and the ``kgwb train`` / ``kgwb kge`` flags derived from the fields.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kgwb.errors import ConfigError, KgwbError
from kgwb.stage import StageConfig, option
from kgwb.train.registry import RECOMMENDERS, TEXT_SUFFIX

#: sampler name -> what it does (``kgwb train --sampler``)
SAMPLERS = {
    "full": "every step propagates over the whole graph (default)",
    "neighbors": "every step propagates over the batch's sampled L-hop neighbourhood",
    "history": "every step propagates over the batch's sampled 1-hop neighbourhood; deeper "
    "layers from per-epoch historical embeddings",
}


class SamplerError(KgwbError, ValueError):
    """A sampler setting that cannot work (unknown name, bad fan-out, unsupported model)."""


def parse_fanouts(text: str | list[int] | tuple[int, ...], layers: int) -> tuple[int, ...]:
    """``"15,10"`` → ``(15, 10)``; one positive fan-out per propagation layer."""
    if isinstance(text, str):
        try:
            values = tuple(int(v) for v in text.replace(" ", "").split(",") if v)
        except ValueError:
            raise SamplerError(
                f"fan-out {text!r}: expected comma-separated positive integers, e.g. 15,10"
            ) from None
    else:
        values = tuple(int(v) for v in text)
    if len(values) == 1 and layers > 1:
        values = values * layers
    if len(values) != layers or any(v <= 0 for v in values):
        raise SamplerError(
            f"fan-out {','.join(map(str, values))}: expected {layers} positive integers "
            f"(one per propagation layer; the model has {layers})"
        )
    return values


_MODEL_NAMES = ", ".join(RECOMMENDERS.names())


@dataclass
class RecommenderConfig(StageConfig):
    """Everything that decides a trained recommender (the ``kgwb train`` flags derive from
    these fields; ``lr``'s CLI default is the notebooks' 0.01)."""

    model: str = option("lightgcn", f"one of: {_MODEL_NAMES}", metavar="NAME")
    epochs: int = option(200, "maximum epochs")
    dim: int = option(64, "embedding size")
    layers: int = option(2, "propagation layers")
    lr: float = option(1e-3, "Adam learning rate")
    batch_size: int = option(2048, "BPR batch size")
    reg: float = option(1e-4, "L2 weight on batch embeddings")
    patience: int = option(10, "evaluations without a better valid Recall@20")
    eval_every: int = option(1, "validate every N epochs")
    device: str = option("auto", "auto (cuda when available), cpu or cuda")
    seed: int = option(0, "seed of training and sample data")
    with_text: bool = option(
        False,
        "add item title embeddings from the default text encoder (same as NAME+text)",
        flag="--text-features",
    )
    cold_items: float = option(
        0.0,
        "cold-start protocol: hold out a seeded fraction F of the items with all their "
        "interactions (evaluated only); metrics.json adds test_warm and test_cold",
        metavar="F",
    )
    model_options: dict[str, Any] = option(
        {}, "extra keyword arguments of the model class", cli=False
    )
    sampler: str = option(
        "full",
        "full: every step propagates over the whole graph (fastest on small graphs); "
        "neighbors: over the batch's sampled L-hop neighbourhood; "
        "history: over its sampled 1-hop neighbourhood, deeper layers from embeddings "
        "recomputed once per epoch (linear epochs)",
        choices=SAMPLERS,
    )
    fanouts: tuple[int, ...] = option(
        (15, 10),
        "with --sampler neighbors: neighbours drawn per node at each hop "
        "(--sampler history draws one hop: the first value)",
        flag="--fanout",
        metavar="K1,K2",
    )
    history_refresh: int = option(
        0,
        "with --sampler history: also recompute the historical embeddings every K steps "
        "(0: once per epoch)",
        metavar="K",
    )
    eval_batch_size: int = option(1024, "users scored per evaluation batch", cli=False)
    nproc: int = option(
        1,
        "data-parallel processes on this machine (DDP: gloo on CPU, NCCL on GPUs); "
        "across machines use torchrun ... -m kgwb train (see README)",
    )
    save_top_k: int = option(
        0,
        "write the top-k recommendations of every user to recommendations.parquet (0: no)",
    )
    num_threads: int | None = option(
        None, "torch CPU threads (per process; default: torch's)", flag="--threads", metavar="N"
    )

    def __post_init__(self) -> None:
        self.model_options = dict(self.model_options or {})
        if isinstance(self.fanouts, str):
            try:
                self.fanouts = tuple(int(v) for v in self.fanouts.replace(" ", "").split(",") if v)
            except ValueError:
                raise SamplerError(
                    f"fan-out {self.fanouts!r}: expected comma-separated positive integers, "
                    "e.g. 15,10"
                ) from None
        self.fanouts = tuple(int(v) for v in self.fanouts)
        super().__post_init__()

    def validate(self) -> None:
        RECOMMENDERS.raw(self.name)  # an unknown name lists the known ones
        for key in ("epochs", "patience", "cold_items", "save_top_k", "history_refresh"):
            if getattr(self, key) < 0:
                raise ConfigError(f"{key} must be >= 0, got {getattr(self, key)}")
        for key in ("dim", "batch_size", "eval_every", "eval_batch_size", "nproc"):
            if getattr(self, key) < 1:
                raise ConfigError(f"{key} must be >= 1, got {getattr(self, key)}")
        if self.sampler not in SAMPLERS:
            raise SamplerError(
                f"unknown sampler {self.sampler!r}; choose one of: {', '.join(SAMPLERS)}"
            )
        if self.sampler != "full":
            parse_fanouts(self.fanouts, self.layers)

    @property
    def name(self) -> str:
        """The model's registry name (``--text-features`` adds ``+text``)."""
        if self.with_text and not self.model.endswith(TEXT_SUFFIX):
            return self.model + TEXT_SUFFIX
        return self.model

    def sampling(self):
        """The :class:`~kgwb.train.sampler.SamplerConfig` of the run."""
        from kgwb.train.sampler import SamplerConfig

        # fan-outs only mean something to a sampled run (and must then match the layers)
        full = self.sampler == "full"
        fanouts = () if full else parse_fanouts(self.fanouts, self.layers)
        if self.sampler == "history":  # one hop
            return SamplerConfig(self.sampler, fanouts[:1], refresh=self.history_refresh)
        return SamplerConfig(self.sampler, fanouts)


class KGEConfigError(KgwbError, ValueError):
    """A KG embedding setting out of range (the message names it and what it must be)."""


#: the PyKEEN models kgwb's tests and benchmarks (benchmarks/bench_kge.py) cover -> class name;
#: every other model of PyKEEN's resolver trains too (:func:`kgwb.train.kge.kge_models`)
KGE_TESTED: dict[str, str] = {
    "transe": "TransE",
    "distmult": "DistMult",
    "complex": "ComplEx",
    "rotate": "RotatE",
}


@dataclass
class KGEConfig(StageConfig):
    """A PyKEEN training run (the ``kgwb kge`` flags derive from these fields)."""

    model: str = option(
        "transe",
        "a PyKEEN model name (any of pykeen.models.model_resolver)",
        metavar="NAME",
    )
    model_kwargs: dict[str, Any] = option(
        {}, "extra keyword arguments of the PyKEEN model class", cli=False
    )
    epochs: int = option(100, "maximum epochs")
    dim: int = option(64, "embedding dimension (complex dimensions for ComplEx/RotatE)")
    lr: float = option(0.01, "Adam learning rate")
    batch_size: int = option(256, "training batch size")
    negatives: int = option(4, "negatives sampled per positive")
    device: str = option("auto", "auto, cpu or cuda")
    seed: int = option(0, "random seed of split and training")
    validation: float = option(0.1, "validation fraction")
    test: float = option(0.1, "test fraction")
    early_stopping: bool = option(
        True, "stop when validation MRR stalls (--no-early-stopping trains all epochs)"
    )
    sources: tuple[str, ...] | None = option(
        None, "for a kgwb KG: comma-separated edge sources to keep (e.g. catalog,extracted)"
    )
    max_eval_triples: int | None = option(
        None,
        "evaluate on at most N test and N validation triples (a seeded sample; the rest stay "
        "in the filter): filtered ranking scores every entity per triple, hours on a "
        "million-triple KG on a CPU",
        metavar="N",
    )
    drop_reverse_leaks: bool = option(
        False,
        "remove test/validation triples whose reverse pair is in train (FB15k-237 style); "
        "metrics.json counts them either way (test_reverse_in_train)",
    )

    def __post_init__(self) -> None:
        self.model_kwargs = dict(self.model_kwargs or {})
        if isinstance(self.sources, str):
            self.sources = tuple(s.strip() for s in self.sources.split(",") if s.strip())
        elif self.sources is not None:
            self.sources = tuple(self.sources)
        super().__post_init__()

    @property
    def key(self) -> str:
        """The model's name as PyKEEN's resolver normalises it (``TransE`` → ``transe``)."""
        return str(self.model).lower().replace("_", "").replace("-", "")

    def validate(self) -> None:
        if self.key not in KGE_TESTED:
            from kgwb.train.kge import kge_models

            kge_models().raw(self.key)  # an unknown name lists PyKEEN's models
        if self.max_eval_triples is not None and int(self.max_eval_triples) < 1:
            raise KGEConfigError(
                f"max_eval_triples must be at least 1 (or None: all), not {self.max_eval_triples}"
            )
        for name in ("dim", "epochs", "batch_size", "negatives"):
            value = getattr(self, name)
            if int(value) < 1:
                raise KGEConfigError(f"{name} must be at least 1, not {value}")
        validation, test = self.validation, self.test
        if not 0 <= validation < 1 or not 0 < test < 1 or validation + test >= 1:
            raise KGEConfigError(
                "split fractions need 0 <= validation, 0 < test and validation + test < 1 "
                f"(got validation={validation}, test={test})"
            )
