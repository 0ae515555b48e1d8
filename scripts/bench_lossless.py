#!/usr/bin/env python3
"""Benchmark: Pith's lossless container against zstd -19, xz -9 and ZipNN on real models.

Issue 4: on the fp32 fixtures and the real models used in tests, the lossless container is smaller
than `zstd -19` of the same model file and smaller than ZipNN on the same weights.

For each model: the file size; `zstd -19` and `xz -9e` of the whole file; `pith compress -o` (lossless,
no pass) — the whole container, and the bytes of its tensor streams alone (from the container's
accounting); ZipNN (byte mode, float32) on the model's weights concatenated as raw float32 bytes, read
with onnx / h5py. Sizes only; times are in the other sections. With --write, replaces the lossless
section of docs/benchmarks.md. Needs zipnn, zstd, xz.
"""
import argparse
import glob
import io
import os
import re
import subprocess
import sys
import tempfile
import time
import warnings

import numpy as np

ROOT = os.path.normpath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.join(ROOT, "Tests", "interop"))
sys.path.insert(0, os.path.join(ROOT, "Fixtures", "generate"))


def weights(path):
    """The model's fp32 tensors as one byte string, in file order."""
    if path.endswith(".onnx"):
        import onnx
        from onnx import numpy_helper
        from common import onnx_inventory
        model = onnx.load(path)
        arrays = [numpy_helper.to_array(p) for _, p, kind in onnx_inventory(model) if kind == "tensor"]
    else:
        import h5py
        arrays = []
        with h5py.File(path, "r") as f:
            group = f["model_weights"] if "model_weights" in f else f
            for layer in group.attrs["layer_names"]:
                layer = layer.decode() if isinstance(layer, bytes) else layer
                for w in group[layer].attrs["weight_names"]:
                    w = w.decode() if isinstance(w, bytes) else w
                    arrays.append(group[layer][w][()])
    return b"".join(a.astype(np.float32).tobytes() for a in arrays if a.dtype == np.float32)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--pith", default=os.path.join(ROOT, ".build", "release", "pith"))
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    import zipnn
    models = [os.path.join(ROOT, "Fixtures", "lenet-300-100.onnx"), os.path.join(ROOT, "Fixtures", "lenet-300-100.h5")]
    models += sorted(glob.glob(os.path.join(ROOT, ".cache", "wheels", "**", "*.onnx"), recursive=True))
    models += sorted(glob.glob(os.path.join(ROOT, ".cache", "wheels", "**", "*.hdf5"), recursive=True))
    models += sorted(glob.glob(os.path.join(ROOT, ".cache", "bench", "*.onnx")))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for path in models:
            size = os.path.getsize(path)
            zstd = len(subprocess.run(["zstd", "-19", "-q", "-c", path], capture_output=True, check=True).stdout)
            xz = len(subprocess.run(["xz", "-9e", "-c", path], capture_output=True, check=True).stdout)
            out = os.path.join(tmp, "m.pith")
            report = subprocess.run([args.pith, "compress", path, "-o", out, "--force"], capture_output=True, text=True, check=True).stdout
            container = os.path.getsize(out)
            tensor_bytes = int(re.search(r"file: ([\d,]+) \+ ([\d,]+) tensor bytes", report).group(2).replace(",", "")) + \
                int(re.search(r"file: ([\d,]+) \+", report).group(1).replace(",", ""))
            raw = weights(path)
            zipped = len(zipnn.ZipNN(input_format="byte", bytearray_dtype="float32").compress(raw))
            name = os.path.relpath(path, ROOT).replace(".cache/wheels/", "").replace(".cache/bench/", "")
            rows.append((name, size, zstd, xz, container, len(raw), zipped, tensor_bytes))
            print(rows[-1], flush=True)
    lines = ["| model | file | `zstd -19` | `xz -9e` | **pith container** | fp32 weights | ZipNN on weights | **pith tensor streams** |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name, size, zstd, xz, container, raw, zipped, tensors in rows:
        lines.append(f"| `{name}` | {size:,} | {zstd:,} | {xz:,} | **{container:,}** ({size / container:.3f}×) | {raw:,} | {zipped:,} | **{tensors:,}** |")
    table = "\n".join(lines)
    print(table)
    if args.write:
        from benchdoc import replace_section
        replace_section("lossless", (f"Measured {time.strftime('%Y-%m-%d')} by `scripts/bench_lossless.py --write` "
                   f"(zstd and xz at their strongest levels; ZipNN {getattr(zipnn, '__version__', '')} byte mode, float32).\n\n{table}"))


if __name__ == "__main__":
    main()
