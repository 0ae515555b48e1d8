#!/usr/bin/env python3
"""Benchmark: Pith's lossless container against zstd -19, xz -9e and ZipNN, on every model Pith is tested on.

Issue 15: on every fixture and every real model used in tests (and the ONNX backend corpus), the lossless
container is smaller than `zstd -19`, `xz -9e` and ZipNN (byte mode, float32) of the model file, and its
tensor streams are smaller than ZipNN on the same weights.

Models: the fixtures (`Fixtures/lenet-300-100.*`, `Fixtures/onnx/*.onnx`, `Fixtures/keras/*.h5`), every
ONNX / HDF5 model of the wheels the tests fetch (`.cache/wheels`, `scripts/wheel_models.py`), and the
benchmark models of `.cache/bench`. For each: the file size; `zstd -19` and `xz -9e` of the whole file;
ZipNN (byte mode, float32) of the whole file (padded with zero bytes to a multiple of 4: ZipNN 0.5.4 does
not round-trip other lengths); a model with external data is the model file followed by its data files for
all three, as the container holds both. `pith compress -o` (lossless, no pass) — the whole container, and
its tensor streams alone (from the container's accounting; for a container in the whole-file form, from
`--per-tensor`), against ZipNN on the bytes of the same tensors, every dtype, concatenated in file order
(read with onnx / h5py). With `--corpus`, every `model.onnx` of the ONNX backend corpus (Debian
libonnx-testdata) too, summarised by file size (93 bytes to a few KB). Sizes only; the time of each compressor is
in the speed section. With --write, replaces the `lossless` section of docs/benchmarks.md.
Needs: zipnn, zstd, xz, onnx, h5py.
"""
import argparse
import json
import glob
import os
import re
import subprocess
import sys
import tempfile
import time
import warnings

import numpy as np

ROOT = os.path.normpath(os.path.join(os.path.dirname(__file__), ".."))
CORPUS = "/usr/share/libonnx-testdata/data"
sys.path.insert(0, os.path.join(ROOT, "Tests", "interop"))
sys.path.insert(0, os.path.join(ROOT, "Fixtures", "generate"))


def weights(path):
    """Every tensor of the model as one byte string, in file order: numbers little-endian in their own
    dtype, strings as their bytes — what the container's tensor streams hold."""
    if path.endswith(".onnx"):
        import onnx
        from onnx import numpy_helper
        from common import onnx_inventory
        model = onnx.load(path)
        arrays = []
        for _, p, kind in onnx_inventory(model):
            if kind == "tensor":
                # The bytes as the file stores them where it has them (types numpy has no dtype for —
                # float8, float4, int2 — and sub-byte types packed, as Pith stores them too).
                arrays.append(np.frombuffer(p.raw_data, np.uint8) if p.HasField("raw_data") else numpy_helper.to_array(p))
            elif kind == "sparse":
                # Pith stores a sparse tensor dense: its values at their positions among zeros.
                values = numpy_helper.to_array(p.values)
                dense = np.zeros(int(np.prod(p.dims)), values.dtype)
                indices = numpy_helper.to_array(p.indices)
                if indices.ndim == 2:
                    indices = np.ravel_multi_index(indices.T, tuple(p.dims))
                dense[indices] = values
                arrays.append(dense)
            elif kind in ("value_float", "value_floats"):
                arrays.append(np.asarray(p, np.float32))
            elif kind in ("value_int", "value_ints"):
                arrays.append(np.asarray(p, np.int64))
            elif kind in ("value_string", "value_strings"):
                arrays.append(np.asarray([p] if isinstance(p, bytes) else p, object))
    else:
        import h5py
        arrays = []
        with h5py.File(path, "r") as f:
            f.visititems(lambda name, item: arrays.append(item[()]) if isinstance(item, h5py.Dataset) else None)
    parts = []
    for a in arrays:
        a = np.asarray(a)
        if a.dtype.kind in "OSU":
            parts.extend(x if isinstance(x, bytes) else str(x).encode() for x in a.ravel())
        elif a.dtype.kind in "fiucb" and a.dtype.fields is None:
            parts.append(np.ascontiguousarray(a).astype(a.dtype.newbyteorder("<")).tobytes())
    return b"".join(parts)


ZIPNN_FAILED = set()


WHOLE = set()  # models whose container stores the source whole (format 1.5)


def zipnn_size(data, label=""):
    """ZipNN's compressed size of `data` (padded to a multiple of 4). When its output does not
    decompress to the input, the size is still counted (as the smaller, so against Pith) and the
    model marked."""
    import zipnn
    padded = data + b"\0" * (-len(data) % 4)
    if not padded:
        return 0
    z = zipnn.ZipNN(input_format="byte", bytearray_dtype="float32")
    compressed = z.compress(padded)
    if bytes(z.decompress(compressed)) != padded:
        ZIPNN_FAILED.add(label)
    return len(compressed)


def data_files(path):
    """The external data files an ONNX model names (`location`s beside it), in the order first named."""
    if not path.endswith(".onnx"):
        return []
    import onnx
    model = onnx.load(path, load_external_data=False)
    found = []
    for tensor in onnx.external_data_helper._get_all_tensors(model):
        for entry in tensor.external_data:
            if entry.key == "location":
                where = os.path.join(os.path.dirname(path), entry.value)
                if where not in found:
                    found.append(where)
    return found


def external_sizes(path, label=""):
    """Sizes of the model as the other compressors see it: the model file followed by its external
    data files (the container holds those too), then zstd, xz and ZipNN of those bytes."""
    with open(path, "rb") as f:
        data = f.read()
    for extra in data_files(path):
        with open(extra, "rb") as f:
            data += f.read()
    zstd = len(subprocess.run(["zstd", "-19", "-q", "-c"], input=data, capture_output=True, check=True).stdout)
    xz = len(subprocess.run(["xz", "-9e", "-T1", "-c"], input=data, capture_output=True, check=True).stdout)
    return len(data), zstd, xz, zipnn_size(data, label)


def container(pith, path, out):
    report = subprocess.run([pith, "compress", path, "-o", out, "--force"], capture_output=True, text=True)
    if report.returncode != 0:
        return None, None
    match = re.search(r"file: ([\d,]+) \+ ([\d,]+) tensor bytes", report.stdout)
    tensors = int(match.group(1).replace(",", "")) + int(match.group(2).replace(",", "")) if match else None
    size = os.path.getsize(out)
    if "stored whole:" in report.stdout:
        # The file is stored whole, its tensors in one frame with the rest: their share is measured
        # on the per-tensor form of the same model.
        WHOLE.add(path)
        per_tensor = subprocess.run([pith, "compress", path, "-o", out, "--force", "--per-tensor"], capture_output=True, text=True)
        match = re.search(r"file: ([\d,]+) \+ ([\d,]+) tensor bytes", per_tensor.stdout)
        tensors = int(match.group(1).replace(",", "")) + int(match.group(2).replace(",", "")) if match else None
    return size, tensors


def models():
    found = [os.path.join(ROOT, "Fixtures", "lenet-300-100.onnx"), os.path.join(ROOT, "Fixtures", "lenet-300-100.h5")]
    found += sorted(glob.glob(os.path.join(ROOT, "Fixtures", "onnx", "*.onnx")))
    found += sorted(glob.glob(os.path.join(ROOT, "Fixtures", "keras", "*.h5")))
    for pattern in ("*.onnx", "*.hdf5", "*.h5"):
        found += sorted(glob.glob(os.path.join(ROOT, ".cache", "wheels", "**", pattern), recursive=True))
    found += sorted(glob.glob(os.path.join(ROOT, ".cache", "bench", "*.onnx")))
    return found


def corpus_summary(pith, tmp):
    buckets = {}  # size class → [models, beats zstd, beats xz, beats ZipNN, beats all]
    losses = []
    paths = sorted(glob.glob(os.path.join(CORPUS, "*", "*", "model.onnx")))
    for path in paths:
        size, zstd, xz, zipped = external_sizes(path)
        ours, _ = container(pith, path, os.path.join(tmp, "c.pith"))
        if ours is None:
            continue
        label = "under 1 KB" if size < 1024 else ("1–10 KB" if size < 10240 else "10 KB and more")
        row = buckets.setdefault(label, [0, 0, 0, 0, 0])
        wins = [ours < zstd, ours < xz, ours < zipped]
        row[0] += 1
        for k, won in enumerate(wins):
            row[k + 1] += won
        row[4] += all(wins)
        if not all(wins):
            losses.append((ours - min(zstd, xz, zipped), os.path.relpath(path, CORPUS), size, ours, min(zstd, xz, zipped)))
    lines = [f"ONNX backend corpus ({sum(r[0] for r in buckets.values()):,} models):", "",
             "| file size | models | container < `zstd -19` | < `xz -9e` | < ZipNN | < all three |", "|---|---:|---:|---:|---:|---:|"]
    for label in ("under 1 KB", "1–10 KB", "10 KB and more"):
        if label in buckets:
            n, z, x, p, a = buckets[label]
            lines.append(f"| {label} | {n:,} | {z:,} | {x:,} | {p:,} | {a:,} |")
    losses.sort()
    if losses:
        worst = losses[-1]
        lines.append("")
        lines.append(f"The largest loss: `{worst[1]}` ({worst[2]:,} bytes): container {worst[3]:,} bytes against {worst[4]:,}.")
    return "\n".join(lines)


def peak_and_time(command):
    """Wall seconds and peak resident memory (bytes) of one run of `command`, from GNU time."""
    start = time.perf_counter()
    result = subprocess.run(["/usr/bin/time", "-f", "%M", *command], capture_output=True, text=True, check=True)
    return time.perf_counter() - start, int(result.stderr.strip().splitlines()[-1]) * 1024


def speed(pith, path, runs):
    """Lossless compress of `path` by Pith (the whole command: read, encode, write, flush) against
    ZipNN compressing the same tensors' bytes (all float32 here) already in memory, in the same run, median of `runs`;
    Pith's peak memory for lossless compression and for k-means, int8, int4 and fp16."""
    import zipnn
    raw = weights(path)
    z = zipnn.ZipNN(input_format="byte", bytearray_dtype="float32")
    size = os.path.getsize(path)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "m.pith")
        pith_times, zipnn_times, zipnn_command_times, peaks = [], [], [], []
        # ZipNN as a command, as `pith compress` is timed: start Python, import zipnn, read the
        # weights' file, compress, write the output.
        weights_file = os.path.join(tmp, "weights.bin")
        with open(weights_file, "wb") as f:
            f.write(raw)
        zipnn_command = [sys.executable, "-c",
                         "import sys, zipnn\n"
                         "data = open(sys.argv[1], 'rb').read()\n"
                         "out = zipnn.ZipNN(input_format='byte', bytearray_dtype='float32').compress(data)\n"
                         "open(sys.argv[2], 'wb').write(out)", weights_file, os.path.join(tmp, "weights.znn")]
        for _ in range(runs):
            time.sleep(0.25)
            seconds, peak = peak_and_time([pith, "compress", path, "-o", out, "--force"])
            pith_times.append(seconds)
            peaks.append(peak)
            time.sleep(0.25)
            start = time.perf_counter()
            z.compress(raw)
            zipnn_times.append(time.perf_counter() - start)
            time.sleep(0.25)
            zipnn_command_times.append(peak_and_time(zipnn_command)[0])
        # Pith's own work in one process (read, encode in memory), as ZipNN is timed.
        inproc = json.loads(subprocess.run([pith, "bench", "lossless", path, "--runs", str(runs)],
                                           capture_output=True, text=True, check=True).stdout)
        # Peak memory of the lossy settings, median of three runs each.
        lossy = {}
        for label, flags in (("k-means 5 bits", ["--cluster", "5"]), ("int8 per channel", ["--quantize", "int8-channel"]),
                             ("int8 per tensor", ["--quantize", "int8"]), ("int4 per channel", ["--quantize", "int4-channel"]),
                             ("fp16", ["--quantize", "fp16"])):
            peaks_of = [peak_and_time([pith, "compress", path, "-o", out, "--force", *flags])[1] for _ in range(3)]
            lossy[label] = sorted(peaks_of)[1]
    median = lambda xs: sorted(xs)[len(xs) // 2]
    name = os.path.relpath(path, ROOT).replace(".cache/wheels/", "").replace(".cache/bench/", "")
    lines = [f"Lossless compress of `{name}` ({size:,} bytes; {len(raw):,} bytes of tensors), median of {runs} runs, "
             "side by side in one run:", "",
             "| | seconds | MB/s of the model | peak memory | ÷ model size |", "|---|---:|---:|---:|---:|",
             f"| `pith compress` (whole command: read, encode on 2 cores, write, flush) | {median(pith_times):.3f} | "
             f"{size / median(pith_times) / 1e6:.0f} | {median(peaks) / 2**20:,.0f} MiB | {median(peaks) / size:.2f}× |",
             f"| `pith bench lossless`: read the model and encode the container in memory, in one process (2 cores) | "
             f"{inproc['load_seconds'] + inproc['encode_seconds']:.3f} | {inproc['megabytes_per_second']:.0f} | — | — |",
             f"| ZipNN `compress` of the weights, in memory (its default threads) | {median(zipnn_times):.3f} | "
             f"{len(raw) / median(zipnn_times) / 1e6:.0f} | — | — |",
             f"| ZipNN as a command (Python starts, imports zipnn, reads the weights' file, compresses, writes) | "
             f"{median(zipnn_command_times):.3f} | {len(raw) / median(zipnn_command_times) / 1e6:.0f} | — | — |"]
    for label, peak in lossy.items():
        lines.append(f"| `pith compress` with {label} | — | — | {peak / 2**20:,.0f} MiB | {peak / size:.2f}× |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--pith", default=os.path.join(ROOT, ".build", "release", "pith"))
    parser.add_argument("--corpus", action="store_true", help="also every model of the ONNX backend corpus (summary)")
    parser.add_argument("--write", action="store_true")
    parser.add_argument("--speed", metavar="MODEL", help="time lossless compress of MODEL against ZipNN instead (section `lossless-speed`)")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    if args.speed:
        warnings.filterwarnings("ignore")
        text = speed(args.pith, args.speed, args.runs)
        print(text)
        if args.write:
            from benchdoc import replace_section
            replace_section("lossless-speed", f"Measured {time.strftime('%Y-%m-%d')} by `scripts/bench_lossless.py --speed MODEL --write` "
                            f"(release build, 2 cores).\n\n{text}")
        return
    warnings.filterwarnings("ignore")
    import zipnn
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for path in models():
            name = os.path.relpath(path, ROOT).replace(".cache/wheels/", "").replace(".cache/bench/", "")
            size, zstd, xz, zipped = external_sizes(path, name)
            ours, tensors = container(args.pith, path, os.path.join(tmp, "m.pith"))
            if ours is None:
                print(f"{path}: pith compress failed; left out", file=sys.stderr)
                continue
            raw = weights(path)
            zipped_weights = zipnn_size(raw, name)
            rows.append((name, size, zstd, xz, zipped, ours, len(raw), zipped_weights, tensors, path in WHOLE))
            print(rows[-1], flush=True)
        corpus = corpus_summary(args.pith, tmp) if args.corpus else None
    lines = ["| model | file | `zstd -19` | `xz -9e` | ZipNN | **pith container** | ÷ best other | tensor bytes | ZipNN on the tensors | **pith tensor streams** |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, size, zstd, xz, zipped, ours, raw, zipped_weights, tensors, whole in rows:
        best = min(zstd, xz, zipped)
        mark = ("" if ours < best else " ✗") + (" ʷ" if whole else "")
        streams = "—" if not raw else f"**{tensors:,}**" + ("" if tensors < zipped_weights else " ✗") + (" ʷ" if whole else "")
        failed = "†" if name in ZIPNN_FAILED else ""
        lines.append(f"| `{name}` | {size:,} | {zstd:,} | {xz:,} | {zipped:,}{failed} | **{ours:,}**{mark} | {ours / best:.3f} | {raw:,} | "
                     f"{zipped_weights:,} | {streams} |")
    won = sum(1 for r in rows if r[5] < min(r[2], r[3], r[4]))
    streams_won = sum(1 for r in rows if r[6] and r[8] < r[7])
    with_weights = sum(1 for r in rows if r[6])
    summary = (f"The container is smaller than all three on {won} of {len(rows)} models; its tensor streams are smaller than "
               f"ZipNN on the same tensors' bytes on {streams_won} of {with_weights} (✗ marks a loss).")
    if any(r[9] for r in rows):
        summary += (" ʷ The container stores the model file whole (format 1.5's whole-file form: one zstd frame made with "
                    "Pith's dictionary for the format, of the file or, since 1.6, of an ONNX model's skeleton followed by its "
                    "tensors' data), smaller than its per-tensor form; the tensor streams column is then "
                    "the per-tensor form's (`pith compress --per-tensor`).")
    if any(data_files(p) for p in models()):
        summary += (" A model with external data is compressed by the others as its file followed by its data files, which "
                    "the container holds too.")
    if ZIPNN_FAILED:
        summary += (" † ZipNN's output did not decompress to its input (whole file or weights); its size is "
                    "counted all the same.")
    table = "\n".join(lines)
    print(table)
    print(summary)
    if corpus:
        print(corpus)
    if args.write:
        from benchdoc import replace_section
        from importlib.metadata import version as package_version
        version = package_version("zipnn")
        body = (f"Measured {time.strftime('%Y-%m-%d')} by `scripts/bench_lossless.py --write{' --corpus' if corpus else ''}` "
                f"(zstd and xz at their strongest levels, one thread; ZipNN {version} byte mode, float32).\n\n{table}\n\n{summary}")
        if corpus:
            body += "\n\n" + corpus
        replace_section("lossless", body)


if __name__ == "__main__":
    main()
