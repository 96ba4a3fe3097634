"""``kgwb train``: train a recommender on a data source and write ``metrics.json`` + checkpoint."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    from kgwb.data import FORMATS

    # the registry is plain data, but importing kgwb.train.models pulls in torch: keep --help
    # fast by listing the names here and checking them against the registry in the tests
    names = ", ".join(MODEL_NAMES)
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
    p.add_argument("--model", default="lightgcn", metavar="NAME", help=f"one of: {names}")
    p.add_argument("--epochs", type=int, default=200, help="maximum epochs (default 200)")
    p.add_argument("--dim", type=int, default=64, help="embedding size (default 64)")
    p.add_argument("--layers", type=int, default=2, help="propagation layers (default 2)")
    p.add_argument(
        "--lr",
        type=float,
        default=0.01,
        help="Adam learning rate (default 0.01, the notebooks' value, chosen on the sample; "
        "1e-3 suits amazon-beauty)",
    )
    p.add_argument("--batch-size", type=int, default=2048, help="BPR batch size (default 2048)")
    p.add_argument("--reg", type=float, default=1e-4, help="L2 weight on batch embeddings")
    p.add_argument(
        "--patience", type=int, default=10, help="evaluations without a better valid Recall@20"
    )
    p.add_argument("--eval-every", type=int, default=1, help="validate every N epochs")
    p.add_argument("--device", default="auto", help="auto (cuda when available), cpu or cuda")
    p.add_argument("--seed", type=int, default=0, help="seed of training and sample data")
    p.add_argument("--out", required=True, help="output folder (metrics.json, checkpoints/)")
    p.add_argument(
        "--text-features",
        action="store_true",
        help="add item title embeddings from the default text encoder (same as NAME+text)",
    )
    p.add_argument(
        "--cold-items",
        type=float,
        default=0.0,
        metavar="F",
        help="cold-start protocol: hold out a seeded fraction F of the items with all their "
        "interactions (evaluated only); metrics.json adds test_warm and test_cold",
    )
    p.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a model option (repeatable; VALUE read as JSON when it parses), e.g. "
        "--option encoder=NAME_OR_PATH --option train_layers=1 for text-tower, "
        "--option id_dropout=0.3 for kg-inductive, --option neighbors=16 for kgat",
    )
    p.add_argument(
        "--sampler",
        choices=("full", "neighbors"),
        default="full",
        help="full: every step propagates over the whole graph (default, fastest on small "
        "graphs); neighbors: over the batch's sampled L-hop neighbourhood (linear epochs)",
    )
    p.add_argument(
        "--fanout",
        default="15,10",
        metavar="K1,K2",
        help="with --sampler neighbors: neighbours drawn per node at each hop (default 15,10)",
    )
    p.add_argument(
        "--nproc",
        type=int,
        default=1,
        help="data-parallel processes on this machine (DDP: gloo on CPU, NCCL on GPUs); "
        "across machines use torchrun ... -m kgwb train (see README)",
    )
    p.add_argument("--resume", action="store_true", help="continue the run saved in --out")
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the run already in --out (swapped in only once the new run is complete)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument(
        "--save-top-k",
        type=int,
        default=20,
        help="write the top-k recommendations of every user to recommendations.parquet (0: no)",
    )
    p.set_defaults(func=_train)


#: kept in sync with kgwb.train.models.model_names() (checked by tests/test_train_recommend.py)
MODEL_NAMES = (
    "bprmf",
    "bprmf+text",
    "kg-inductive",
    "kg-inductive+text",
    "kgat",
    "kgat+text",
    "lightgcn",
    "lightgcn+text",
    "pop",
    "text-tower",
)


def _train(args: argparse.Namespace) -> int:
    import os

    from kgwb.atomic import check_output_dir, check_output_not_input
    from kgwb.train.recommend import RUN_MANIFESTS

    if os.environ.get("RANK", "0") == "0":  # under torchrun, rank 0 alone checks (and writes)
        check_output_not_input(args.out, [args.dataset])
        check_output_dir(
            args.out,
            kind="training run",
            overwrite=args.overwrite,
            resume=args.resume,
            manifests=RUN_MANIFESTS,
        )
    if args.nproc > 1:
        from kgwb.train.distributed import launch

        launch(_train_rank, args.nproc, args)
        return 0
    return _train_rank(args)


def _train_rank(args: argparse.Namespace) -> int:
    from kgwb.atomic import write_with
    from kgwb.cli import print_json
    from kgwb.data import load_dataset
    from kgwb.train.distributed import context_from_env
    from kgwb.train.recommend import train_recommender
    from kgwb.train.sampler import parse_fanouts

    fanouts = parse_fanouts(args.fanout, args.layers)  # a bad value fails before any work
    ddp = context_from_env(args.device)
    options = {"seed": args.seed} if str(args.dataset).startswith("sample") else {}
    dataset = load_dataset(args.dataset, format=args.format, **options)
    model = args.model
    if args.text_features and not model.endswith("+text"):
        model += "+text"
    result = train_recommender(
        dataset=dataset,
        model=model,
        epochs=args.epochs,
        dim=args.dim,
        layers=args.layers,
        lr=args.lr,
        batch_size=args.batch_size,
        reg=args.reg,
        device=args.device,
        seed=args.seed,
        out_dir=args.out,
        eval_every=args.eval_every,
        patience=args.patience,
        resume=args.resume,
        overwrite=args.overwrite,
        progress=not args.no_progress,
        cold_items=args.cold_items,
        model_options=_model_options(args.option),
        sampler=args.sampler,
        fanouts=fanouts,
        distributed=ddp,
    )
    if result is None:  # a rank other than 0 of a distributed run: rank 0 reports
        return 0
    if args.save_top_k and result.out_dir is not None:
        # what `kgwb recommend --run DIR` serves: top-k unseen items of every user
        users = result.data.user_ids
        parts = [
            result.recommend(users[i : i + 4096], k=args.save_top_k)
            for i in range(0, len(users), 4096)
        ]
        import pandas as pd

        top = pd.concat(parts, ignore_index=True)
        write_with(
            result.out_dir / "recommendations.parquet", lambda p: top.to_parquet(p, index=False)
        )
    if result.out_dir is not None and "title" in dataset.items.columns:
        # what `kgwb recommend --run DIR` names the items with
        dataset.items[["item_id", "title"]].astype({"item_id": str}).to_parquet(
            result.out_dir / "item_titles.parquet", index=False
        )
    print_json({"out": str(result.out_dir), **result.metrics})
    return 0


def _model_options(pairs: list[str]) -> dict | None:
    """``["train_layers=1", "encoder=bert-base-uncased"]`` → ``{"train_layers": 1, ...}``."""
    import json

    options = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise SystemExit(f"kgwb train: --option {pair!r} is not KEY=VALUE")
        try:
            options[key] = json.loads(value)
        except json.JSONDecodeError:
            options[key] = value
    return options or None
