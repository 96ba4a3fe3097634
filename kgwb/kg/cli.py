"""``kgwb kg ...``: build a product KG, query its graph store, export it."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from kgwb.errors import KgwbError


def register(sub: argparse._SubParsersAction) -> None:
    kg = sub.add_parser("kg", help="build, query and export the product knowledge graph")
    kg_sub = kg.add_subparsers(dest="kg_command", metavar="ACTION")
    kg_sub.required = True

    b = kg_sub.add_parser(
        "build", help="catalog + text extraction + entity resolution → KG + store"
    )
    _build_arguments(b)
    b.set_defaults(func=_build)

    q = kg_sub.add_parser("query", help="run Cypher against a built KG's store; prints JSON rows")
    q.add_argument("kg_dir", help="folder written by 'kgwb kg build' (or its kg/ folder)")
    q.add_argument("cypher")
    q.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="query parameter (repeatable); VALUE is JSON if it parses, else a string",
    )
    q.set_defaults(func=_query)

    e = kg_sub.add_parser("export", help="export a built KG")
    e.add_argument("kg_dir")
    e.add_argument("--format", required=True, choices=["neo4j", "rdf", "graphml", "recbole"])
    e.add_argument(
        "--out", required=True, help="output file (rdf, graphml) or folder (neo4j, recbole)"
    )
    e.set_defaults(func=_export)

    s = kg_sub.add_parser("stats", help="node/edge counts of a built KG as JSON")
    s.add_argument("kg_dir")
    s.set_defaults(func=_stats)

    from kgwb.language_cli import register_check

    register_check(kg_sub)


def _build_arguments(b: argparse.ArgumentParser) -> None:
    """The flags of ``kg build``: the data and output, then one per
    :class:`~kgwb.kg.build.KGBuildConfig` field."""
    from kgwb.data import FORMATS
    from kgwb.kg.build import KGBuildConfig

    b.add_argument("--dataset", required=True, help="a data source: path or sample:SIZE")
    b.add_argument(
        "--format", default=None, choices=FORMATS.names(), help="data format (guessed when omitted)"
    )
    b.add_argument("--out", required=True, help="output folder")
    b.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the KG already built in --out (tables and store are swapped in together,"
        " only once the new ones are complete)",
    )
    KGBuildConfig.add_arguments(b.add_argument_group("build"))


def kg_folder(path: str | Path) -> Path:
    """The saved KG inside a build folder (``DIR/kg``) or ``DIR`` itself."""
    p = Path(path)
    if (p / "kg" / "kg.json").is_file():
        return p / "kg"
    if (p / "kg.json").is_file():
        return p
    raise KgwbError(f"{p}: not a built KG (expected {p / 'kg' / 'kg.json'} or {p / 'kg.json'})")


def _build(args: argparse.Namespace) -> int:
    import logging

    from kgwb.atomic import check_output_dir, check_output_not_input
    from kgwb.cli import print_json
    from kgwb.data.stage import DataConfig
    from kgwb.kg.build import BUILD_MANIFEST, KGBuildConfig, build_kg

    check_output_not_input(args.out, [args.dataset, args.extract_model])
    check_output_dir(
        args.out, kind="KG build", overwrite=args.overwrite, manifests=(BUILD_MANIFEST,)
    )
    config = KGBuildConfig.from_args(args)
    ds = DataConfig(source=str(args.dataset), format=args.format, seed=config.seed).load()
    # progress on stderr: the extractor logs one line per training epoch
    logging.basicConfig(level=logging.INFO, format="kgwb: %(message)s", stream=sys.stderr)
    if config.extract_model == "distant":
        print(
            f"kgwb: building the KG of {ds.name}: fine-tuning the distant extractor "
            f"({config.extractor_epochs} epochs), then extraction and resolution",
            file=sys.stderr,
        )
    result = build_kg(config, dataset=ds, out_dir=args.out, overwrite=args.overwrite)
    for note in result.skipped.values():
        print(f"kgwb: {note}", file=sys.stderr)
    print_json({"out": str(result.out_dir), "store": str(result.store_path), **result.metrics})
    return 0


def _parse_param(text: str):
    import json

    name, sep, value = text.partition("=")
    if not sep or not name:
        raise KgwbError(f"--param {text!r}: expected NAME=VALUE")
    try:
        return name, json.loads(value)
    except json.JSONDecodeError:
        return name, value


def _query(args: argparse.Namespace) -> int:

    from kgwb.kg.store import GraphStore, default_store_path

    params = dict(_parse_param(p) for p in args.param)
    with GraphStore.open(default_store_path(kg_folder(args.kg_dir))) as store:
        df = store.query(args.cypher, params or None)
    print(df.to_json(orient="records", force_ascii=False, indent=2, default_handler=str))
    return 0


def _export(args: argparse.Namespace) -> int:
    from kgwb.atomic import check_output_not_input
    from kgwb.cli import print_json
    from kgwb.kg.export import export
    from kgwb.kg.model import KnowledgeGraph

    check_output_not_input(args.out, [args.kg_dir])
    kg = KnowledgeGraph.load(kg_folder(args.kg_dir))
    written = export(kg, args.format, args.out)
    print_json({"format": args.format, "written": [str(p) for p in written]})
    return 0


def _stats(args: argparse.Namespace) -> int:
    from kgwb.cli import print_json
    from kgwb.kg.model import KnowledgeGraph
    from kgwb.kg.quality import quality_report

    print_json(quality_report(KnowledgeGraph.load(kg_folder(args.kg_dir))))
    return 0
