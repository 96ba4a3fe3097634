"""Time and memory of the sample generator per size: ``python benchmarks/bench_generator.py``.

Each size runs in a fresh Python process so that its peak resident memory (``ru_maxrss``) is its
own; the figure includes the interpreter with numpy and pandas loaded (printed as ``base``).
Target: ``large`` (1M interactions) in under 60 s and under 2 GB on 2 CPU cores.

    python benchmarks/bench_generator.py                 # tiny small medium large
    python benchmarks/bench_generator.py --xlarge        # ... and xlarge (5M interactions)
    python benchmarks/bench_generator.py --sizes tiny small --seed 1
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

TARGETS = {"large": (60.0, 2048.0)}  # seconds, MiB


def _rss_mib() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def run_one(size: str, seed: int) -> dict:
    from kgwb.data.sample import generate

    base = _rss_mib()
    start = time.perf_counter()
    ds = generate(size, seed=seed)
    seconds = time.perf_counter() - start
    return {
        "size": size,
        "seconds": round(seconds, 2),
        "peak_rss_mib": round(_rss_mib(), 1),
        "base_rss_mib": round(base, 1),
        "users": len(ds.users),
        "items": len(ds.items),
        "interactions": len(ds.interactions),
        "reviews": 0 if ds.reviews is None else len(ds.reviews),
        "kg_triples": 0 if ds.kg is None else len(ds.kg),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", default=["tiny", "small", "medium", "large"])
    parser.add_argument("--xlarge", action="store_true", help="also run xlarge (5M interactions)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: run one size, print JSON
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(run_one(args.one, args.seed)))
        return 0
    sizes = list(args.sizes) + (["xlarge"] if args.xlarge and "xlarge" not in args.sizes else [])
    header = f"{'size':<8}{'seconds':>9}{'peak MiB':>10}{'base MiB':>10}{'users':>9}{'items':>8}{'interactions':>14}{'reviews':>9}{'triples':>9}"
    print(header)
    failed = False
    for size in sizes:
        proc = subprocess.run(
            [sys.executable, __file__, "--one", size, "--seed", str(args.seed)],
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0:
            print(f"{size:<8} failed:\n{proc.stderr}")
            failed = True
            continue
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        line = (
            f"{r['size']:<8}{r['seconds']:>9.2f}{r['peak_rss_mib']:>10.0f}{r['base_rss_mib']:>10.0f}"
            f"{r['users']:>9,}{r['items']:>8,}{r['interactions']:>14,}{r['reviews']:>9,}{r['kg_triples']:>9,}"
        )
        if size in TARGETS:
            max_s, max_mib = TARGETS[size]
            ok = r["seconds"] < max_s and r["peak_rss_mib"] < max_mib
            line += f"   target <{max_s:.0f} s, <{max_mib:.0f} MiB: {'ok' if ok else 'MISSED'}"
            failed |= not ok
        print(line, flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
