"""``kgwb kge``: train a KG embedding model with PyKEEN and write its metrics and embeddings.

Calls :func:`kgwb.train.kge.train_kge`, the same entry point the notebooks use; PyKEEN and torch
are imported only when the command runs.
"""

from __future__ import annotations

import argparse

#: mirrors kgwb.train.kge.MODELS / BUNDLED_DATASETS (not imported, so `kgwb --help` stays fast)
_MODEL_NAMES = "transe, distmult, complex, rotate"
_BUNDLED = "nations, umls, kinships"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "kge",
        help="train a KG embedding model (PyKEEN) and report filtered MRR / Hits@k",
        description="Train TransE, DistMult, ComplEx or RotatE on a set of triples and write "
        "DIR/metrics.json (mrr, hits@1, hits@3, hits@10, ...), config.json, "
        "entity_embeddings.parquet and PyKEEN's own output under DIR/pykeen.",
    )
    p.add_argument(
        "--triples",
        required=True,
        metavar="SOURCE",
        help="a triples file (head<TAB>relation<TAB>tail), a `kgwb kg build --out` folder (or its "
        "kg/ subfolder), a saved kgwb dataset folder, a "
        f"KGAT folder, or a bundled PyKEEN dataset ({_BUNDLED})",
    )
    p.add_argument("--model", default="transe", help=f"one of {_MODEL_NAMES} (default transe)")
    p.add_argument("--epochs", type=int, default=100, help="maximum epochs (default 100)")
    p.add_argument("--dim", type=int, default=64, help="embedding dimension (default 64)")
    p.add_argument("--lr", type=float, default=0.01, help="Adam learning rate (default 0.01)")
    p.add_argument("--batch-size", type=int, default=256, help="training batch size (default 256)")
    p.add_argument(
        "--negatives", type=int, default=4, help="negatives sampled per positive (default 4)"
    )
    p.add_argument("--device", default="auto", help="auto (default), cpu or cuda")
    p.add_argument("--seed", type=int, default=0, help="random seed of split and training")
    p.add_argument(
        "--validation", type=float, default=0.1, help="validation fraction (default 0.1)"
    )
    p.add_argument("--test", type=float, default=0.1, help="test fraction (default 0.1)")
    p.add_argument(
        "--no-early-stopping",
        dest="early_stopping",
        action="store_false",
        help="train all epochs instead of stopping when validation MRR stalls",
    )
    p.add_argument(
        "--sources",
        default=None,
        help="for a kgwb KG: comma-separated edge sources to keep (e.g. catalog,extracted)",
    )
    p.add_argument(
        "--drop-reverse-leaks",
        action="store_true",
        help="remove test/validation triples whose reverse pair is in train (FB15k-237 style); "
        "metrics.json counts them either way (test_reverse_in_train)",
    )
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the run already in --out (swapped in once the new run is complete)",
    )
    p.set_defaults(func=_kge)


def _kge(args: argparse.Namespace) -> int:
    from kgwb.atomic import check_output_dir, check_output_not_input
    from kgwb.cli import print_json
    from kgwb.train.kge import train_kge

    check_output_not_input(args.out, [args.triples])
    check_output_dir(
        args.out, kind="KG embedding run", overwrite=args.overwrite, manifests=("metrics.json",)
    )

    sources = (
        tuple(s.strip() for s in args.sources.split(",") if s.strip()) if args.sources else None
    )
    result = train_kge(
        triples=args.triples,
        model=args.model,
        dim=args.dim,
        epochs=args.epochs,
        lr=args.lr,
        batch_size=args.batch_size,
        negatives=args.negatives,
        seed=args.seed,
        device=args.device,
        validation=args.validation,
        test=args.test,
        early_stopping=args.early_stopping,
        sources=sources,
        drop_reverse_leaks=args.drop_reverse_leaks,
        out_dir=args.out,
    )
    print_json(result.metrics)
    return 0
