"""Golden containers: one `.pith` per container format version, written by the last Pith that wrote
that version, which every later Pith must keep reading and restoring to the same tensors.

    python3 Fixtures/generate/make_golden.py --build          # builds the old writers, then writes
    python3 Fixtures/generate/make_golden.py --writer 1.4=.build/debug/pith [--writer 1.0=… …]

Writers (docs/container-format.md, "Version history"):
  1.0  commit 06fd85d, the last before 1.1 (float-split, pooled small tensors, Huffman skeleton)
  1.1  commit c994c89, the last before 1.2 (zstd manifest and skeleton)
  1.2  commit bac5088, the last before 1.3 (`factored` encoding)
  1.3  commit 3b70f8c, the last before 1.4 (factors stored as codes)
  1.4  commit 656a733, the last before 1.5 (zstd element streams, pooled dense slices, packed streams)
  1.5  commit 571de32, the last before 1.6 (the whole-file form, `transposed` tensors)
  1.6  the Pith this script is given (`blocks` tensors)
`--build` extracts the old commits into .build/golden-writers/<commit>/ (git archive) and builds
their `pith` there (a few minutes each); the current one is `.build/debug/pith`.

For every version it writes, into Fixtures/golden/:
  v<version>-lenet-mixed.pith      LeNet-300-100 with fc1 pruned to 10% and 5-bit k-means (sparse with
                                   codebook values), fc2 int8 per output channel, fc3 float16, the biases
                                   lossless (pooled float-split streams)
  v<version>-subgraphs.pith        Fixtures/onnx/subgraphs.onnx, lossless (If / Loop / Scan bodies and a
                                   function in the skeleton)
  v<version>-keras2-cnn.pith       Fixtures/keras/keras2-cnn.h5, lossless (a Keras container: origins)
and for 1.2 also
  v1.2-lenet-factored.pith         LeNet with fc1 split by a rank-8 SVD and fc2 as a tensor train
                                   (`factored`, new in 1.2), fc3 float16
and for 1.3 also
  v1.3-lenet-factored-codes.pith   LeNet with fc1 split by a whitened rank-16 SVD whose factors are
                                   entropy-quantized (stored as quantized codes and CSR, new in 1.3), fc2
                                   entropy-quantized; calibrated on 64 seeded uniform random samples
and for 1.4 also
  v1.4-lenet-factored-codes.pith   the 1.3 recipe again (its coded streams now packed)
  v1.4-stft-basis.pith             Fixtures/onnx/stft-frontend.onnx, lossless (the windowed DFT basis as
                                   one zstd frame, the int64 constants in one pooled dense stream)
and for 1.5 also (its subgraphs container is in the whole-file form: the file is 1,390 bytes)
  v1.5-stft-basis.pith             the same model, its basis now `transposed` (one zstd frame, column by column)
  v1.5-plain-whole.pith            Fixtures/keras/plain.h5, lossless, in the whole-file form (`hdf5-1`)
and for 1.6 also (its subgraphs container is in the whole-file form with dictionary 3, `onnx-skeleton-1`)
  v1.6-blocks.pith                 a MatMul weight of 64 × 1,024 float32 generated here (seeded normal
                                   values, each 16 rows with a scale of its own: values of bfloat16
                                   precision would go to zstd frames of the split fields instead), lossless: stored as `blocks` of 16 rows. Its source is not a
                                   fixture, so the test checks it against this file's record only.
and expected.json: per container, its format version (as its header says) and every tensor its own
writer's Pith restores, as (name, dtype, shape, FNV-1a 64 of the little-endian bytes), read from the
restored file with onnx / h5py, never with Pith. Needs: numpy, onnx, h5py.
"""
import argparse
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from common import FIXTURES, onnx_inventory  # noqa: E402

ROOT = os.path.normpath(os.path.join(FIXTURES, ".."))
OUT = os.path.join(FIXTURES, "golden")
WRITERS = {"1.0": "06fd85d", "1.1": "c994c89", "1.2": "bac5088", "1.3": "3b70f8c", "1.4": "656a733", "1.5": "571de32"}
CURRENT = "1.6"

MIXED_RECIPE = """# fc1 pruned to 10% then 5-bit k-means (sparse, codebook values), fc2 int8 per output channel,
# fc3 float16; the biases stay lossless.
seed: 1510
passes:
  - prune: {sparsity: 0.9, scope: tensor}
    select: {names: ["fc1.weight"]}
  - cluster: {bits: 5, init: linear}
    select: {names: ["fc1.weight"]}
  - quantize: {format: int8, granularity: channel}
    select: {names: ["fc2.weight"]}
  - quantize: {format: fp16}
    select: {names: ["fc3.weight"]}
  - encode: {index_bits: 5}
"""

FACTORED_CODES_RECIPE = """# fc1 split by a whitened rank-16 SVD, its factors entropy-quantized (format 1.3: a factor
# stored as codes); fc2 entropy-quantized.
seed: 1510
passes:
  - factorize: {method: svd, rank: 16, whiten: true}
    select: {names: ["fc1.weight"]}
  - entropy_quantize: {lambda: 0.01}
    select: {names: ["fc1.weight", "fc2.weight"]}
"""

FACTORED_RECIPE = """# fc1 split by a rank-8 SVD (`factored`, format 1.2), fc2 as a tensor train, fc3 float16.
seed: 1510
passes:
  - factorize: {method: svd, rank: 8}
    select: {names: ["fc1.weight"]}
  - factorize: {method: tt, tt_rank: 4}
    select: {names: ["fc2.weight"]}
  - quantize: {format: fp16}
    select: {names: ["fc3.weight"]}
"""


def fnv1a64(data):
    h = 0xCBF29CE484222325
    for byte in data:
        h = ((h ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return "%016x" % h


def onnx_tensors(path):
    import onnx
    from onnx import numpy_helper

    model = onnx.load(path)
    result = []
    for name, value, kind in onnx_inventory(model):
        if kind == "tensor":
            array = numpy_helper.to_array(value)
        elif kind == "sparse":
            values = numpy_helper.to_array(value.values)
            indices = numpy_helper.to_array(value.indices)
            dense = np.zeros(int(np.prod(value.dims)), values.dtype)
            flat = indices if indices.ndim == 1 else np.ravel_multi_index(indices.T, tuple(value.dims))
            dense[flat] = values
            array = dense.reshape(tuple(value.dims))
        else:  # a Constant's value_float(s), value_int(s), value_string(s)
            dtype = {"value_float": np.float32, "value_floats": np.float32, "value_int": np.int64, "value_ints": np.int64}.get(kind, object)
            array = np.array(value, dtype)
        result.append(entry(name, array))
    return result


def entry(name, array):
    if array.dtype == object:  # strings: each element's bytes, as Pith's dense form has none
        data = b"".join(struct.pack("<I", len(s)) + (s if isinstance(s, bytes) else s.encode()) for s in array.ravel())
        dtype = "string"
    else:
        data = np.ascontiguousarray(array).astype(array.dtype.newbyteorder("<")).tobytes()
        dtype = {"float32": "float32", "float64": "float64", "float16": "float16", "int8": "int8", "int16": "int16",
                 "int32": "int32", "int64": "int64", "uint8": "uint8", "uint16": "uint16", "uint32": "uint32",
                 "uint64": "uint64", "bool": "bool"}[array.dtype.name]
    return {"name": name, "dtype": dtype, "shape": list(array.shape), "fnv1a64": fnv1a64(data)}


def hdf5_tensors(path, optimizer):
    """Every numeric dataset of the restored file; optimizer state only with `optimizer` (containers
    of format 1.4 on keep it; older ones never held it)."""
    import h5py

    result = []
    with h5py.File(path, "r") as f:
        def visit(name, item):
            if isinstance(item, h5py.Dataset) and item.dtype.kind in "fiub" and (optimizer or not name.startswith("optimizer_weights")):
                result.append(entry(name, item[()]))
        f.visititems(visit)
    return sorted(result, key=lambda e: e["name"])


def blocks_source(path):
    """The 1.6 `blocks` source: one MatMul weight whose rows drift, every 16 rows a scale of their own."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    rng = np.random.default_rng(1610)
    scales = np.repeat(np.array([1e-3, 1e-1, 10, 1e3], dtype=np.float32), 16)[:, None]
    weight = rng.standard_normal((64, 1024)).astype(np.float32) * scales
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])], "blocks",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 64])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1024])], [numpy_helper.from_array(weight, "w")])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)


def build_writers():
    for version, commit in WRITERS.items():
        folder = os.path.join(ROOT, ".build", "golden-writers", commit)
        if not os.path.exists(os.path.join(folder, "Package.swift")):
            os.makedirs(folder, exist_ok=True)
            archive = subprocess.run(["git", "-C", ROOT, "archive", commit], capture_output=True, check=True).stdout
            subprocess.run(["tar", "-x", "-C", folder], input=archive, check=True)
        subprocess.run(["swift", "build", "--product", "pith"], cwd=folder, check=True)
    return {v: os.path.join(ROOT, ".build", "golden-writers", c, ".build", "debug", "pith") for v, c in WRITERS.items()}


def run(binary, *arguments):
    result = subprocess.run([binary, *arguments], capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"{binary} {' '.join(arguments)}: exit {result.returncode}\n{result.stderr}")


def header_version(path):
    with open(path, "rb") as f:
        head = f.read(12)
    if head[8] == 0x57:  # the whole-file form (1.5) has no version fields; its dictionary 3 is 1.6's
        return "1.6" if head[9] == 3 else "1.5"
    return "%d.%d" % struct.unpack_from("<HH", head, 8)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build", action="store_true", help=f"build the old writers (and use .build/debug/pith for {CURRENT})")
    parser.add_argument("--writer", action="append", default=[], help="VERSION=BINARY")
    args = parser.parse_args()
    writers = {}
    if args.build:
        writers.update(build_writers())
        writers[CURRENT] = os.path.join(ROOT, ".build", "debug", "pith")
    for item in args.writer:
        version, binary = item.split("=", 1)
        writers[version] = binary
    if not writers:
        parser.error("give --build or --writer VERSION=BINARY")

    os.makedirs(OUT, exist_ok=True)
    expected_path = os.path.join(OUT, "expected.json")
    expected = json.load(open(expected_path)) if os.path.exists(expected_path) else {}
    with tempfile.TemporaryDirectory() as scratch:
        recipe = os.path.join(scratch, "mixed.yaml")
        with open(recipe, "w") as f:
            f.write(MIXED_RECIPE)
        factored = os.path.join(scratch, "factored.yaml")
        with open(factored, "w") as f:
            f.write(FACTORED_RECIPE)
        factored_codes = os.path.join(scratch, "factored-codes.yaml")
        with open(factored_codes, "w") as f:
            f.write(FACTORED_CODES_RECIPE)
        calibration = os.path.join(scratch, "calibration.npy")
        np.save(calibration, np.random.default_rng(1510).random((64, 784), dtype=np.float32))
        for version, binary in sorted(writers.items()):
            jobs = [
                ("lenet-mixed", os.path.join(FIXTURES, "lenet-300-100.onnx"), ["--recipe", recipe], "onnx"),
                ("subgraphs", os.path.join(FIXTURES, "onnx", "subgraphs.onnx"), [], "onnx"),
                ("keras2-cnn", os.path.join(FIXTURES, "keras", "keras2-cnn.h5"), [], "h5"),
            ]
            if version == "1.2":
                jobs.append(("lenet-factored", os.path.join(FIXTURES, "lenet-300-100.onnx"),
                             ["--recipe", factored], "onnx"))
            if version in ("1.3", "1.4"):
                jobs.append(("lenet-factored-codes", os.path.join(FIXTURES, "lenet-300-100.onnx"),
                             ["--recipe", factored_codes, "--calibration", calibration], "onnx"))
            if version in ("1.4", "1.5"):
                jobs.append(("stft-basis", os.path.join(FIXTURES, "onnx", "stft-frontend.onnx"), [], "onnx"))
            if version == "1.5":
                jobs.append(("plain-whole", os.path.join(FIXTURES, "keras", "plain.h5"), [], "h5"))
            if version == "1.6":
                blocks = os.path.join(scratch, "blocks.onnx")
                blocks_source(blocks)
                jobs.append(("blocks", blocks, [], "onnx"))
            for name, source, flags, extension in jobs:
                container = os.path.join(OUT, f"v{version}-{name}.pith")
                run(binary, "compress", source, "-o", container, "--force", *flags)
                restored = os.path.join(scratch, f"{name}.{extension}")
                run(binary, "restore", container, "-o", restored, "--force")
                keeps_optimizer = tuple(map(int, version.split("."))) >= (1, 4)
                tensors = onnx_tensors(restored) if extension == "onnx" else hdf5_tensors(restored, keeps_optimizer)
                # A generated source (not a fixture) is recorded by name only, and not compared.
                fixture = source.startswith(FIXTURES)
                expected[os.path.basename(container)] = {
                    "version": header_version(container), "source": os.path.relpath(source, FIXTURES) if fixture else os.path.basename(source),
                    "restores_to": extension, "lossless": not flags and fixture, "tensors": tensors}
                print(f"{container}: format {header_version(container)}, {os.path.getsize(container):,} bytes, {len(tensors)} tensors")
    with open(expected_path, "w") as f:
        json.dump(expected, f, indent=1, sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    main()
