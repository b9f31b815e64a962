"""Cost of a live catalogue: single-programme upserts and removals, refresh_statistics, and the
full index they replace, on synthesised lexical catalogues of 10k and 100k programmes.

Run with ``OMP_NUM_THREADS=1 .venv/bin/python bench/incremental_bench.py [--sizes 10000 100000]``.
Programmes come from the word lists of ``bench/matching_bench.py`` (recombined Chinese modules,
skills, conditions and certificates); no model, no benchmark data.
"""
from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from matching_bench import synth_demands, synth_programmes  # noqa: E402

from matching.pipeline import Matcher  # noqa: E402
from matching.types import Module  # noqa: E402


def _rss_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def run(n: int, upserts: int = 20) -> dict[str, float]:
    programmes, _ = synth_programmes(n + upserts, seed=0)
    catalogue, fresh = programmes[:n], programmes[n:]
    demands, _ = synth_demands(200)
    m = Matcher(encoder=None)
    gc.collect()
    t = time.perf_counter()
    m.index_programmes(catalogue)
    index_s = time.perf_counter() - t
    m.index_demands(demands)
    steady = _rss_mb()
    m.match_demand(demands[0])  # warm up (jieba, caches)

    new_times = []
    for p in fresh[: upserts // 2]:
        p = dataclasses.replace(p, id=f"new-{p.id}")
        t = time.perf_counter()
        m.upsert_programmes([p])
        new_times.append(time.perf_counter() - t)
    edit_times = []
    for i, p in enumerate(catalogue[: upserts // 2]):
        edited = dataclasses.replace(p, modules=(*p.modules[:-1], Module(f"新增模块{i}：安全生产与应急处置", 16)))
        t = time.perf_counter()
        m.upsert_programmes([edited])
        edit_times.append(time.perf_counter() - t)
    t = time.perf_counter()
    m.remove_programmes([catalogue[-1].id])
    remove_s = time.perf_counter() - t
    after_upserts = _rss_mb()
    t = time.perf_counter()
    m.match_demand(demands[1])
    match_pending_s = time.perf_counter() - t

    t = time.perf_counter()
    m.refresh_statistics()
    refresh_s = time.perf_counter() - t
    after_refresh = _rss_mb()
    t = time.perf_counter()
    m.match_demand(demands[2])
    match_s = time.perf_counter() - t
    return {
        "programmes": n,
        "index_s": round(index_s, 2),
        "upsert_new_s": round(sorted(new_times)[len(new_times) // 2], 4),
        "upsert_edit_s": round(sorted(edit_times)[len(edit_times) // 2], 4),
        "upsert_max_s": round(max(new_times + edit_times), 4),
        "remove_s": round(remove_s, 5),
        "refresh_s": round(refresh_s, 2),
        "match_with_pending_ms": round(match_pending_s * 1000, 1),
        "match_after_refresh_ms": round(match_s * 1000, 1),
        "rss_steady_mb": round(steady),
        "rss_after_upserts_mb": round(after_upserts),
        "rss_after_refresh_mb": round(after_refresh),
        "rss_peak_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    ap.add_argument("--upserts", type=int, default=20)
    args = ap.parse_args()
    for n in args.sizes:
        print(json.dumps(run(n, args.upserts)), flush=True)


if __name__ == "__main__":
    main()
