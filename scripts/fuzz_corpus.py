#!/usr/bin/env python3
"""Seed corpora for the fuzz targets (Fuzz/), from the fixtures; `make fuzz` runs it.

    scripts/fuzz_corpus.py --pith .build/debug/pith --out .build/fuzz/corpus

Writes one folder per target:
  onnx/       every ONNX fixture of at most 128 KiB (Fixtures/onnx, Fixtures/broken, regressions)
  hdf5/       every HDF5 fixture of at most 128 KiB (Fixtures/keras, Fixtures/broken)
  container/  the golden and broken containers, and containers `pith compress` makes from the small
              fixtures with one recipe per encoding (lossless, sparse, codebook, int8/int4 per channel,
              fp16, bf16, factored), each also with its manifest as plain JSON (what the fuzzer
              mutates best: FuzzContainer fixes the checksums of plain manifests)
  huffman/    every Huffman stream of those containers in FuzzHuffman's input layout, and a few
              round-trip inputs
Files under Fixtures/fuzz/<target>/ (crashes the fuzzer found, now regression fixtures) are added to
their target's folder. Existing corpus files are kept (what earlier runs learned).
"""
import argparse
import glob
import os
import shutil
import struct
import subprocess
import sys
import tempfile

ROOT = os.path.normpath(os.path.join(os.path.dirname(__file__), ".."))
FIXTURES = os.path.join(ROOT, "Fixtures")
sys.path.insert(0, os.path.join(FIXTURES, "generate"))
from pith_container import Container, plain  # noqa: E402

LIMIT = 128 * 1024

RECIPES = [
    ("lossless", []),
    ("sparse", ["--prune", "0.7"]),
    ("sparse-codebook", ["--prune", "0.6", "--cluster", "4"]),
    ("codebook-channel", ["--cluster", "3", "--cluster-granularity", "channel"]),
    ("int8-channel", ["--quantize", "int8-channel"]),
    ("int4", ["--quantize", "int4"]),
    ("fp16", ["--quantize", "fp16"]),
    ("bf16", ["--quantize", "bf16"]),
    ("svd", ["--factorize", "svd", "--rank", "2"]),
    ("tt", ["--factorize", "tt", "--tt-rank", "2"]),
]


def small(paths):
    return [p for p in paths if os.path.isfile(p) and not os.path.islink(p) and os.path.getsize(p) <= LIMIT]


def copy(paths, folder, prefix=""):
    os.makedirs(folder, exist_ok=True)
    for path in paths:
        shutil.copyfile(path, os.path.join(folder, prefix + os.path.basename(path)))


def huffman_seed(container, index):
    """FuzzHuffman's decoding layout for stream `index`: mode 0, options (bit 0: 16-bit symbols,
    run length 64), the number of code lengths, the lengths two per byte, the symbol count, the block."""
    s = container.manifest["streams"][index]
    lengths = [int(c, 16) for c in s["code_lengths"]]
    wide = s.get("symbol_bits") == 16
    if s["symbols"] > 0xFFFF or len(lengths) > (4096 if wide else 255):
        return None
    head = bytes([0, (63 << 1) | int(wide)])
    head += struct.pack("<H", len(lengths)) if wide else bytes([len(lengths)])
    packed = bytes((lengths[i] | (lengths[i + 1] << 4 if i + 1 < len(lengths) else 0)) for i in range(0, len(lengths), 2))
    return head + packed + struct.pack("<H", s["symbols"]) + container.stream_bytes(index)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pith", required=True, help="the pith binary that compresses the seed models")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    out = args.out

    onnx = small(glob.glob(os.path.join(FIXTURES, "onnx", "*.onnx")) + glob.glob(os.path.join(FIXTURES, "broken", "*.onnx")))
    hdf5 = small(glob.glob(os.path.join(FIXTURES, "keras", "*.h5")) + glob.glob(os.path.join(FIXTURES, "broken", "*.h5")))
    copy(onnx, os.path.join(out, "onnx"))
    copy(hdf5, os.path.join(out, "hdf5"))

    containers = os.path.join(out, "container")
    os.makedirs(containers, exist_ok=True)
    fixed = small(glob.glob(os.path.join(FIXTURES, "golden", "*.pith")) + glob.glob(os.path.join(FIXTURES, "broken-containers", "*.pith")))
    copy(fixed, containers)
    models = [m for m in onnx + hdf5 if "broken" not in m] + [os.path.join(FIXTURES, "lenet-300-100.onnx")]
    made = 0
    with tempfile.TemporaryDirectory() as scratch:
        for model in models:
            for name, flags in RECIPES:
                target = os.path.join(scratch, f"{os.path.basename(model)}.{name}.pith")
                run = subprocess.run([args.pith, "compress", model, "-o", target, "--force", "--allow-empty"] + flags,
                                     capture_output=True, text=True)
                if run.returncode != 0 or os.path.getsize(target) > LIMIT:
                    continue
                shutil.copyfile(target, os.path.join(containers, os.path.basename(target)))
                made += 1
    for path in sorted(glob.glob(os.path.join(containers, "*.pith"))):
        if path.endswith(".plain.pith"):
            continue
        try:
            plain(path, path[: -len(".pith")] + ".plain.pith")
        except Exception:  # a broken container may not even have a readable manifest
            continue

    huffman = os.path.join(out, "huffman")
    os.makedirs(huffman, exist_ok=True)
    count = 0
    for path in sorted(glob.glob(os.path.join(containers, "*.plain.pith"))):
        try:
            container = Container.read(path)
            streams = container.manifest["streams"]
        except Exception:
            continue
        for index, s in enumerate(streams):
            if isinstance(s, dict) and s.get("coding") == "huffman":
                try:
                    seed = huffman_seed(container, index)
                except Exception:
                    continue
                if seed:
                    with open(os.path.join(huffman, f"{os.path.basename(path)}.{index}"), "wb") as f:
                        f.write(seed)
                    count += 1
    for i, text in enumerate([b"\x01\x0aabracadabra", b"\x03\x04" + bytes(range(256)) * 2, b"\x01\x00" + b"\x00" * 64]):
        with open(os.path.join(huffman, f"round-trip-{i}"), "wb") as f:
            f.write(text)

    for target in ("onnx", "hdf5", "container", "huffman"):
        copy(small(glob.glob(os.path.join(FIXTURES, "fuzz", target, "*"))), os.path.join(out, target), prefix="regression-")
    print(f"seeds: {len(onnx)} onnx, {len(hdf5)} hdf5, {len(fixed)} fixed + {made} made containers (and plain copies), {count} huffman streams")


if __name__ == "__main__":
    main()
