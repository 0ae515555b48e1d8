#!/usr/bin/env python3
"""Benchmark: peak memory of `pith restore` of a ~50 MB Keras 2 `.h5` from its lossless container.

Issue 11: restoring to Keras streams the tensors (each decoded once, written into its dataset and
released), so the peak memory of restoring a 50 MB Keras file is at most the model size plus a bounded
buffer, where it used to hold the decoded model twice over.

The input is generated with numpy + h5py (seeded, cached in .cache/bench/): a Sequential MLP
784-2048-2048-2048-1024-1024-10 of Dense layers (float32, normal weights), 52.6 MB of weights, laid out
as Keras 2 (tf_keras) saves a model: root attributes `keras_version`, `backend`, `model_config`; group
`model_weights` with `layer_names` (a weightless Dropout layer included, with an empty `weight_names`),
each layer's `weight_names` (`dense_1/kernel:0`, …) and datasets at `model_weights/dense_1/dense_1/kernel:0`.

It is compressed losslessly (`pith compress`), then restored (`pith restore --force`) under
`/usr/bin/time -v`, which reports the peak resident set size ("Maximum resident set size"). Each binary
given (`--before`, the base commit's; `--pith`, this tree's) is run `--runs` times, interleaved, median
taken. The same is done for a tiny Keras file (Fixtures/keras/keras2-float16.h5) to show what the process
holds before any model: the Swift runtime, libhdf5, the binary's pages. Every restored file is checked
with h5py: the same datasets, dtypes, shapes and bytes as the source, and the same `layer_names` /
`weight_names` (weightless layers aside, which Pith dropped before issue 15). With --write, updates the
`keras-restore` section of docs/benchmarks.md.
"""
import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time

import h5py
import numpy as np

ROOT = os.path.normpath(os.path.join(os.path.dirname(__file__), ".."))
MODEL = os.path.join(ROOT, ".cache", "bench", "keras2-mlp-50mb.h5")
TINY = os.path.join(ROOT, "Fixtures", "keras", "keras2-float16.h5")
WIDTHS = [784, 2048, 2048, 2048, 1024, 1024, 10]
MB = 1e6


def make_model(path):
    """A Keras 2 full-model file of Dense layers (and one Dropout), written as tf_keras writes it."""
    rng = np.random.default_rng(11)
    layers = []
    for i, (n_in, n_out) in enumerate(zip(WIDTHS, WIDTHS[1:]), start=1):
        layers.append((f"dense_{i}", n_in, n_out))
    names = [name for name, _, _ in layers]
    names.insert(2, "dropout")
    config = {"class_name": "Sequential", "config": {"name": "mlp", "layers": [
        {"class_name": "InputLayer", "config": {"batch_input_shape": [None, WIDTHS[0]], "dtype": "float32", "name": "input_1"}}]}}
    for name in names:
        if name == "dropout":
            config["config"]["layers"].append({"class_name": "Dropout", "config": {"name": name, "rate": 0.1}})
        else:
            units = next(n_out for n, _, n_out in layers if n == name)
            config["config"]["layers"].append({"class_name": "Dense", "config": {
                "name": name, "units": units, "activation": "relu", "use_bias": True, "dtype": "float32"}})
    os.makedirs(os.path.dirname(path), exist_ok=True)
    temporary = path + ".tmp"
    with h5py.File(temporary, "w") as f:
        f.attrs["backend"] = "tensorflow"
        f.attrs["keras_version"] = "2.15.0"
        f.attrs["model_config"] = json.dumps(config)
        group = f.create_group("model_weights")
        group.attrs["backend"] = "tensorflow"
        group.attrs["keras_version"] = "2.15.0"
        group.attrs["layer_names"] = names
        group.create_group("dropout").attrs["weight_names"] = np.array([], dtype=np.float64)
        for name, n_in, n_out in layers:
            layer = group.create_group(name)
            layer.attrs["weight_names"] = [f"{name}/kernel:0", f"{name}/bias:0"]
            kernel = rng.normal(0, (2 / n_in) ** 0.5, size=(n_in, n_out)).astype(np.float32)
            layer.create_dataset(f"{name}/kernel:0", data=kernel)
            layer.create_dataset(f"{name}/bias:0", data=rng.normal(0, 0.01, size=n_out).astype(np.float32))
    os.replace(temporary, path)


def datasets(path):
    out = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda name, obj: out.__setitem__(name, obj[()]) if isinstance(obj, h5py.Dataset) else None)
    return out


def decode(value):
    return value.decode() if isinstance(value, bytes) else str(value)


def strings(obj, key):
    values = obj.attrs.get(key, [])
    return [decode(v) for v in np.atleast_1d(values)] if np.size(values) else []


def check_identical(source, restored):
    """Raises unless `restored` holds every dataset of `source` bit for bit, with the Keras lists."""
    a, b = datasets(source), datasets(restored)
    assert sorted(a) == sorted(b), f"datasets differ: {sorted(set(a) ^ set(b))}"
    for name, value in a.items():
        assert value.dtype == b[name].dtype and value.shape == b[name].shape, name
        assert value.tobytes() == b[name].tobytes(), f"{name}: values differ"
    with h5py.File(source, "r") as x, h5py.File(restored, "r") as y:
        gx, gy = x["model_weights"], y["model_weights"]
        # Pith before issue 15 dropped weightless layers; since, the whole file comes back.
        with_weights = [n for n in strings(gx, "layer_names") if strings(gx[n], "weight_names")]
        assert strings(gy, "layer_names") in (with_weights, strings(gx, "layer_names")), "layer_names differ"
        for layer in with_weights:
            assert strings(gy[layer], "weight_names") == strings(gx[layer], "weight_names"), layer
        for key in ("model_config", "keras_version", "backend"):
            assert decode(x.attrs[key]) == decode(y.attrs[key]), f"{key} differs"


def timed(argv):
    """(peak RSS in bytes, wall seconds) of one run under /usr/bin/time -v."""
    result = subprocess.run(["/usr/bin/time", "-v"] + argv, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"{' '.join(argv)} failed:\n{result.stderr}")
    peak = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", result.stderr).group(1)) * 1024
    clock = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (?:(\d+):)?(\d+):([\d.]+)", result.stderr)
    seconds = int(clock.group(1) or 0) * 3600 + int(clock.group(2)) * 60 + float(clock.group(3))
    return peak, seconds


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--pith", default=os.path.join(ROOT, ".build", "release", "pith"), help="this tree's binary (after)")
    parser.add_argument("--before", help="the base commit's binary, built the same way")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    if not os.path.exists(MODEL):
        make_model(MODEL)
    sizes = [value.nbytes for value in datasets(MODEL).values()]
    model_bytes, largest = sum(sizes), max(sizes)
    binaries = [("before", args.before)] if args.before else []
    binaries.append(("after", args.pith))
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        runs = {}
        for label, binary in binaries:
            for name, source in (("model", MODEL), ("tiny", TINY)):
                container = os.path.join(tmp, f"{label}-{name}.pith")
                subprocess.run([binary, "compress", source, "-o", container], check=True, capture_output=True)
                output = os.path.join(tmp, f"{label}-{name}.h5")
                runs[(label, name)] = ([binary, "restore", container, "-o", output, "--force"], source, output, container)
                results[(label, name)] = []
        for _ in range(args.runs):
            for key, (argv, _, _, _) in runs.items():
                results[key].append(timed(argv))
        for (label, name), (_, source, output, _) in runs.items():
            if name == "model":
                check_identical(source, output)
        container_bytes = os.path.getsize(runs[(binaries[-1][0], "model")][3])
    peak = {key: statistics.median(p for p, _ in values) for key, values in results.items()}
    seconds = {key: statistics.median(s for _, s in values) for key, values in results.items()}
    rows = [f"| binary | peak RSS, tiny model (MB) | peak RSS, {model_bytes / MB:.1f} MB model (MB) | peak − tiny (MB) | (peak − tiny) ÷ model | restore time (s) |",
            "|---|---:|---:|---:|---:|---:|"]
    for label, _ in binaries:
        grown = peak[(label, "model")] - peak[(label, "tiny")]
        rows.append(f"| {label} | {peak[(label, 'tiny')] / MB:.1f} | {peak[(label, 'model')] / MB:.1f} | {grown / MB:.1f} | "
                    f"{grown / model_bytes:.2f} | {seconds[(label, 'model')]:.2f} |")
    after = peak[("after", "model")] - peak[("after", "tiny")]
    beyond = after - container_bytes
    summary = (f"Input: {model_bytes / MB:.1f} MB of float32 weights in {len(sizes)} datasets (largest {largest / MB:.1f} MB); its "
               f"lossless container is {container_bytes / MB:.1f} MB, which restore maps whole and reads in at once. Medians of "
               f"{args.runs} interleaved runs under `/usr/bin/time -v`; every restored file is tensor-identical to the source (h5py). "
               f"After: restoring the model holds {after / MB:.1f} MB more than restoring a tiny one, {after / model_bytes:.2f}× the "
               f"model: the mapped container and {beyond / MB:+.1f} MB besides"
               + (f", less than the largest tensor, so no tensor was held whole." if beyond < largest else "."))
    if args.before:
        before = peak[("before", "model")] - peak[("before", "tiny")]
        summary += (f" Before: {before / MB:.1f} MB more ({before / model_bytes:.2f}× the model: the mapped container and the "
                    f"decoded model, {(before - container_bytes) / MB:.1f} MB).")
    table = "\n".join(rows)
    print(table)
    print(summary)
    if args.write:
        sys.path.insert(0, os.path.dirname(__file__))
        from benchdoc import replace_section
        replace_section("keras-restore", f"Measured {time.strftime('%Y-%m-%d')} on {platform.machine()}, {os.cpu_count()} cores, "
                        f"by `scripts/bench_keras_restore.py --write` (release builds).\n\n{table}\n\n{summary}")


if __name__ == "__main__":
    main()
