"""``kgwb extract ...``: fine-tune the attribute-value extractor, or apply a fine-tuned one.

Only argparse is imported at module level; torch and transformers load inside the commands.
"""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    # the train flags and their defaults come from ExtractorConfig (kgwb.text.extract imports
    # neither torch nor transformers)
    extract = sub.add_parser(
        "extract", help="language-model attribute-value extraction from titles"
    )
    extract_sub = extract.add_subparsers(dest="extract_command", metavar="ACTION")
    extract_sub.required = True

    train = extract_sub.add_parser(
        "train",
        help="fine-tune a BIO token classifier on labelled titles; print its slot micro-F1",
        description="Fine-tune the extractor on JSON lines in OA-Mine format "
        '({"input": title, "category": ..., "target_scores": {attribute: {value: 1}}}), '
        "score it on --test, and write OUT/metrics.json, OUT/config.json, "
        "OUT/test_predictions.jsonl and the model in OUT/model.",
    )
    _train_arguments(train)
    train.set_defaults(func=_train)

    _register_apply(extract_sub)


def _train_arguments(train: argparse.ArgumentParser) -> None:
    """The flags of ``extract train``: one per :class:`~kgwb.text.extract.ExtractorConfig`
    field, then the output folder."""
    from kgwb.text.extract import (
        DEFAULT_CLI_AUGMENT,
        DEFAULT_CLI_ENSEMBLE,
        DEFAULT_CLI_REFIT,
        ExtractorConfig,
    )

    data = ("train", "test", "valid")
    files = train.add_argument_group("data and output")
    settings = [f.name for f in ExtractorConfig.cli_fields() if f.name not in data]
    ExtractorConfig.add_arguments(files, skip=settings)
    files.add_argument("--out", required=True, help="output folder")
    files.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the extractor already in --out (swapped in once the new one is complete)",
    )
    training = train.add_argument_group("training")
    ExtractorConfig.add_arguments(
        training,
        skip=data,
        ensemble=DEFAULT_CLI_ENSEMBLE,
        valid_fraction=0.1,
        refit=DEFAULT_CLI_REFIT,
        augment=DEFAULT_CLI_AUGMENT,
    )


def _register_apply(extract_sub: argparse._SubParsersAction) -> None:
    apply = extract_sub.add_parser(
        "apply",
        help="extract attribute values from titles with a fine-tuned model",
        description='Read JSON lines {"input": title, "category": ...} and write them back with '
        '"spans" (attribute, value, start, end, confidence) and "prediction" '
        "(the most confident value per attribute).",
    )
    apply.add_argument(
        "--model", required=True, help="folder written by `kgwb extract train` (OUT or OUT/model)"
    )
    apply.add_argument("--input", required=True, help="titles (JSON lines)")
    apply.add_argument("--out", required=True, help="output file (JSON lines)")
    apply.add_argument("--batch-size", type=int, default=64, help="titles per batch (default 64)")
    apply.add_argument("--device", default=None, help="cpu or cuda (default: cuda when present)")
    apply.add_argument(
        "--dtype",
        choices=("float32", "bfloat16", "auto"),
        default="auto",
        help="network precision (default auto: bfloat16 where the CPU/GPU runs it natively, "
        "about 2x faster there for about -0.15 micro-F1 on OA-Mine; else float32)",
    )
    apply.add_argument(
        "--engine",
        choices=("local", "ray"),
        default="local",
        help="local: this process (default); ray: Ray Data actors, the model loaded once per "
        "actor (needs pip install 'kgwb[scale]'), same output",
    )
    apply.add_argument(
        "--address", default=None, help="with --engine ray: a Ray cluster (default: local Ray)"
    )
    apply.add_argument(
        "--workers",
        type=int,
        default=None,
        help="with --engine ray: actors (default: one per GPU, else one per CPU)",
    )
    apply.set_defaults(func=_apply)


def _setup_logging() -> None:
    import logging

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")


def _train(args: argparse.Namespace) -> int:
    from kgwb.atomic import check_output_dir, check_output_not_input
    from kgwb.cli import print_json
    from kgwb.text.extract import RUN_MANIFESTS, ExtractorConfig, train_extractor

    check_output_not_input(args.out, [args.train, args.test, args.valid, args.model])
    check_output_dir(
        args.out, kind="extractor run", overwrite=args.overwrite, manifests=RUN_MANIFESTS
    )
    _setup_logging()
    result = train_extractor(ExtractorConfig.from_args(args), out_dir=args.out)
    metrics = result.metrics
    keys = (
        "micro_f1",
        "precision",
        "recall",
        "unit",
        "extractgpt_protocol",
        "train_seconds",
        "titles_per_second",
        "inference",
        "n_valid",
        "best_epoch",
        "seed",
        "model",
        "epochs",
    )
    print_json({"out": str(result.out_dir), **{k: metrics[k] for k in keys if k in metrics}})
    return 0


def _apply(args: argparse.Namespace) -> int:
    from kgwb.cli import print_json
    from kgwb.text.extract import apply_extractor

    result = apply_extractor(
        model_dir=args.model,
        input=args.input,
        out=args.out,
        batch_size=args.batch_size,
        device=args.device,
        dtype=args.dtype,
        engine=args.engine,
        address=args.address,
        workers=args.workers,
    )
    summary = result.to_dict()
    summary.pop("environment", None)
    print_json(summary)
    return 0
