"""``kgwb train``: train a recommender on a data source and write ``metrics.json`` + checkpoint."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    from kgwb.data import FORMATS
    from kgwb.train.config import RecommenderConfig
    from kgwb.train.registry import RECOMMENDERS

    # the registry's entries are lazy: listing the names imports no model (nor torch)
    names = ", ".join(RECOMMENDERS.names())
    p = sub.add_parser(
        "train",
        help="train a recommender (pop, bprmf, lightgcn, kgat) and evaluate it by full ranking",
        description=f"Train a recommender and evaluate it by full ranking. Models: {names}.",
    )
    p.add_argument(
        "--dataset",
        required=True,
        help="a file or folder (kgat, recbole, saved kgwb dataset) or sample:SIZE",
    )
    p.add_argument("--format", choices=sorted(FORMATS), default=None, help="guessed when omitted")
    p.add_argument("--out", required=True, help="output folder (metrics.json, checkpoints/)")
    # one flag per RecommenderConfig field; the CLI's lr and top-k defaults differ from the
    # function's (the notebooks' learning rate; `kgwb recommend --run` serves the top-k)
    lr_help = (
        "Adam learning rate: the notebooks' value, chosen on the sample; 1e-3 suits "
        "amazon-beauty"
    )
    RecommenderConfig.add_arguments(p, helps={"lr": lr_help}, lr=0.01, save_top_k=20)
    p.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a model option (repeatable; VALUE read as JSON when it parses), e.g. "
        "--option encoder=NAME_OR_PATH --option train_layers=1 for text-tower, "
        "--option id_dropout=0.3 for kg-inductive, --option neighbors=16 for kgat",
    )
    p.add_argument("--resume", action="store_true", help="continue the run saved in --out")
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the run already in --out (swapped in only once the new run is complete)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_train)


def _train(args: argparse.Namespace) -> int:
    import os

    from kgwb.atomic import check_output_dir, check_output_not_input
    from kgwb.train.config import RecommenderConfig
    from kgwb.train.recommend import RUN_MANIFESTS

    # a bad value (model, fan-out, ...) fails before any work
    args.config = RecommenderConfig.from_args(args, model_options=_model_options(args.option))
    if os.environ.get("RANK", "0") == "0":  # under torchrun, rank 0 alone checks (and writes)
        check_output_not_input(args.out, [args.dataset])
        check_output_dir(
            args.out,
            kind="training run",
            overwrite=args.overwrite,
            resume=args.resume,
            manifests=RUN_MANIFESTS,
        )
    if args.config.nproc > 1:
        from kgwb.train.distributed import launch

        launch(_train_rank, args.config.nproc, args)
        return 0
    return _train_rank(args)


def _train_rank(args: argparse.Namespace) -> int:
    from kgwb.cli import print_json
    from kgwb.data import load_dataset
    from kgwb.train.distributed import context_from_env
    from kgwb.train.recommend import train_recommender

    config = args.config
    ddp = context_from_env(config.device)
    options = {"seed": config.seed} if str(args.dataset).startswith("sample") else {}
    dataset = load_dataset(args.dataset, format=args.format, **options)
    result = train_recommender(
        config,
        dataset=dataset,
        out_dir=args.out,
        resume=args.resume,
        overwrite=args.overwrite,
        progress=not args.no_progress,
        distributed=ddp,
    )
    if result is None:  # a rank other than 0 of a distributed run: rank 0 reports
        return 0
    if result.out_dir is not None and "title" in dataset.items.columns:
        # what `kgwb recommend --run DIR` names the items with
        dataset.items[["item_id", "title"]].astype({"item_id": str}).to_parquet(
            result.out_dir / "item_titles.parquet", index=False
        )
    print_json({"out": str(result.out_dir), **result.metrics})
    return 0


def _model_options(pairs: list[str], flag: str = "--option", command: str = "train") -> dict:
    """``["train_layers=1", "encoder=bert-base-uncased"]`` → ``{"train_layers": 1, ...}``."""
    import json

    options = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise SystemExit(f"kgwb {command}: {flag} {pair!r} is not KEY=VALUE")
        try:
            options[key] = json.loads(value)
        except json.JSONDecodeError:
            options[key] = value
    return options
