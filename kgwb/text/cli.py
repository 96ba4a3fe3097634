"""``kgwb extract ...``: fine-tune the attribute-value extractor, or apply a fine-tuned one.

Only argparse is imported at module level; torch and transformers load inside the commands.
"""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    from kgwb.text.encoder import DEFAULT_ENCODER

    # the defaults are repeated here (not imported from kgwb.text.extract) only in help texts;
    # None means "the entry point's default"
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
    train.add_argument("--train", required=True, help="labelled titles (JSON lines)")
    train.add_argument("--test", default=None, help="labelled titles to score on (JSON lines)")
    train.add_argument("--out", required=True, help="output folder")
    train.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the extractor already in --out (swapped in once the new one is complete)",
    )
    train.add_argument(
        "--model",
        default=None,
        help=f"encoder to start from: a Hugging Face name or local folder (default: the bundled {DEFAULT_ENCODER})",
    )
    train.add_argument("--epochs", type=int, default=None, help="training epochs (default 15)")
    train.add_argument("--batch-size", type=int, default=None, help="titles per batch (default 32)")
    train.add_argument("--lr", type=float, default=None, help="peak learning rate (default 4e-4)")
    train.add_argument("--max-length", type=int, default=None, help="tokens per input (default 64)")
    train.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    train.add_argument(
        "--label-scheme",
        choices=("attribute", "category_attribute"),
        default=None,
        help="one label per attribute name (default) or per category-attribute pair",
    )
    train.add_argument(
        "--valid",
        default=None,
        help="labelled titles for picking the best epoch (JSON lines; default: none)",
    )
    train.add_argument(
        "--valid-fraction",
        type=float,
        default=0.1,
        help="hold out this share of each category's --train titles (each ensemble member its "
        "own seeded share) to pick the best epoch (default 0.1; 0: no validation, keep the "
        "last epoch)",
    )
    train.add_argument(
        "--no-average-weights",
        dest="average_weights",
        action="store_false",
        help="with validation, do not try the average of the second half's epoch weights as "
        "a candidate next to the single epochs (default: keep whichever is best on validation)",
    )
    train.add_argument(
        "--ensemble",
        type=int,
        default=3,
        help="train this many models (seeds SEED, SEED+1, ...) and average their predictions "
        "(default 3: about +3 slot micro-F1 on OA-Mine for 3x the time; 1 = one model)",
    )
    train.add_argument("--device", default=None, help="cpu or cuda (default: cuda when present)")
    train.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    train.set_defaults(func=_train)

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
    from kgwb.text.extract import RUN_MANIFESTS, train_extractor

    check_output_not_input(args.out, [args.train, args.test, args.valid, args.model])
    check_output_dir(
        args.out, kind="extractor run", overwrite=args.overwrite, manifests=RUN_MANIFESTS
    )
    _setup_logging()
    options = {
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "max_length": args.max_length,
        "label_scheme": args.label_scheme,
        "num_threads": args.threads,
        "ensemble": args.ensemble,
    }
    result = train_extractor(
        train=args.train,
        test=args.test,
        out_dir=args.out,
        model=args.model,
        seed=args.seed,
        device=args.device,
        valid=args.valid,
        valid_fraction=args.valid_fraction,
        average_weights=args.average_weights,
        **{k: v for k, v in options.items() if v is not None},
    )
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
