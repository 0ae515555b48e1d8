#!/usr/bin/env python3
"""Benchmark: `pith inspect` against numpy + onnx / h5py computing the same statistics.

Builds two ~80 MB models in .cache/bench (an ONNX MLP and the same weights as a Keras 2
.h5 written with h5py), then times, as whole commands, median of --runs runs each, in the
same run on the same machine:
  - pith inspect --format json FILE
  - python3 scripts/bench_inspect.py --reference FILE  (onnx.load / h5py + numpy: count,
    nonzero, distinct values capped at 65,536, min, max, mean, std per tensor)
Prints a Markdown table; with --write, replaces the inspect section of docs/benchmarks.md.
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
CACHE = os.path.join(ROOT, ".cache", "bench")
CAP = 65536


def tensor_stats(a):
    v = a.ravel()
    finite = v[np.isfinite(v)]
    # Distinct values exactly up to CAP, as pith does: np.unique over the whole tensor.
    distinct = min(len(np.unique(v)), CAP)
    return {"count": int(v.size), "nonzero": int(np.count_nonzero(v)), "distinct": distinct,
            "min": float(finite.min()), "max": float(finite.max()),
            "mean": float(finite.mean(dtype=np.float64)), "std": float(finite.std(dtype=np.float64))}


def reference(path):
    """What a user would otherwise write: load with onnx / h5py, statistics with numpy."""
    global np
    import numpy as np
    start = time.perf_counter()
    rows = []
    if path.endswith(".onnx"):
        import onnx
        from onnx import numpy_helper
        model = onnx.load(path)
        for t in model.graph.initializer:
            rows.append((t.name, tensor_stats(numpy_helper.to_array(t))))
    else:
        import h5py
        with h5py.File(path, "r") as f:
            g = f["model_weights"]
            for layer in g.attrs["layer_names"]:
                layer = layer.decode() if isinstance(layer, bytes) else layer
                for w in g[layer].attrs["weight_names"]:
                    w = w.decode() if isinstance(w, bytes) else w
                    rows.append((w, tensor_stats(g[layer][w][()])))
    print(json.dumps({"tensors": len(rows), "seconds": time.perf_counter() - start}))


def build_models():
    import numpy as np
    import onnx
    import h5py
    from onnx import TensorProto, helper, numpy_helper
    os.makedirs(CACHE, exist_ok=True)
    onnx_path, h5_path = os.path.join(CACHE, "mlp-80mb.onnx"), os.path.join(CACHE, "mlp-80mb.h5")
    if os.path.exists(onnx_path) and os.path.exists(h5_path):
        return onnx_path, h5_path
    rng = np.random.default_rng(0)
    sizes = [2048, 4096, 2048, 1024, 1000]
    weights = []
    for i, (a, b) in enumerate(zip(sizes, sizes[1:])):
        w = rng.normal(0, np.sqrt(2 / a), (b, a)).astype(np.float32)
        w[np.abs(w) < 0.1 * w.std()] = 0  # some exact zeros, as trained-and-pruned weights have
        weights.append((f"fc{i + 1}", w, rng.normal(0, 0.01, b).astype(np.float32)))
    nodes, inits, prev = [], [], "x"
    for name, w, bias in weights:
        inits += [numpy_helper.from_array(w, name + ".weight"), numpy_helper.from_array(bias, name + ".bias")]
        nodes.append(helper.make_node("Gemm", [prev, name + ".weight", name + ".bias"], [name], name=name, transB=1))
        prev = name
    graph = helper.make_graph(nodes, "mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", sizes[0]])],
                              [helper.make_tensor_value_info(prev, TensorProto.FLOAT, ["N", sizes[-1]])], inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), onnx_path)
    with h5py.File(h5_path, "w") as f:
        f.attrs["keras_version"] = "2.15.0"
        g = f.create_group("model_weights")
        g.attrs["layer_names"] = [name.encode() for name, _, _ in weights]
        for name, w, bias in weights:
            layer = g.create_group(name)
            layer.attrs["weight_names"] = [f"{name}/kernel:0".encode(), f"{name}/bias:0".encode()]
            layer.create_dataset(f"{name}/kernel:0", data=w.T)
            layer.create_dataset(f"{name}/bias:0", data=bias)
    return onnx_path, h5_path


def timed(command, runs):
    """Median wall time of the whole command, and of the in-process time it reports (if any)."""
    subprocess.run(command, check=True, capture_output=True)  # warm the page cache
    times, inner = [], []
    for _ in range(runs):
        start = time.perf_counter()
        out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        times.append(time.perf_counter() - start)
        try:
            inner.append(json.loads(out)["seconds"])
        except (ValueError, KeyError, TypeError):
            pass
    return statistics.median(times), times, (statistics.median(inner) if inner else None)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--pith", default=os.path.join(ROOT, ".build", "release", "pith"))
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--reference", help=argparse.SUPPRESS)
    parser.add_argument("--write", action="store_true", help="update docs/benchmarks.md")
    args = parser.parse_args()
    if args.reference:
        return reference(args.reference)
    lines = []
    for path in build_models():
        size = os.path.getsize(path) / 1e6
        pith, pith_all, _ = timed([args.pith, "inspect", "--format", "json", path], args.runs)
        ref, ref_all, ref_inner = timed([sys.executable, __file__, "--reference", path], args.runs)
        lines.append(f"| `{os.path.basename(path)}` | {size:.1f} | {pith:.3f} | {ref:.3f} | {ref_inner:.3f} | {ref / pith:.1f}× |")
        print(lines[-1], "pith runs", [f"{t:.3f}" for t in pith_all], "reference runs", [f"{t:.3f}" for t in ref_all])
    table = "\n".join([
        "| model | MB | `pith inspect` (whole command) s | numpy + onnx/h5py (whole command) s | numpy + onnx/h5py (load + statistics only, in process) s | pith faster, whole commands |",
        "|---|---:|---:|---:|---:|---:|", *lines])
    print(table)
    if args.write:
        from benchdoc import replace_section
        replace_section("inspect", (f"Measured {time.strftime('%Y-%m-%d')} on {platform.machine()}, "
                   f"{os.cpu_count()} cores, median of {args.runs} runs after one warm-up run, whole commands "
                   f"(process start to exit), by `scripts/bench_inspect.py --write`.\n\n{table}"))


if __name__ == "__main__":
    main()
