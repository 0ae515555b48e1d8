#!/usr/bin/env python3
"""Benchmark: `pith compress --auto` on LeNet-300-100 against the data-free passes at the same size (issue 13).

For each accuracy budget, `pith compress --auto --max-accuracy-drop B` runs with calibration = the
first 1,000 MNIST training images (unlabeled) and validation = the 10,000 test images with labels,
timed as a whole. Its container is restored to ONNX and its top-1 error measured in onnxruntime on the
test images (pixels / 255). Beside it: the best data-free recipe (one global magnitude threshold, then
k-means per tensor, the flags `--prune S --cluster B`) whose container is no larger, over a grid of
sparsities and bits, measured the same way. The ratio is the ONNX file's size over the container's.
The issue's target: at least 25× smaller at no more than fp32 + 0.1 point error.
Also writes the frontier the --max-accuracy-drop 0.1 run explored. Note that --auto checks its models on
the same 10,000 test images the error is reported on, as the issue's acceptance asks: the search
selects on that data, so its errors are optimistic by the noise of a 10,000-image test (about ±0.1 point).
With --write, updates the "auto" sections of docs/benchmarks.md.

    scripts/bench_auto.py [--pith .build/release/pith] [--write]
"""
import argparse
import datetime
import gzip
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

import numpy as np
import onnxruntime as ort

sys.path.insert(0, os.path.dirname(__file__))
from benchdoc import ROOT, replace_section  # noqa: E402

LENET = os.path.join(ROOT, "Fixtures", "lenet-300-100.onnx")
MNIST = os.path.normpath(os.path.join(ROOT, "..", "shared", "data", "mnist"))
SAMPLES = 1000
BUDGETS = [0.1, 0.2, 0.3, 0.5, 1.0]
SPARSITIES = [0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.925, 0.95]
BITS = [2, 3, 4, 5, 6]


def idx(path):
    data = gzip.open(path).read()
    rank = data[3]
    shape = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(rank)]
    return np.frombuffer(data, np.uint8, offset=4 + 4 * rank).reshape(shape)


def error(model, x, y):
    session = ort.InferenceSession(model)
    return 100 * float((session.run(None, {session.get_inputs()[0].name: x})[0].argmax(1) != y).mean())


def restored_error(pith, container, folder, x, y):
    restored = os.path.join(folder, "restored.onnx")
    subprocess.run([pith, "restore", "--force", "-o", restored, container], check=True, capture_output=True, text=True)
    return error(restored, x, y)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--pith", default=os.path.join(ROOT, ".build", "release", "pith"))
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    x = idx(os.path.join(MNIST, "t10k-images.idx3-ubyte.gz")).reshape(-1, 784).astype(np.float32) / 255
    y = idx(os.path.join(MNIST, "t10k-labels.idx1-ubyte.gz"))
    source = os.path.getsize(LENET)
    base = error(LENET, x, y)
    with tempfile.TemporaryDirectory() as folder:
        # The data-free grid: every (sparsity, bits) once.
        free = []
        container = os.path.join(folder, "free.pith")
        for sparsity in SPARSITIES:
            for bits in BITS:
                flags = ["--prune", str(sparsity), "--cluster", str(bits)]
                subprocess.run([args.pith, "compress", "--force", "-o", container, *flags, LENET], check=True, capture_output=True, text=True)
                free.append((os.path.getsize(container), restored_error(args.pith, container, folder, x, y), " ".join(flags)))
        rows, frontier = [], None
        for budget in BUDGETS:
            container = os.path.join(folder, "auto.pith")
            command = [args.pith, "compress", LENET, "--auto", "--max-accuracy-drop", str(budget),
                       "--calibration", os.path.join(MNIST, "train-images.idx3-ubyte.gz"), "--calibration-samples", str(SAMPLES),
                       "--data", os.path.join(MNIST, "t10k-images.idx3-ubyte.gz"), "--labels", os.path.join(MNIST, "t10k-labels.idx1-ubyte.gz"),
                       "--format", "json", "--force", "-o", container]
            start = time.perf_counter()
            result = subprocess.run(command, capture_output=True, text=True)
            seconds = time.perf_counter() - start
            if result.returncode not in (0, 1):
                sys.exit(f"--auto failed: {result.stderr}")
            report = json.loads(result.stdout)
            size = os.path.getsize(container)
            have = restored_error(args.pith, container, folder, x, y)
            settings = ", ".join(f"{layer['tensor'].split('.')[0]} `{layer['setting']}`" for layer in report["layers"])
            width = (report.get("width") or {}).get("fraction")
            if width:
                settings = f"{width:.0%} of fc1's and fc2's neurons removed (obs); " + settings
            fits = [f for f in free if f[0] <= size]
            best_free = min(fits, key=lambda f: (f[1], -f[0])) if fits else None
            free_cells = (f"`{best_free[2]}` | {best_free[0]:,} | {source / best_free[0]:.1f}× | {best_free[1]:.2f}% ({best_free[1] - base:+.2f})"
                          if best_free else "none this small | | |")
            print(f"--auto {budget}: {size} B {source / size:.2f}× {have:.2f}% in {seconds:.1f} s; data-free {best_free}", flush=True)
            rows.append(
                f"| {budget} | {settings} | {size:,} | {source / size:.1f}× | **{have:.2f}%** ({have - base:+.2f}) "
                f"| {'yes' if result.returncode == 0 else 'no (exit 1)'} | {seconds:.1f} s | {free_cells} |")
            if budget == BUDGETS[0]:
                frontier = report
    table = "\n".join([
        f"Measured {datetime.date.today()} on {platform.machine()}, {os.cpu_count()} cores, by `scripts/bench_auto.py --write` (release build). "
        f"LeNet-300-100 (`Fixtures/lenet-300-100.onnx`, {source:,} bytes, fp32 test error {base:.2f}%). `--auto` calibrates on the first "
        f"{SAMPLES:,} MNIST training images and checks each model on the 10,000 test images with labels (default settings: "
        "11 sparsities × int8 / int4 / k-means 2–6 bits, `ecq` at 6 λ, `svdR+ecqL` at 3 × 4, fp16, none, per layer, after removing the "
        "largest share of neurons whose float32 model uses at most a third of the budget); error: onnxruntime on the 10,000 test images after "
        "`pith restore`. Data-free: the lowest-error `--prune S --cluster B` (one global magnitude threshold, k-means per tensor) of a "
        f"{len(SPARSITIES)} × {len(BITS)} grid whose container is no larger.",
        "",
        "| `--max-accuracy-drop` | chosen per layer | bytes | ratio | test error | budget met | time | data-free recipe | bytes | ratio | test error |",
        "|---:|---|---:|---:|---:|---|---:|---|---:|---:|---:|",
        *rows,
    ])
    probes = frontier["probes"]
    explored = "\n".join([
        f"What `--auto --max-accuracy-drop {BUDGETS[0]}` checked ({len(probes)} models, smallest first, "
        + (f"every one with {frontier['width']['fraction']:.0%} of fc1's and fc2's neurons removed first; " if (frontier.get("width") or {}).get("fraction") else "")
        + 
        "error and Δ from Pith's evaluator on the 10,000 test images, **bold** the model written):",
        "",
        "| bytes | ratio | summed output error | test error | Δ points | top-1 agreement | fc1 | fc2 | fc3 |",
        "|---:|---:|---:|---:|---:|---:|---|---|---|",
        *[("| **{:,}** | **{:.1f}×** |" if p["settings"] == frontier["chosen"]["settings"] else "| {:,} | {:.1f}× |").format(p["bytes"], p["ratio"])
          + f" {p['proxy']:.3g} | {100 * (1 - p['metrics']['accuracy']):.2f}% | {p['accuracy_drop']:+.2f} | {100 * p['metrics']['agreement']:.2f}% | "
          + " | ".join(f"`{s}`" for s in p["settings"]) + " |" for p in probes],
    ])
    print(table)
    print(explored)
    if args.write:
        replace_section("auto", table)
        replace_section("auto-frontier", explored)


if __name__ == "__main__":
    main()
