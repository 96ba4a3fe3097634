"""Benchmark: load amazon-beauty in the KGAT and the RecBole format.

Each format loads in a fresh subprocess, so every peak RSS is that load's own.  Prints wall
seconds, RSS before loading and at the peak, and the summary counts.  The shared datasets folder
is found through :func:`kgwb.paths.shared_datasets_dir`; without it the benchmark says so and
exits 0.

    .venv/bin/python benchmarks/bench_load.py [--repeat N]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

FORMATS = ("kgat", "recbole")
TARGET_SECONDS = 10.0


def _peak_rss_mib() -> float:
    # ru_maxrss is KiB on Linux, bytes on macOS
    scale = 1 if sys.platform != "darwin" else 1 / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 1024


def _measure(fmt: str) -> dict:
    """Load one format in this process and return its timing, memory and counts."""
    from kgwb.data import load_dataset
    from kgwb.paths import shared_datasets_dir

    folder = shared_datasets_dir() / "amazon-beauty" / fmt
    baseline = _peak_rss_mib()
    start = time.perf_counter()
    ds = load_dataset(folder, format=fmt)
    wall = time.perf_counter() - start
    summary = ds.summary()
    summary.pop("load")
    return {
        "format": fmt,
        "wall_s": round(wall, 3),
        "rss_before_mib": round(baseline, 1),
        "peak_rss_mib": round(_peak_rss_mib(), 1),
        "rows_read": ds.report.rows_read,
        "summary": summary,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=1, help="loads per format (best is kept)")
    parser.add_argument("--one", choices=FORMATS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(_measure(args.one)))
        return 0

    from kgwb.paths import shared_datasets_dir

    shared = shared_datasets_dir()
    if shared is None or not (shared / "amazon-beauty").is_dir():
        print("skipped: amazon-beauty not found (../shared/datasets or $KGWB_SHARED_DATASETS)")
        return 0

    results = []
    for fmt in FORMATS:
        runs = []
        for _ in range(args.repeat):
            out = subprocess.run(
                [sys.executable, __file__, "--one", fmt], capture_output=True, text=True, check=True
            )
            runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
        results.append(min(runs, key=lambda r: r["wall_s"]))

    print(
        f"{'format':<8} {'wall s':>7} {'RSS before MiB':>15} {'peak RSS MiB':>13} {'rows read':>10}"
    )
    for r in results:
        print(
            f"{r['format']:<8} {r['wall_s']:>7.2f} {r['rss_before_mib']:>15.0f} "
            f"{r['peak_rss_mib']:>13.0f} {r['rows_read']:>10,}"
        )
    for r in results:
        s = r["summary"]
        print(
            f"{r['format']}: users {s['users']:,} · items {s['items']:,} · interactions "
            + " / ".join(f"{k} {v:,}" for k, v in s["interactions"].items())
            + f" · entities {s['entities']:,} · relations {s['relations']} · triples {s['triples']:,}"
        )
    slow = [r["format"] for r in results if r["wall_s"] > TARGET_SECONDS]
    if slow:
        print(f"SLOWER THAN {TARGET_SECONDS:.0f} s: {', '.join(slow)}")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
