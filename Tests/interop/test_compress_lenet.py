"""`pith compress --dry-run` on the MNIST LeNet-300-100 reports the per-layer kept fractions
that numpy computes independently for one global magnitude threshold."""
import json
import os

import h5py
import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from conftest import ROOT, run_pith

LENET_ONNX = os.path.join(ROOT, "Fixtures", "lenet-300-100.onnx")
LENET_H5 = os.path.join(ROOT, "Fixtures", "lenet-300-100.h5")


def compress_json(path, *flags):
    result = run_pith("compress", "--dry-run", "--format", "json", *flags, path)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def numpy_kept(weights, sparsity):
    """Global magnitude pruning: the round(s·N) smallest |w| across all selected tensors go."""
    magnitudes = np.sort(np.concatenate([np.abs(w).ravel() for w in weights.values()]))
    k = int(round(sparsity * magnitudes.size))
    threshold = magnitudes[k - 1]
    assert np.count_nonzero(magnitudes == threshold) == 1, "ties would make the split ambiguous"
    return {name: int(np.count_nonzero(np.abs(w) > threshold)) for name, w in weights.items()}


def onnx_weights():
    model = onnx.load(LENET_ONNX)
    # Pith's default selection: floating-point tensors of rank ≥ 2 with ≥ 256 elements.
    return {t.name: numpy_helper.to_array(t) for t in model.graph.initializer
            if len(t.dims) >= 2 and np.prod(t.dims) >= 256}


@pytest.mark.parametrize("sparsity", [0.9, 0.7])
def test_global_pruning_kept_fractions_match_numpy(pith, sparsity):
    weights = onnx_weights()
    assert sorted(weights) == ["fc1.weight", "fc2.weight", "fc3.weight"]
    expected = numpy_kept(weights, sparsity)
    report = compress_json(LENET_ONNX, "--prune", str(sparsity), "--cluster", "5")
    rows = {r["tensor"]: r for r in report["tensors"]}
    assert sorted(rows) == sorted(expected)
    for name, kept in expected.items():
        assert rows[name]["kept"] == kept, name
        assert rows[name]["kept_fraction"] == pytest.approx(kept / weights[name].size, abs=0)
        assert rows[name]["weight_bits"] == 5
    # Clustering keeps pruned weights at exactly zero: the kept count does not change.
    clustered = [p for p in report["passes"] if p["action"] == "cluster"]
    assert [p["kept"] for p in clustered] == [expected[p["tensor"]] for p in clustered]


def test_keras_file_gives_the_same_kept_counts(pith):
    with h5py.File(LENET_H5, "r") as f:
        weights = {f"model_weights/fc{i}/fc{i}/kernel:0": f[f"model_weights/fc{i}/fc{i}/kernel:0"][()] for i in (1, 2, 3)}
    expected = numpy_kept(weights, 0.9)
    report = compress_json(LENET_H5, "--prune", "0.9", "--cluster", "5")
    assert {r["tensor"]: r["kept"] for r in report["tensors"]} == expected


def test_per_tensor_scope_prunes_each_layer_to_the_fraction(pith):
    report = compress_json(LENET_ONNX, "--prune", "0.8", "--prune-scope", "tensor")
    for row in report["tensors"]:
        assert row["kept"] == row["elements"] - int(round(0.8 * row["elements"]))


def test_pruning_error_matches_numpy(pith):
    """The weight error Pith reports (RMSE, max |error|) equals numpy's for the pruned weights."""
    weights = onnx_weights()
    report = compress_json(LENET_ONNX, "--prune", "0.9", "--index-bits", "auto")
    magnitudes = np.sort(np.concatenate([np.abs(w).ravel() for w in weights.values()]))
    threshold = magnitudes[int(round(0.9 * magnitudes.size)) - 1]
    for row in report["tensors"]:
        w = weights[row["tensor"]].astype(np.float64)
        pruned = np.where(np.abs(w) > threshold, w, 0)
        rmse = float(np.sqrt(np.mean((w - pruned) ** 2)))
        assert row["error"]["rmse"] == pytest.approx(rmse, rel=1e-9)
        assert row["error"]["max_abs"] == pytest.approx(float(np.max(np.abs(w - pruned))), rel=1e-9)
