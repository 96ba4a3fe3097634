"""``kgwb kge``: train a KG embedding model with PyKEEN and write its metrics and embeddings.

Calls :func:`kgwb.train.kge.train_kge`, the same entry point the notebooks use; the flags
derive from :class:`~kgwb.train.config.KGEConfig`.  PyKEEN and torch are imported only when
the command runs (or ``kgwb kge --help`` lists PyKEEN's models).
"""

from __future__ import annotations

import argparse


class _PyKEENModels:
    """PyKEEN's model names, looked up only when ``kgwb kge --help`` is printed (importing
    PyKEEN takes seconds, and every other command builds this parser too)."""

    def __str__(self) -> str:
        try:
            from kgwb.train.kge import kge_models

            return ", ".join(kge_models().names())
        except ImportError:  # a minimal install: the command itself says what to install
            return "(PyKEEN is not installed)"


def register(sub: argparse._SubParsersAction) -> None:
    from kgwb.train.config import KGE_TESTED, KGEConfig
    from kgwb.train.kge import BUNDLED_DATASETS

    tested = ", ".join(KGE_TESTED)
    p = sub.add_parser(
        "kge",
        help="train a KG embedding model (PyKEEN) and report filtered MRR / Hits@k",
        description="Train a PyKEEN model (TransE, DistMult, ComplEx, RotatE or any other of "
        "PyKEEN's) on a set of triples and write DIR/metrics.json (mrr, hits@1, hits@3, "
        "hits@10, ...), config.json, entity_embeddings.parquet and PyKEEN's own output under "
        "DIR/pykeen.",
    )
    p.add_argument(
        "--triples",
        required=True,
        metavar="SOURCE",
        help="a triples file (head<TAB>relation<TAB>tail), a `kgwb kg build --out` folder (or its "
        "kg/ subfolder), a saved kgwb dataset folder, a "
        f"KGAT folder, or a bundled PyKEEN dataset ({', '.join(BUNDLED_DATASETS)})",
    )
    model_help = f"a PyKEEN model; tested: {tested}; all: %(models)s"
    KGEConfig.add_arguments(p, helps={"model": model_help})
    for action in p._actions:  # the %(models)s of --model's help, filled when help is printed
        if action.dest == "model":
            action.models = _PyKEENModels()
    p.add_argument(
        "--model-kwarg",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a keyword argument of the PyKEEN model class (repeatable; VALUE read as JSON "
        "when it parses), e.g. --model-kwarg scoring_fct_norm=2 for transe",
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
    from kgwb.train.cli import _model_options
    from kgwb.train.config import KGEConfig
    from kgwb.train.kge import train_kge

    check_output_not_input(args.out, [args.triples])
    check_output_dir(
        args.out, kind="KG embedding run", overwrite=args.overwrite, manifests=("metrics.json",)
    )
    kwargs = _model_options(args.model_kwarg, flag="--model-kwarg", command="kge")
    config = KGEConfig.from_args(args, model_kwargs=kwargs)
    result = train_kge(config, triples=args.triples, out_dir=args.out)
    print_json(result.metrics)
    return 0
