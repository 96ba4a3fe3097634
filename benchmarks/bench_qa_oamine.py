"""Grounded Q&A on OA-Mine test titles, answered through a fine-tuned extractor.

For every test title and every attribute of its category's schema, the question
"What is the <attribute> of <title>?" is answered by :func:`kgwb.qa.ask_text` (the extractor's
spans are the facts).  A question whose attribute has a gold value is right when the answer
equals it (the slot metric's exact match); one without is right when the answer is
"not in the KG".  ``--brand-only`` asks only "What is the brand of <title>?".

    python benchmarks/bench_qa_oamine.py --model runs/extractor [--brand-only]

Prints one JSON object (accuracy, supported accuracy, abstentions, counts, seconds).
"""

from __future__ import annotations

import argparse
import json
import time

from kgwb.paths import shared_datasets_dir
from kgwb.qa import NOT_IN_KG, AttributeMatcher, ask_text
from kgwb.text.extract import load_extractor, read_labeled_jsonl
from kgwb.text.metrics import category_schema


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, help="folder written by `kgwb extract train`")
    parser.add_argument("--test", default=None, help="OA-Mine test.jsonl (default: shared)")
    parser.add_argument("--train", default=None, help="OA-Mine train.jsonl (for the schema)")
    parser.add_argument("--brand-only", action="store_true")
    parser.add_argument("--dtype", default="float32")
    args = parser.parse_args()
    shared = shared_datasets_dir()
    test = read_labeled_jsonl(args.test or shared / "oa-mine" / "test.jsonl")
    train = read_labeled_jsonl(args.train or shared / "oa-mine" / "train.jsonl")
    schema = category_schema([e.category for e in train + test], [e.targets for e in train + test])
    extractor = load_extractor(args.model, dtype=args.dtype)
    matcher = AttributeMatcher(sorted({a for attrs in schema.values() for a in attrs}))
    right = supported = abstained = unsupported = invented = 0
    started = time.perf_counter()
    all_spans = extractor.extract([e.text for e in test], [e.category for e in test])
    for example, spans in zip(test, all_spans):
        attributes = ["Brand"] if args.brand_only else schema.get(example.category, [])
        for attribute in attributes:
            gold = [v.strip() for v in example.targets.get(attribute, []) if v.strip()]
            if args.brand_only and not gold:
                continue
            question = f"What is the {attribute.lower()} of {example.text}?"
            answer = ask_text(
                example.text,
                question,
                extractor=extractor,
                category=example.category,
                matcher=matcher,
                spans=spans,
            )
            if gold:
                supported += 1
                right += answer.found and answer.answer.strip() in gold
            else:
                unsupported += 1
                abstained += answer.answer == NOT_IN_KG
                invented += answer.found
    seconds = time.perf_counter() - started
    total = supported + unsupported
    print(
        json.dumps(
            {
                "questions": total,
                "accuracy": round((right + abstained) / total, 4) if total else None,
                "supported_accuracy": round(right / supported, 4) if supported else None,
                "unsupported_abstained": round(abstained / unsupported, 4) if unsupported else None,
                "supported": supported,
                "unsupported": unsupported,
                "answers_for_unsupported": invented,
                "seconds": round(seconds, 1),
                "brand_only": args.brand_only,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
