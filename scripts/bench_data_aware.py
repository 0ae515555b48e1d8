#!/usr/bin/env python3
"""Benchmark: data-free versus data-aware compression of LeNet-300-100 (issue 13).

Each recipe runs twice through `pith compress -o`: data-free, and with the data-aware passes
(`--calibration` = the first 1,000 MNIST training images, unlabeled; GPTQ rounding, OBS pruning,
bias correction). Each container is restored to ONNX and its top-1 error measured in onnxruntime on
the 10,000 test images (pixels / 255). The ratio is the ONNX file's size over the container's.
The issue's target: at least 25× smaller than the ONNX file at no more than fp32 + 0.1 point error.
With --write, updates the "Data-aware compression" table of docs/benchmarks.md.

    scripts/bench_data_aware.py [--pith .build/release/pith] [--write]
"""
import argparse
import datetime
import gzip
import os
import platform
import subprocess
import sys
import tempfile

import numpy as np
import onnxruntime as ort

sys.path.insert(0, os.path.dirname(__file__))
from benchdoc import ROOT, replace_section  # noqa: E402

LENET = os.path.join(ROOT, "Fixtures", "lenet-300-100.onnx")
MNIST = os.path.normpath(os.path.join(ROOT, "..", "shared", "data", "mnist"))
SAMPLES = 1000

# (label, data-free flags, flags added for the data-aware run)
RUNS = [
    ("int8 per channel", ["--quantize", "int8-channel"], ["--gptq"]),
    ("int4 per channel", ["--quantize", "int4-channel"], ["--gptq"]),
    ("k-means 3 bits", ["--cluster", "3"], ["--gptq"]),
    ("k-means 2 bits", ["--cluster", "2"], ["--gptq"]),
    ("prune 80%", ["--prune", "0.8"], ["--obs", "--prune-mask", "saliency"]),
    ("prune 80%, bias correction alone", ["--prune", "0.8"], ["--bias-correction"]),
    ("prune 90%", ["--prune", "0.9"], ["--obs", "--prune-mask", "saliency"]),
    ("prune 90%, bias correction alone", ["--prune", "0.9"], ["--bias-correction"]),
    ("prune 60% + k-means 3 bits", ["--prune", "0.6", "--cluster", "3"], ["--obs", "--prune-mask", "saliency", "--gptq", "--bias-correction"]),
    ("prune 70% + k-means 3 bits", ["--prune", "0.7", "--cluster", "3"], ["--obs", "--prune-mask", "saliency", "--gptq", "--bias-correction"]),
    ("prune 80% + k-means 3 bits", ["--prune", "0.8", "--cluster", "3"], ["--obs", "--prune-mask", "saliency", "--gptq", "--bias-correction"]),
    ("prune 80% + k-means 4 bits", ["--prune", "0.8", "--cluster", "4"], ["--obs", "--prune-mask", "saliency", "--gptq", "--bias-correction"]),
    ("prune 80% + k-means 2 bits", ["--prune", "0.8", "--cluster", "2"], ["--obs", "--prune-mask", "saliency", "--gptq", "--bias-correction"]),
    ("SVD rank 32 (fc1, fc2)", ["--factorize", "svd", "--rank", "32"], ["--whiten"]),
    ("prune 90% + k-means 5 bits", ["--prune", "0.9", "--cluster", "5"], ["--obs", "--prune-mask", "saliency", "--gptq", "--bias-correction"]),
]


def idx(path):
    data = gzip.open(path).read()
    rank = data[3]
    shape = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(rank)]
    return np.frombuffer(data, np.uint8, offset=4 + 4 * rank).reshape(shape)


def error(model, x, y):
    session = ort.InferenceSession(model)
    return 100 * float((session.run(None, {session.get_inputs()[0].name: x})[0].argmax(1) != y).mean())


def run(pith, flags, folder, x, y):
    container, restored = os.path.join(folder, "m.pith"), os.path.join(folder, "m.onnx")
    subprocess.run([pith, "compress", "--force", "-o", container, *flags, LENET], check=True, capture_output=True, text=True)
    subprocess.run([pith, "restore", "--force", "-o", restored, container], check=True, capture_output=True, text=True)
    return os.path.getsize(container), error(restored, x, y)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--pith", default=os.path.join(ROOT, ".build", "release", "pith"))
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    x = idx(os.path.join(MNIST, "t10k-images.idx3-ubyte.gz")).reshape(-1, 784).astype(np.float32) / 255
    y = idx(os.path.join(MNIST, "t10k-labels.idx1-ubyte.gz"))
    calibration = ["--calibration", os.path.join(MNIST, "train-images.idx3-ubyte.gz"), "--calibration-samples", str(SAMPLES)]
    source = os.path.getsize(LENET)
    base = error(LENET, x, y)
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for label, free, aware in RUNS:
            fs, fe = run(args.pith, free, folder, x, y)
            a_s, ae = run(args.pith, free + aware + calibration, folder, x, y)
            print(f"{label}: data-free {fs} B {source / fs:.2f}× {fe:.2f}%  data-aware {a_s} B {source / a_s:.2f}× {ae:.2f}%", flush=True)
            rows.append(
                f"| {label} | `{' '.join(aware)}` | {fs:,} | {source / fs:.1f}× | {fe:.2f}% ({fe - base:+.2f}) "
                f"| {a_s:,} | {source / a_s:.1f}× | **{ae:.2f}%** ({ae - base:+.2f}) |")
    table = "\n".join([
        f"Measured {datetime.date.today()} on {platform.machine()}, {os.cpu_count()} cores, by `scripts/bench_data_aware.py --write`. "
        f"LeNet-300-100 (`Fixtures/lenet-300-100.onnx`, {source:,} bytes, fp32 test error {base:.2f}%). Calibration: the first "
        f"{SAMPLES:,} MNIST training images, unlabeled; error: onnxruntime on the 10,000 test images after `pith restore`. "
        "Both columns run the same flags; the data-aware run adds the ones shown and `--calibration`.",
        "",
        "| recipe | data-aware flags | data-free bytes | ratio | test error | data-aware bytes | ratio | test error |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
        *rows,
    ])
    print(table)
    if args.write:
        replace_section("data-aware", table)


if __name__ == "__main__":
    main()
