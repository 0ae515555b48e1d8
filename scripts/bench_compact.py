#!/usr/bin/env python3
"""Benchmark: compact ONNX export (issue 14): the size of `pith restore --compact` against the fp32 ONNX
file (the dense restore of the same container) and the `.pith` container, and how far its outputs are
from the dense restore's in onnxruntime (graph optimisations on and off) and in `pith eval`.

Models: LeNet-300-100 (Fixtures/, its MNIST test images) under several recipes — also at opset 12 with an
Unsqueeze / Squeeze pair after its output, which keeps the opset below 13, for the forms of old opsets
(4-bit codes packed two per byte) — and rapidocr's three OCR models (from the rapidocr-onnxruntime 1.4.4 wheel, fetched with pip into .cache/wheels like
Tests/interop/test_real_models.py does) with a synthetic page as input. Sizes do not depend on the
build; outputs are compared as max |compact − dense| / max |dense|.
With --write, updates docs/benchmarks.md.
"""
import argparse
import glob
import gzip
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
import zipfile

import numpy as np
import onnxruntime

sys.path.insert(0, os.path.dirname(__file__))
from benchdoc import replace_section  # noqa: E402

ROOT = os.path.normpath(os.path.join(os.path.dirname(__file__), ".."))
MNIST = os.path.normpath(os.path.join(ROOT, "..", "shared", "data", "mnist"))
LENET = os.path.join(ROOT, "Fixtures", "lenet-300-100.onnx")
CACHE = os.path.join(ROOT, ".cache", "wheels")
RAPIDOCR = {"ch_ppocr_mobile_v2.0_cls_infer": (2, 3, 48, 192), "ch_PP-OCRv4_det_infer": (1, 3, 64, 96),
            "ch_PP-OCRv4_rec_infer": (1, 3, 48, 160)}


def rapidocr_models():
    found = sorted(glob.glob(os.path.join(CACHE, "rapidocr_onnxruntime", "**", "*.onnx"), recursive=True))
    if found:
        return found
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", CACHE, "rapidocr-onnxruntime==1.4.4"], check=True)
    with zipfile.ZipFile(glob.glob(os.path.join(CACHE, "rapidocr_onnxruntime-*.whl"))[0]) as wheel:
        for member in wheel.namelist():
            if member.endswith(".onnx"):
                wheel.extract(member, os.path.join(CACHE, "rapidocr_onnxruntime"))
    return sorted(glob.glob(os.path.join(CACHE, "rapidocr_onnxruntime", "**", "*.onnx"), recursive=True))


def pinned_lenet(path):
    """LeNet at opset 12 with its output passed through Unsqueeze and Squeeze (attribute `axes`, an input
    from opset 13): the opset cannot be raised to 13, so 4-bit codes cannot be int4 / uint4 (opset 21)."""
    import onnx
    from onnx import helper
    model = onnx.load(LENET)
    model.opset_import[0].version = 12
    model.graph.node[-1].output[0] = "logits_raw"
    model.graph.node.extend([helper.make_node("Unsqueeze", ["logits_raw"], ["logits_u"], axes=[0], name="unsqueeze"),
                             helper.make_node("Squeeze", ["logits_u"], ["logits"], axes=[0], name="squeeze")])
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, path)
    return path


def mnist(count):
    with gzip.open(os.path.join(MNIST, "t10k-images.idx3-ubyte.gz")) as f:
        images = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 784)[:count]
    with gzip.open(os.path.join(MNIST, "t10k-labels.idx1-ubyte.gz")) as f:
        labels = np.frombuffer(f.read(), np.uint8, offset=8)[:count]
    return (images / 255).astype(np.float32), labels


def page(shape):
    """Rows of dark strokes on white, normalised as rapidocr does: (x − 0.5) / 0.5."""
    n, c, h, w = shape
    rng = np.random.default_rng(0)
    image = np.ones((h, w), np.float32)
    for row in range(6, h - 10, 14):
        x = 4
        while x < w - 12:
            k = int(rng.integers(3, 9))
            image[row:row + 8, x:x + k] = 0
            x += k + int(rng.integers(2, 5))
    return np.broadcast_to((image - 0.5) / 0.5, shape).astype(np.float32).copy()


def session(path, optimise):
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    if not optimise:
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL
    return onnxruntime.InferenceSession(path, options)


def deviation(have, want):
    return max(float(np.abs(h - w).max()) / max(float(np.abs(w).max()), 1e-30) for h, w in zip(have, want))


def measure(pith, folder, source, flags, feeds, labels=None):
    stem = os.path.join(folder, "m")
    run = lambda *args: subprocess.run([pith, *args], capture_output=True, text=True, check=True).stdout  # noqa: E731
    run("compress", source, *flags, "-o", stem + ".pith", "--force")
    run("restore", stem + ".pith", "-o", stem + "-dense.onnx", "--force")
    report = run("restore", stem + ".pith", "-o", stem + ".onnx", "--compact", "--force")
    row = {"fp32": os.path.getsize(stem + "-dense.onnx"), "pith": os.path.getsize(stem + ".pith"), "compact": os.path.getsize(stem + ".onnx")}
    forms = sorted({re.sub(r"\d+ scales", "N scales", re.sub(r" of \d+ of \d+", " of", line.split(": ", 2)[2].split(" (")[0]))
                    for line in report.splitlines() if line.startswith("compact:")})
    row["forms"] = "; ".join(forms) + (f"; {sum(1 for l in report.splitlines() if l.startswith('dense:'))} dense"
                                        if "dense:" in report else "")
    opset = re.search(r"opset: (\d+) → (\d+)", report)
    row["opset"] = f"{opset.group(1)} → {opset.group(2)}" if opset else "kept"
    for optimise in (True, False):
        want = session(stem + "-dense.onnx", optimise).run(None, feeds)
        row[f"ort{optimise}"] = deviation(session(stem + ".onnx", optimise).run(None, feeds), want)
    np.savez(stem + "-x.npz", **feeds)
    outputs = []
    for model in (stem + ".onnx", stem + "-dense.onnx"):
        run("eval", model, "--data", stem + "-x.npz", "--save-outputs", stem + "-out.npz", "--batch-size", "0")
        loaded = np.load(stem + "-out.npz")
        outputs.append([loaded[k] for k in sorted(loaded)])
    row["eval"] = all(np.array_equal(a, b) for a, b in zip(*outputs))
    if labels is not None:
        row["accuracy"] = float((session(stem + ".onnx", True).run(None, feeds)[0].argmax(1) == labels).mean())
    return row


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--pith", default=os.path.join(ROOT, ".build", "release", "pith"))
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    images, labels = mnist(10000)
    recipe = os.path.join(ROOT, "Fixtures", "recipes", "deep-compression-lenet.yaml")
    cases = [("LeNet-300-100", LENET, flags, {"input": images}, labels) for flags in (
        ["--quantize", "int8-channel"], ["--quantize", "int4-channel"], ["--cluster", "4"], ["--prune", "0.7", "--cluster", "4"],
        ["--recipe", recipe])]
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        pinned = pinned_lenet(os.path.join(folder, "lenet-opset12.onnx"))
        cases += [("LeNet-300-100 at opset 12, kept", pinned, flags, {"input": images}, labels) for flags in (
            ["--quantize", "int4-channel"], ["--cluster", "4"])]
        for path in rapidocr_models():
            name = os.path.basename(path)[:-len(".onnx")]
            for flags in (["--quantize", "int8-channel"], ["--quantize", "int4-channel"]):
                cases.append((name, path, flags, {"x": page(RAPIDOCR[name])}, None))
        for name, path, flags, feeds, truth in cases:
            row = measure(args.pith, folder, path, flags, feeds, truth)
            row["name"] = name
            row["flags"] = " ".join("deep-compression-lenet.yaml" if f == recipe else f for f in flags)
            rows.append(row)
            print(row, file=sys.stderr)
    lines = ["| model | compress flags | fp32 ONNX, bytes | `.pith`, bytes | compact ONNX, bytes | compact ÷ fp32 | opset | "
             "max \\|Δ\\| ÷ max \\|y\\|, onnxruntime (optimised / not) | `pith eval` = dense | stored as |",
             "|---|---|---:|---:|---:|---:|---|---|---|---|"]
    for r in rows:
        accuracy = f" (top-1 {100 * r['accuracy']:.2f}%)" if "accuracy" in r else ""
        lines.append(f"| {r['name']} | `{r['flags']}` | {r['fp32']:,} | {r['pith']:,} | {r['compact']:,} | **{r['compact'] / r['fp32']:.3f}**{accuracy} | "
                     f"{r['opset']} | {r['ortTrue']:.1e} / {r['ortFalse']:.1e} | {'yes' if r['eval'] else 'NO'} | {r['forms']} |")
    table = "\n".join(lines)
    print(table)
    if args.write:
        replace_section("compact", f"Measured {time.strftime('%Y-%m-%d')} on {platform.machine()}, {os.cpu_count()} cores, by "
                        f"`scripts/bench_compact.py --write` (onnxruntime {onnxruntime.__version__}).\n\n{table}")


if __name__ == "__main__":
    main()
