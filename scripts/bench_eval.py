#!/usr/bin/env python3
"""Benchmark: the 10,000 MNIST test images through LeNet-300-100, Pith's evaluator against onnxruntime.

Issue 5: evaluation runs within 2× of onnxruntime's time on the same machine, same run.
Both sides are timed the same way, median of 5 after a warm-up:
  - compute: the model already loaded and the images in memory. Pith reports the time of its
    batched run (`pith eval --format json`, field `seconds`, batches of 500 on every core);
    onnxruntime's is one `InferenceSession.run` on all 10,000 images (its default threading).
  - whole command: `pith eval MODEL --data IMAGES --labels LABELS` as a process, against a Python
    process that imports onnxruntime and numpy, reads the same gzip IDX files, runs and scores.
With --write, updates docs/benchmarks.md.
"""
import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time

ROOT = os.path.normpath(os.path.join(os.path.dirname(__file__), ".."))
MNIST = os.path.normpath(os.path.join(ROOT, "..", "shared", "data", "mnist"))
IMAGES = os.path.join(MNIST, "t10k-images.idx3-ubyte.gz")
LABELS = os.path.join(MNIST, "t10k-labels.idx1-ubyte.gz")
MODEL = os.path.join(ROOT, "Fixtures", "lenet-300-100.onnx")

ORT_SCRIPT = f"""
import gzip, sys, time, numpy as np, onnxruntime as ort
def idx(p):
    d = gzip.open(p).read(); r = d[3]
    return np.frombuffer(d, np.uint8, offset=4 + 4 * r).reshape([int.from_bytes(d[4 + 4 * i:8 + 4 * i], 'big') for i in range(r)])
x = idx({IMAGES!r}).reshape(-1, 784).astype(np.float32) / 255
y = idx({LABELS!r})
s = ort.InferenceSession({MODEL!r})
t = time.perf_counter(); out = s.run(None, {{'input': x}})[0]; t = time.perf_counter() - t
print(t, (out.argmax(1) == y).mean())
"""


def median_of(runs, body):
    body()
    return statistics.median(body() for _ in range(runs))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--pith", default=os.path.join(ROOT, ".build", "release", "pith"))
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    command = [args.pith, "eval", MODEL, "--data", IMAGES, "--labels", LABELS, "--format", "json"]
    reports = []

    def pith_compute():
        report = json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)
        reports.append(report)
        return report["seconds"]

    def ort_compute():
        return float(subprocess.run([sys.executable, "-c", ORT_SCRIPT], check=True, capture_output=True, text=True).stdout.split()[0])

    def timed(cmd):
        def run():
            start = time.perf_counter()
            subprocess.run(cmd, check=True, capture_output=True)
            return time.perf_counter() - start
        return run

    pith_c = median_of(args.runs, pith_compute)
    ort_c = median_of(args.runs, ort_compute)
    pith_w = median_of(args.runs, timed(command))
    ort_w = median_of(args.runs, timed([sys.executable, "-c", ORT_SCRIPT]))
    ort_accuracy = float(subprocess.run([sys.executable, "-c", ORT_SCRIPT], check=True, capture_output=True, text=True).stdout.split()[1])
    table = "\n".join([
        "| LeNet-300-100, 10,000 MNIST images | Pith evaluator | onnxruntime | ratio |", "|---|---:|---:|---:|",
        f"| compute (model loaded, images in memory), s | {pith_c:.4f} | {ort_c:.4f} | {pith_c / ort_c:.2f}× |",
        f"| whole command (load, read IDX, run, score), s | {pith_w:.3f} | {ort_w:.3f} | {pith_w / ort_w:.2f}× |",
        f"| top-1 accuracy | {reports[-1]['accuracy'] * 100:.2f}% | {ort_accuracy * 100:.2f}% | |"])
    print(table)
    if args.write:
        sys.path.insert(0, os.path.join(ROOT, "scripts"))
        from benchdoc import replace_section
        import onnxruntime
        replace_section("eval", f"Measured {time.strftime('%Y-%m-%d')} on {platform.machine()}, {os.cpu_count()} cores, by "
                        f"`scripts/bench_eval.py --write` (median of {args.runs}; onnxruntime {onnxruntime.__version__}).\n\n{table}")


if __name__ == "__main__":
    main()
