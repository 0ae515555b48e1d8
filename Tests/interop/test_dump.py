"""`pith dump` writes every tensor under its name to .npz (numpy) and .safetensors (the safetensors
package): equal to what onnx / h5py read from the source. With --stored, a container's compressed
tensors come as stored — a k-means codebook with its indices, CSR arrays — and those arrays rebuild the
dense tensor the container restores to. `--tensor NAME` describes one tensor."""
import json
import os

import h5py
import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from conftest import ROOT, run_pith

safetensors_numpy = pytest.importorskip("safetensors.numpy", reason="SKIPPED: the safetensors package is not installed")

LENET = os.path.join(ROOT, "Fixtures", "lenet-300-100.onnx")
LENET_H5 = os.path.join(ROOT, "Fixtures", "lenet-300-100.h5")


def load(path):
    if path.endswith(".npz"):
        with np.load(path) as archive:
            return {name: archive[name] for name in archive.files}
    return safetensors_numpy.load_file(path)


@pytest.mark.parametrize("suffix", [".npz", ".safetensors"])
def test_a_dense_dump_equals_what_onnx_and_h5py_read(tmp_path, suffix):
    out = str(tmp_path / ("onnx" + suffix))
    result = run_pith("dump", LENET, "-o", out)
    assert result.returncode == 0, result.stderr
    expected = {t.name: numpy_helper.to_array(t) for t in onnx.load(LENET).graph.initializer}
    dumped = load(out)
    assert set(dumped) == set(expected)
    for name, array in expected.items():
        assert dumped[name].dtype == array.dtype and np.array_equal(dumped[name], array), name
    out = str(tmp_path / ("h5" + suffix))
    assert run_pith("dump", LENET_H5, "-o", out).returncode == 0
    dumped = load(out)
    with h5py.File(LENET_H5, "r") as f:
        found = {}
        f.visititems(lambda name, item: found.__setitem__(name, item[()]) if isinstance(item, h5py.Dataset) and item.dtype.kind == "f" else None)
    assert set(dumped) == set(found), (sorted(dumped), sorted(found))
    for name, array in found.items():
        assert np.array_equal(dumped[name], array), name


def rebuild_csr(arrays, name, shape, values):
    rows = int(np.prod(shape[:1])) if len(shape) >= 2 else 1
    columns = int(np.prod(shape)) // rows
    dense = np.zeros((rows, columns), np.float32)
    starts, gaps = arrays[name + ".row_starts"], arrays[name + ".gaps"]
    for r in range(rows):
        column = -1
        for k in range(starts[r], starts[r + 1]):
            column += int(gaps[k]) + 1
            dense[r, column] = values[k]
    return dense.reshape(shape)


@pytest.mark.parametrize("suffix", [".npz", ".safetensors"])
def test_a_stored_dump_rebuilds_the_dense_tensors(tmp_path, suffix):
    for flags in (["--cluster", "4"], ["--prune", "0.7", "--cluster", "4"], ["--quantize", "int8-channel"]):
        container = str(tmp_path / "c.pith")
        assert run_pith("compress", LENET, *flags, "-o", container, "--force").returncode == 0
        dense_out, stored_out = str(tmp_path / ("dense" + suffix)), str(tmp_path / ("stored" + suffix))
        assert run_pith("dump", container, "-o", dense_out, "--force").returncode == 0
        result = run_pith("dump", container, "--stored", "-o", stored_out, "--force")
        assert result.returncode == 0, result.stderr
        dense, stored = load(dense_out), load(stored_out)
        if suffix == ".npz":
            description = json.loads(str(stored.pop("__pith__")))
        else:
            from safetensors import safe_open
            with safe_open(stored_out, "numpy") as f:
                description = {k[len("pith."):]: json.loads(v) if isinstance(v, str) else v for k, v in f.metadata().items()}
            description = {k: v for k, v in description.items()}
        for name in ("fc1.weight", "fc2.weight", "fc3.weight"):
            info = description[name]
            info = json.loads(info) if isinstance(info, str) else info
            shape = info["shape"]
            if "codebook" in info and "sparse" not in info:
                book = stored[name + ".codebook"]
                assert book.shape[0] == 1  # one codebook per tensor
                rebuilt = book[0][stored[name + ".indices"].astype(np.int64)]
            elif "sparse" in info:
                values = stored[name + ".codebook"][0][stored[name + ".indices"].astype(np.int64)]
                rebuilt = rebuild_csr(stored, name, shape, values)
            else:
                codes, scales = stored[name + ".codes"].astype(np.float32), stored[name + ".scales"]
                axis = info["quantized"]["axis"]
                view = [1] * len(shape)
                view[axis] = -1
                rebuilt = codes * scales.reshape(view)
            assert rebuilt.shape == tuple(shape), (flags, name)
            assert np.array_equal(rebuilt.astype(np.float32), dense[name]), (flags, name, np.abs(rebuilt - dense[name]).max())


def test_one_tensor_is_described_and_bad_requests_are_refused(tmp_path):
    result = run_pith("dump", LENET, "--tensor", "fc3.weight")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("fc3.weight: float32 10×100, stored as dense float32")
    assert "histogram:" in result.stdout and "first values: 0.0436831" in result.stdout
    missing = run_pith("dump", LENET, "--tensor", "fc3")
    assert missing.returncode == 64 and "did you mean `fc3.weight`, `fc3.bias`?" in missing.stderr, missing.stderr
    wrong = run_pith("dump", LENET, "-o", str(tmp_path / "out.bin"))
    assert wrong.returncode == 64 and ".npz or .safetensors" in wrong.stderr
    assert run_pith("dump", str(tmp_path / "none.onnx"), "-o", str(tmp_path / "o.npz")).returncode == 66
    assert sorted(os.listdir(tmp_path)) == []
