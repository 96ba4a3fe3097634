"""``kgwb kg check``, ``kgwb ask`` and ``kgwb describe``: language models over a built KG.

Only argparse is imported when the parser is built; each command imports what it needs.
"""

from __future__ import annotations

import argparse


def register_check(kg_sub: argparse._SubParsersAction) -> None:
    """Add ``check`` to the ``kgwb kg`` actions."""
    from kgwb.kg.check import CheckConfig

    c = kg_sub.add_parser(
        "check",
        help="catalog consistency: attribute values in item text vs the catalog",
        description="Extract attribute values from each item's text fields with the KG's "
        "extractor and report the items whose catalog value of an attribute disagrees with "
        "every value the text states (after normalising case, units and synonyms). "
        "Prints the summary as JSON; --out writes conflicts.csv, conflicts.json and check.json.",
    )
    c.add_argument("kg_dir", help="folder written by 'kgwb kg build'")
    c.add_argument(
        "--dataset",
        default=None,
        help="data source with the item texts (default: the one the KG was built from, when it "
        "can be reopened; titles alone come from the KG)",
    )
    c.add_argument(
        "--extract-model",
        default=None,
        help="extractor folder (default: the one 'kgwb kg build' trained, DIR/extractor)",
    )
    CheckConfig.add_arguments(c.add_argument_group("check"))
    c.add_argument("--limit", type=int, default=20, help="conflict rows to print (default 20)")
    c.add_argument("--out", default=None, help="folder for conflicts.csv/json and check.json")
    c.set_defaults(func=_check)


def register(sub: argparse._SubParsersAction) -> None:
    from kgwb.qa import QAConfig
    from kgwb.text.describe import DescribeConfig

    a = sub.add_parser(
        "ask",
        help="answer a product question from the KG, with evidence",
        description="Find the item (--item, a title quoted in the question, or semantic search), "
        "map the question to an attribute and answer with the KG's fact and its evidence; "
        "prints 'not in the KG' when no fact supports an answer.",
    )
    a.add_argument("kg_dir", help="folder written by 'kgwb kg build'")
    a.add_argument("question", help="the question (plain text)")
    a.add_argument("--item", default=None, help="item id the question is about")
    QAConfig.add_arguments(a)
    a.set_defaults(func=_ask)

    d = sub.add_parser(
        "describe",
        help="write a fact-checked product description from the KG",
        description="Write a description of ITEM_ID from its KG facts (template by default, or "
        "any Hugging Face seq2seq/causal model) and fact-check it against the KG.  "
        "'kgwb describe train KG_DIR --model M --out DIR' fine-tunes M on catalog "
        "(facts -> description) pairs.",
    )
    d.add_argument("kg_dir", help="folder written by 'kgwb kg build' (or 'train', see above)")
    d.add_argument("item_id", nargs="+", help="item id(s); with 'train' first: the KG folder")
    DescribeConfig.add_arguments(d, skip=("drop_unsupported",))
    d.add_argument("--keep-unsupported", action="store_true", help="do not drop sentences")
    d.add_argument("--dataset", default=None, help="(train) data source with descriptions")
    d.add_argument("--epochs", type=int, default=3, help="(train) epochs (default 3)")
    d.add_argument("--max-items", type=int, default=None, help="(train) at most this many pairs")
    d.add_argument("--seed", type=int, default=0, help="(train) random seed")
    d.add_argument("--out", default=None, help="(train: required) output folder")
    d.set_defaults(func=_describe)


def _check(args: argparse.Namespace) -> int:
    import json

    from kgwb.cli import print_json
    from kgwb.kg.check import CheckConfig, run_check

    result = run_check(
        args.kg_dir,
        dataset=args.dataset,
        extract_model=args.extract_model,
        config=CheckConfig.from_args(args),
    )
    if args.out:
        result.save(args.out)
    rows = json.loads(
        result.conflicts.head(args.limit).to_json(orient="records", force_ascii=False)
    )
    print_json({**result.to_dict(), "out": args.out, "first_conflicts": rows})
    return 0


def _ask(args: argparse.Namespace) -> int:
    from kgwb.cli import print_json
    from kgwb.qa import QAConfig, ask

    config = QAConfig.from_args(args)
    answer = ask(args.kg_dir, args.question, item=args.item, k=config.k, config=config)
    print_json(answer.to_dict())
    return 0


def _describe(args: argparse.Namespace) -> int:
    from kgwb.cli import print_json
    from kgwb.errors import KgwbError
    from kgwb.kg.check import build_folder, dataset_source, kg_of
    from kgwb.kg.facts import ValueMatcher

    if args.kg_dir == "train":
        from kgwb.data import load_dataset
        from kgwb.text.describe import WriterTrainConfig, description_pairs, train_writer

        if len(args.item_id) != 1 or not args.out or args.model == "template":
            raise KgwbError("usage: kgwb describe train KG_DIR --model NAME_OR_PATH --out DIR")
        build = build_folder(args.item_id[0])
        kg = kg_of(build)
        source = args.dataset or dataset_source(kg)
        if source is None:
            raise KgwbError(f"{build}: pass --dataset SOURCE (the items with their descriptions)")
        pairs = description_pairs(kg, load_dataset(source).items)
        config = WriterTrainConfig(
            model=args.model, epochs=args.epochs, seed=args.seed, max_items=args.max_items
        )
        print_json({"out": args.out, **train_writer(pairs=pairs, config=config, out_dir=args.out)})
        return 0
    from kgwb.text.describe import DescribeConfig, describe_items

    build = build_folder(args.kg_dir)
    result = describe_items(
        kg=kg_of(build),
        item_ids=args.item_id,
        config=DescribeConfig.from_args(args, drop_unsupported=not args.keep_unsupported),
        matcher=ValueMatcher.from_build(build),
    )
    rows = result.descriptions.to_dict(orient="records")
    print_json({"metrics": result.metrics, "descriptions": rows})
    return 0
