#!/usr/bin/env python3
"""Benchmark: Pith's 1-D k-means against scikit-learn's KMeans on the same 10 million weights.

Issue: 5-bit k-means on 10 million weights at least 20x faster than
scikit-learn KMeans(n_clusters=32, n_init=1), with equal or lower squared error.

The weights (float32, seed 0) mimic trained layers: 80% Laplace(0, 0.02), 20% Normal(0, 0.08).
Pith: `pith bench kmeans` (radix sort + Lloyd on prefix sums + assignment of every value),
median of 5 runs, for each initialisation. scikit-learn: KMeans(n_clusters=32, n_init=1,
random_state=0) on the values as a column, fit + predict, median of --sk-runs runs.
The squared error of both is recomputed here, in float64, from the centroids each returns.
With --write, replaces the kmeans section of docs/benchmarks.md. Needs scikit-learn.
"""
import argparse
import json
import os
import platform
import statistics
import subprocess
import time

import numpy as np

ROOT = os.path.normpath(os.path.join(os.path.dirname(__file__), ".."))
DATA = os.path.join(ROOT, ".cache", "bench", "weights-10m.f32")


def squared_error(x, centroids):
    c = np.sort(np.asarray(centroids, dtype=np.float64))
    mid = (c[1:] + c[:-1]) / 2
    idx = np.searchsorted(mid, x, side="left")
    return float(np.sum((x - c[idx]) ** 2))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--pith", default=os.path.join(ROOT, ".build", "release", "pith"))
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--sk-runs", type=int, default=3)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.laplace(0, 0.02, 8_000_000), rng.normal(0, 0.08, 2_000_000)]).astype(np.float32)
    rng.shuffle(x)
    os.makedirs(os.path.dirname(DATA), exist_ok=True)
    x.tofile(DATA)
    x64 = x.astype(np.float64)

    rows = []
    for init in ["linear", "density", "kmeans++"]:
        out = subprocess.run([args.pith, "bench", "kmeans", DATA, "--bits", "5", "--init", init, "--runs", str(args.runs)],
                             check=True, capture_output=True, text=True).stdout
        r = json.loads(out)
        rows.append((f"pith, {init} init", r["seconds"], squared_error(x64, r["centroids"]), r["iterations"]))
        print(rows[-1], flush=True)

    from sklearn.cluster import KMeans
    import sklearn
    times = []
    for _ in range(args.sk_runs):
        start = time.perf_counter()
        km = KMeans(n_clusters=32, n_init=1, random_state=0).fit(x.reshape(-1, 1))
        km.predict(x.reshape(-1, 1))
        times.append(time.perf_counter() - start)
    sk = ("scikit-learn " + sklearn.__version__ + " KMeans(n_clusters=32, n_init=1)", statistics.median(times),
          squared_error(x64, km.cluster_centers_.ravel()), int(km.n_iter_))
    rows.append(sk)
    print(sk, flush=True)

    lines = ["| implementation | seconds (median) | squared error | iterations | speed-up vs scikit-learn |",
             "|---|---:|---:|---:|---:|"]
    for name, seconds, error, iterations in rows:
        lines.append(f"| {name} | {seconds:.3f} | {error:.4f} | {iterations} | {sk[1] / seconds:.0f}× |")
    table = "\n".join(lines)
    print(table)
    if args.write:
        from benchdoc import replace_section
        replace_section("kmeans", (f"Measured {time.strftime('%Y-%m-%d')} on {platform.machine()}, {os.cpu_count()} cores, "
                   f"by `scripts/bench_kmeans.py --write`: Pith median of {args.runs} runs, scikit-learn median of {args.sk_runs}; "
                   f"each time covers clustering and assigning all 10,000,000 values.\n\n{table}"))


if __name__ == "__main__":
    main()
