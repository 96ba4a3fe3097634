"""Benchmark the attribute-value extractor on OA-Mine: slot micro-F1, training time, and inference
speed of :func:`kgwb.text.extract` against the naive ``transformers.pipeline`` called title by
title on the same fine-tuned model and the same 491 test titles.

    python benchmarks/bench_extract.py                      # fine-tune with the defaults, then time
    python benchmarks/bench_extract.py --model OUT/model    # time an extractor trained before
    python benchmarks/bench_extract.py --epochs 2 --threads 1 --out reports/bench_extract.json

Needs ``../shared/datasets/oa-mine`` (see ``kgwb.paths.shared_datasets_dir``); skips with a
message when it is absent.  The pipeline cannot pass kgwb's (category, title) pair, so it is
timed twice: on the title alone (shorter inputs than kgwb's, which favours it) and on
``"category [SEP] title"`` (the same tokens kgwb's model sees).  Training can hold out
``--valid-fraction`` of train.jsonl to pick the best epoch, so test.jsonl is only scored once.
Each side gets ``--repeats`` interleaved passes and its best pass counts.  Where the CPU runs
bfloat16 natively (AVX512-BF16 / AMX), kgwb's extract is also timed (and scored) with a
bfloat16 copy of the same weights (``dtype="bfloat16"``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--model", default=None, help="a fine-tuned extractor folder; trained if omitted"
    )
    p.add_argument(
        "--epochs", type=int, default=None, help="epochs when training (default: kgwb's)"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--valid-fraction",
        type=float,
        default=0.1,
        help="share of train.jsonl held out to pick the best epoch (default 0.1; 0: last epoch)",
    )
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    p.add_argument("--batch-size", type=int, default=64, help="batch size of kgwb's extract")
    p.add_argument("--repeats", type=int, default=3, help="timed passes of each (best one counts)")
    p.add_argument("--out", default=None, help="also write the results as JSON here")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    from kgwb.paths import shared_datasets_dir

    root = shared_datasets_dir()
    if root is None or not (root / "oa-mine" / "test.jsonl").is_file():
        print("skipped: ../shared/datasets/oa-mine is absent (set KGWB_SHARED_DATASETS)")
        return 0
    folder = root / "oa-mine"

    import torch
    from transformers import pipeline

    from kgwb.text.extract import (
        evaluate_extractor,
        load_extractor,
        read_labeled_jsonl,
        train_extractor,
    )

    torch.set_num_threads(args.threads)
    results: dict = {"threads": args.threads, "device": "cpu"}
    train = read_labeled_jsonl(folder / "train.jsonl")
    test = read_labeled_jsonl(folder / "test.jsonl")
    if args.model is None:
        model_dir = Path(tempfile.mkdtemp(prefix="kgwb-bench-extract-"))
        options = {"epochs": args.epochs} if args.epochs else {}
        trained = train_extractor(
            train=train,
            test=test,
            out_dir=model_dir,
            seed=args.seed,
            device="cpu",
            valid_fraction=args.valid_fraction,
            **options,
        )
        metrics = trained.metrics
        results["training"] = {
            k: metrics[k]
            for k in (
                "micro_f1",
                "precision",
                "recall",
                "unit",
                "extractgpt_protocol",
                "train_seconds",
                "epochs",
                "n_train",
                "n_valid",
                "best_epoch",
                "valid_micro_f1_per_epoch",
                "seed",
                "config",
            )
        }
        extractor = trained.extractor
        print(
            f"trained in {metrics['train_seconds']:.0f} s on {metrics['n_train']} titles "
            f"(best epoch {metrics['best_epoch']} of {metrics['epochs']} on {metrics['n_valid']} "
            f"validation titles): test micro-F1 {metrics['micro_f1']:.2f} "
            f"P {metrics['precision']:.2f} R {metrics['recall']:.2f} (percent; saved in {model_dir})"
        )
    else:
        extractor = load_extractor(args.model, device="cpu", dtype="float32")
        scores = evaluate_extractor(model=extractor, test=test, train=train).metrics
        results["evaluation"] = {k: scores[k] for k in ("micro_f1", "precision", "recall", "unit")}
        print(
            f"micro-F1 {scores['micro_f1']:.2f} P {scores['precision']:.2f} R {scores['recall']:.2f}"
        )

    titles = [e.text for e in test]
    categories = [e.category for e in test]
    sep = extractor.tokenizer.sep_token or "[SEP]"
    pairs = [f"{c} {sep} {t}" for c, t in zip(categories, titles)]

    naive = pipeline(
        "token-classification", model=extractor.model, tokenizer=extractor.tokenizer, device="cpu"
    )

    def naive_pass(texts) -> float:
        started = time.perf_counter()
        for text in texts:
            naive(text)
        return time.perf_counter() - started

    def kgwb_pass(model) -> float:
        started = time.perf_counter()
        model.extract(titles, categories, batch_size=args.batch_size)
        return time.perf_counter() - started

    # bfloat16 copy of the same fine-tuned weights, where the CPU runs bfloat16 natively
    from kgwb.text.extract import Extractor, resolve_dtype

    fast = None
    if resolve_dtype("auto", "cpu") == "bfloat16":
        import copy

        fast = Extractor(
            copy.deepcopy(extractor.model),
            extractor.tokenizer,
            extractor.settings,
            device="cpu",
            dtype="bfloat16",
        )
    for title in titles[:10]:  # warm-up
        naive(title)
    for model in (extractor, fast):
        if model is not None:
            model.extract(titles[:64], categories[:64], batch_size=args.batch_size)
    # interleaved passes, best of each: the machine may be shared, and load comes and goes
    times: dict[str, list[float]] = {"naive": [], "naive_pair": [], "float32": [], "bfloat16": []}
    for _ in range(args.repeats):
        times["naive"].append(naive_pass(titles))
        times["naive_pair"].append(naive_pass(pairs))
        times["float32"].append(kgwb_pass(extractor))
        if fast is not None:
            times["bfloat16"].append(kgwb_pass(fast))
    best = {k: min(v) for k, v in times.items() if v}
    n = len(titles)
    inference = {
        "titles": n,
        "repeats": args.repeats,
        "kgwb_batch_size": args.batch_size,
        "naive_pipeline_titles_per_second": round(n / best["naive"], 1),
        "naive_pipeline_with_category_titles_per_second": round(n / best["naive_pair"], 1),
        "kgwb_extract_titles_per_second": round(n / best["float32"], 1),
        "speedup": round(best["naive"] / best["float32"], 2),
        "speedup_vs_naive_with_category": round(best["naive_pair"] / best["float32"], 2),
    }
    print(f"naive pipeline (title alone, float32):      {n / best['naive']:7.1f} titles/s")
    print(f"naive pipeline (category [SEP] title):      {n / best['naive_pair']:7.1f} titles/s")
    print(
        f"kgwb extract (batch {args.batch_size}, float32):        {n / best['float32']:7.1f} titles/s"
        f"  speed-up {inference['speedup']:.2f}x (title alone), "
        f"{inference['speedup_vs_naive_with_category']:.2f}x (same input)"
    )
    if fast is not None:
        scores = evaluate_extractor(model=fast, test=test, train=train).metrics
        inference["kgwb_extract_bfloat16_titles_per_second"] = round(n / best["bfloat16"], 1)
        inference["speedup_bfloat16"] = round(best["naive"] / best["bfloat16"], 2)
        inference["speedup_bfloat16_vs_naive_with_category"] = round(
            best["naive_pair"] / best["bfloat16"], 2
        )
        inference["bfloat16_micro_f1"] = scores["micro_f1"]
        print(
            f"kgwb extract (batch {args.batch_size}, bfloat16):       {n / best['bfloat16']:7.1f} titles/s"
            f"  speed-up {inference['speedup_bfloat16']:.2f}x (title alone), "
            f"{inference['speedup_bfloat16_vs_naive_with_category']:.2f}x (same input)"
            f"  (micro-F1 {scores['micro_f1']:.2f})"
        )
    results["inference"] = inference
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(results, indent=2, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
