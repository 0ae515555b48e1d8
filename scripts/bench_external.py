#!/usr/bin/env python3
"""Benchmark (not a CI test): `pith compress`, `pith inspect` and `pith restore` of an ONNX model of
about 3 GB whose weights are in an external data file (issue 15, part 4).

The model is generated streaming, so Python never holds the weights: four MatMul layers of float32
H×H weights (H = 13,696 for 3 GB: 750 MB each, rows a multiple of 64 bytes, so every tensor starts
64-byte aligned in the data file), in one data file `bench-external.onnx.data` beside the model, laid
out as `onnx.save_model(…, save_as_external_data=True, all_tensors_to_one_file=True)` lays it out
(one after another, from offset 0). The values are normal (σ = 0.02, seeded) with the low 16 bits of
each float cleared (bfloat16 precision), so lossless coding has something to gain; a small bias and a
Relu sit between the layers.

Each command runs once under `/usr/bin/time -v` ("Maximum resident set size", elapsed time); while it
runs, its /proc/PID/status is sampled every 20 ms for RssAnon (memory the process allocated) and
RssFile (pages of mapped files: the model, the data file, the container), whose peaks are reported
beside the total. compress is lossless (no recipe), restore writes into a folder of its own; the
restored model and data file are compared byte for byte with the source, and onnxruntime runs the
source and the restored model on one seeded input, whose outputs must be equal. The generated files
are deleted afterwards (unless --keep). With --write, updates the `external-data` section of
docs/benchmarks.md. Exits 1 when a check fails or a command's peak RSS reaches 1 GiB.
"""
import argparse
import hashlib
import os
import platform
import re
import shutil
import subprocess
import sys
import threading
import time

import numpy as np
import onnx
from onnx import TensorProto, helper

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchdoc import ROOT, replace_section  # noqa: E402

LAYERS = 4
DATA = "bench-external.onnx.data"
LIMIT = 1 << 30  # each command's peak RSS must stay under 1 GiB


def generate(folder, hidden, seed=0):
    """Writes `bench-external.onnx` and its data file into `folder`, a block of rows at a time."""
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(seed)
    initializers, nodes, offset = [], [], 0
    block = max(1, (64 << 20) // (hidden * 4))  # ~64 MB of rows at a time
    with open(os.path.join(folder, DATA), "wb") as data:
        for layer in range(LAYERS):
            name = f"w{layer}"
            for start in range(0, hidden, block):
                rows = min(block, hidden - start)
                values = (rng.standard_normal((rows, hidden), dtype=np.float32) * 0.02)
                values.view(np.uint32)[...] &= np.uint32(0xFFFF0000)
                data.write(values.tobytes())
            length = hidden * hidden * 4
            tensor = TensorProto(name=name, data_type=TensorProto.FLOAT, dims=[hidden, hidden], data_location=TensorProto.EXTERNAL)
            for key, value in [("location", DATA), ("offset", str(offset)), ("length", str(length))]:
                entry = tensor.external_data.add()
                entry.key, entry.value = key, value
            offset += length
            bias = helper.make_tensor(f"b{layer}", TensorProto.FLOAT, [hidden], (rng.standard_normal(hidden) * 0.01).astype(np.float32).tobytes(), raw=True)
            initializers += [tensor, bias]
            x = "X" if layer == 0 else f"a{layer - 1}"
            nodes += [helper.make_node("MatMul", [x, name], [f"m{layer}"]), helper.make_node("Add", [f"m{layer}", f"b{layer}"], [f"s{layer}"])]
            nodes.append(helper.make_node("Relu" if layer < LAYERS - 1 else "Identity", [f"s{layer}"], [f"a{layer}" if layer < LAYERS - 1 else "Y"]))
    graph = helper.make_graph(
        nodes, "bench-external", [helper.make_tensor_value_info("X", TensorProto.FLOAT, [1, hidden])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [1, hidden])], initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    path = os.path.join(folder, "bench-external.onnx")
    with open(path, "wb") as f:
        f.write(model.SerializeToString())
    return path


def sample(pid, peaks, stop):
    """Peaks of RssAnon and RssFile of `pid` until `stop` is set."""
    while not stop.is_set():
        try:
            with open(f"/proc/{pid}/status") as f:
                text = f.read()
            for key in ("RssAnon", "RssFile", "VmRSS"):
                m = re.search(rf"^{key}:\s+(\d+) kB", text, re.M)
                if m:
                    peaks[key] = max(peaks.get(key, 0), int(m.group(1)) * 1024)
        except OSError:
            pass
        time.sleep(0.02)


def measure(command):
    """Runs `command` under /usr/bin/time -v; returns (elapsed s, max RSS bytes, sampled peaks, stdout)."""
    process = subprocess.Popen(["/usr/bin/time", "-v", *command], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    child = None
    for _ in range(500):
        try:
            with open(f"/proc/{process.pid}/task/{process.pid}/children") as f:
                ids = f.read().split()
            if ids:
                child = int(ids[0])
                break
        except OSError:
            pass
        time.sleep(0.002)
    peaks, stop = {}, threading.Event()
    thread = threading.Thread(target=sample, args=(child, peaks, stop)) if child else None
    if thread:
        thread.start()
    out, err = process.communicate()
    stop.set()
    if thread:
        thread.join()
    if process.returncode != 0:
        sys.exit(f"{' '.join(command)}: exit {process.returncode}\n{err[-3000:]}")
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", err).group(1)) * 1024
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (?:(\d+):)?(\d+):([\d.]+)", err)
    seconds = int(wall.group(1) or 0) * 3600 + int(wall.group(2)) * 60 + float(wall.group(3))
    cpu = float(re.search(r"User time \(seconds\): ([\d.]+)", err).group(1)) + float(re.search(r"System time \(seconds\): ([\d.]+)", err).group(1))
    return seconds, cpu, rss, peaks, out


def digest(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(64 << 20):
            h.update(chunk)
    return h.hexdigest()


def run_onnxruntime(path, x):
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    return session.run(None, {"X": x})[0]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pith", default=os.path.join(ROOT, ".build", "release", "pith"))
    parser.add_argument("--hidden", type=int, default=13696, help="H: each of the 4 weights is H×H float32 (13,696: 3.0 GB)")
    parser.add_argument("--folder", default=os.path.join(ROOT, ".cache", "bench", "external"))
    parser.add_argument("--keep", action="store_true", help="keep the generated files")
    parser.add_argument("--write", action="store_true", help="update docs/benchmarks.md")
    args = parser.parse_args()
    if os.path.exists(args.folder):
        shutil.rmtree(args.folder)
    source_folder, out_folder = os.path.join(args.folder, "source"), os.path.join(args.folder, "restored")
    os.makedirs(out_folder)
    try:
        started = time.time()
        source = generate(source_folder, args.hidden)
        generated = time.time() - started
        data_bytes = os.path.getsize(os.path.join(source_folder, DATA))
        model_bytes = os.path.getsize(source)
        print(f"generated {source}: {model_bytes} bytes + {data_bytes} bytes of external data in {generated:.1f} s", flush=True)
        container = os.path.join(args.folder, "bench-external.pith")
        restored = os.path.join(out_folder, "bench-external.onnx")
        rows = []
        for label, command in [
            ("compress (lossless)", [args.pith, "compress", source, "-o", container, "--quiet"]),
            ("inspect", [args.pith, "inspect", source, "--format", "json", "--quiet"]),
            ("restore", [args.pith, "restore", container, "-o", restored, "--quiet"]),
        ]:
            seconds, cpu, rss, peaks, _ = measure(command)
            rows.append((label, seconds, cpu, rss, peaks))
            print(f"{label}: {seconds:.1f} s wall, {cpu:.1f} s CPU, peak RSS {rss / 2**20:.0f} MiB "
                  f"(sampled peaks: RssAnon {peaks.get('RssAnon', 0) / 2**20:.0f} MiB, RssFile {peaks.get('RssFile', 0) / 2**20:.0f} MiB)", flush=True)
        container_bytes = os.path.getsize(container)
        same_model = digest(source) == digest(restored)
        same_data = digest(os.path.join(source_folder, DATA)) == digest(os.path.join(out_folder, DATA))
        restored_files = sorted(os.listdir(out_folder))
        x = np.random.default_rng(1).standard_normal((1, args.hidden)).astype(np.float32)
        started = time.time()
        expected = run_onnxruntime(source, x)
        got = run_onnxruntime(restored, x)
        ort_seconds = time.time() - started
        equal = bool(np.array_equal(expected, got))
        print(f"restored files: {restored_files}; model byte-identical: {same_model}; data file byte-identical: {same_data}; "
              f"onnxruntime outputs equal: {equal} ({ort_seconds:.1f} s for both runs)")
        ok = same_model and same_data and equal and all(rss < LIMIT for _, _, _, rss, _ in rows)
    finally:
        if not args.keep:
            shutil.rmtree(args.folder, ignore_errors=True)
    if args.write:
        load = os.getloadavg()[0]
        lines = [
            f"Measured {time.strftime('%Y-%m-%d')} on {platform.machine()}, 2 cores (shared; load average {load:.2f} after), "
            f"by `scripts/bench_external.py --write` with the release build: a model of {LAYERS} MatMul layers of "
            f"{args.hidden}×{args.hidden} float32 weights (bfloat16 precision), {model_bytes:,} bytes of ONNX and "
            f"{data_bytes:,} bytes ({data_bytes / 1e9:.2f} GB) in one external data file; the container is {container_bytes:,} bytes "
            f"({container_bytes / data_bytes:.3f}× the data). One run each.",
            "",
            "| command | wall (s) | CPU (s) | peak RSS (MiB) | peak RssAnon (MiB) | peak RssFile (MiB) | under 1 GiB |",
            "|---|---:|---:|---:|---:|---:|---|",
        ]
        for label, seconds, cpu, rss, peaks in rows:
            command, _, note = label.partition(" ")
            lines.append(f"| `pith {command}`{' ' + note if note else ''} | {seconds:.1f} | {cpu:.1f} | {rss / 2**20:,.0f} | {peaks.get('RssAnon', 0) / 2**20:,.0f} | "
                         f"{peaks.get('RssFile', 0) / 2**20:,.0f} | {'yes' if rss < LIMIT else '**no**'} |")
        lines += [
            "",
            f"Peak RSS is `/usr/bin/time -v`'s \"Maximum resident set size\"; RssAnon (memory the process allocated) and RssFile "
            f"(resident pages of the files it maps) are the peaks of /proc/PID/status sampled every 20 ms. The restored folder holds "
            f"{', '.join(f'`{n}`' for n in restored_files)}; the model is {'byte-identical' if same_model else '**not** byte-identical'} "
            f"to the source and the data file {'byte-identical' if same_data else '**not** byte-identical'}; onnxruntime "
            f"{'gives the same output' if equal else '**gives a different output**'} for one seeded input on the source and the restored model.",
        ]
        replace_section("external-data", "\n".join(lines))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
