"""Benchmark `build-data` on MELD train+dev: wall time, peak memory and examples/s.

Three variants run in fresh processes, each several times (medians reported), as ratios to the first:
  no-retrieval   n_demos=0, prompts and token budget only (the baseline)
  retrieval-cold n_demos=2 with an empty embeddings cache (encodes every utterance)
  retrieval-warm n_demos=2 again, the embeddings now served from the cache

    python bench/build_data.py --data_dir ../shared/data/meld [--repeats 3]

MELD is not part of this repository: get it from declare-lab/MELD (data/MELD/*_sent_emo.csv).
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from instructerc.models import default_cache_dir, resolve_model

CHILD = r"""
import json, resource, sys, time
from instructerc.config import BuildDataConfig
from instructerc.data_builders.build import build_dataset
args = json.loads(sys.argv[1])
start = time.perf_counter()
result = build_dataset(BuildDataConfig(**args, show_progress=False, force=True))
seconds = time.perf_counter() - start
examples = sum(result.counts.values())
peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"seconds": seconds, "examples": examples, "peak_rss_mb": peak_mb, "cache": result.retrieval}))
"""


# No variant always runs first (first runs in a process tree are slower); cold always precedes warm.
ORDERS = (
    ("no-retrieval", "retrieval-cold", "retrieval-warm"),
    ("retrieval-cold", "retrieval-warm", "no-retrieval"),
    ("retrieval-cold", "no-retrieval", "retrieval-warm"),
)


def fresh_cache(path: Path) -> Path:
    """An empty cache folder sharing the already converted model: only the embeddings start cold."""
    path.mkdir()
    (path / "models").symlink_to(default_cache_dir() / "models", target_is_directory=True)
    return path


def run_variant(settings: dict) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps(settings)], capture_output=True, text=True, check=False
    )
    if out.returncode != 0:
        raise SystemExit(f"build failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data_dir", required=True, help="folder with MELD's train_sent_emo.csv and dev_sent_emo.csv")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--output", default=None, help="also write the results as JSON here")
    args = parser.parse_args()
    if not (Path(args.data_dir) / "train_sent_emo.csv").is_file():
        raise SystemExit(f"{args.data_dir}: MELD csv files not found (get them from declare-lab/MELD)")

    resolve_model("embedded")  # convert once, outside the timed runs
    work = Path(tempfile.mkdtemp(prefix="instructerc-bench-"))
    base = {
        "dataset": "meld",
        "data_dir": args.data_dir,
        "splits": ["train", "validation"],
        "output_dir": str(work / "out"),
    }
    variants = {"no-retrieval": {"n_demos": 0}, "retrieval-cold": {"n_demos": 2}, "retrieval-warm": {"n_demos": 2}}
    runs: dict[str, list[dict]] = {name: [] for name in variants}
    try:
        # Warm-up (not timed): imports compiled, corpus and model files in the page cache.
        run_variant({**base, "n_demos": 0, "splits": ["validation"], "cache_dir": str(fresh_cache(work / "warmup"))})
        for repeat in range(args.repeats):
            cache = fresh_cache(work / f"cache-{repeat}")  # cold embeddings per repeat, then warm
            for name in ORDERS[repeat % len(ORDERS)]:
                extra = variants[name]
                result = run_variant({**base, **extra, "cache_dir": str(cache)})
                runs[name].append(result)
                print(
                    f"repeat {repeat + 1} {name:<15} {result['seconds']:7.1f} s  {result['examples']} examples  "
                    f"peak {result['peak_rss_mb']:.0f} MB  cache {result['cache']}",
                    flush=True,
                )
    finally:
        shutil.rmtree(work, ignore_errors=True)

    baseline = statistics.median(r["seconds"] for r in runs["no-retrieval"])
    print(
        f"\nMELD train+dev, {args.repeats} repeats, medians ({platform.processor() or platform.machine()}, "
        f"python {platform.python_version()})"
    )
    print("| variant | examples | wall s | examples/s | peak RSS MB | time vs no-retrieval |")
    print("| --- | --- | --- | --- | --- | --- |")
    summary = {}
    for name, results in runs.items():
        seconds = statistics.median(r["seconds"] for r in results)
        examples = results[0]["examples"]
        peak = statistics.median(r["peak_rss_mb"] for r in results)
        summary[name] = {"seconds": seconds, "examples": examples, "peak_rss_mb": peak, "ratio": seconds / baseline}
        ratio = seconds / baseline
        print(f"| {name} | {examples} | {seconds:.1f} | {examples / seconds:.0f} | {peak:.0f} | {ratio:.2f}x |")
    if args.output:
        Path(args.output).write_text(json.dumps({"runs": runs, "summary": summary}, indent=2))


if __name__ == "__main__":
    main()
