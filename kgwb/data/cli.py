"""``kgwb data ...``: summarise a data source, or convert it to kgwb's Parquet layout."""

from __future__ import annotations

import argparse


def _add_source_args(p: argparse.ArgumentParser) -> None:
    """The source flags: one per :class:`~kgwb.data.stage.DataConfig` field."""
    from kgwb.data.stage import DataConfig

    DataConfig.add_arguments(p)


def register(sub: argparse._SubParsersAction) -> None:
    data = sub.add_parser("data", help="load, summarise and convert data sources")
    data_sub = data.add_subparsers(dest="data_command", metavar="ACTION")
    data_sub.required = True

    summary = data_sub.add_parser(
        "summary",
        help="print one JSON object with users, items, interactions, KG and rejected rows",
    )
    _add_source_args(summary)
    summary.set_defaults(func=_summary)

    convert = data_sub.add_parser("convert", help="load a source and save it as kgwb Parquet")
    _add_source_args(convert)
    convert.add_argument("--out", required=True, help="output folder")
    convert.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the dataset already in --out (swapped in only once the new one is complete)",
    )
    convert.set_defaults(func=_convert)


def _load(args: argparse.Namespace):
    from kgwb.data.stage import DataConfig

    return DataConfig.from_args(args).load()


def _summary(args: argparse.Namespace) -> int:
    from kgwb.cli import print_json

    print_json(_load(args).summary())
    return 0


def _convert(args: argparse.Namespace) -> int:
    from kgwb.atomic import check_output_dir, check_output_not_input
    from kgwb.cli import print_json

    check_output_not_input(args.out, [args.source])
    check_output_dir(
        args.out, kind="dataset", overwrite=args.overwrite, manifests=("dataset.json",)
    )
    ds = _load(args)
    path = ds.save(args.out, overwrite=args.overwrite)
    print_json({"saved": str(path), **ds.summary()})
    return 0
