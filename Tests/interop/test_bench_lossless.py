"""`pith bench lossless`: the container it encodes in memory is the one `pith compress` writes to a file
(same size to the byte, for an ONNX model whose large tensors are views of the mapped file and for a
Keras file), and its timings come out whole (values are not checked: they are timings)."""
import json
import os

import pytest

from conftest import ROOT, run_pith


@pytest.mark.parametrize("model", ["lenet-300-100.onnx", "lenet-300-100.h5"])
def test_bench_lossless_encodes_the_container_compress_writes(tmp_path, model):
    path = os.path.join(ROOT, "Fixtures", model)
    out = tmp_path / "m.pith"
    written = run_pith("compress", path, "-o", str(out))
    assert written.returncode == 0, written.stderr
    result = run_pith("bench", "lossless", path, "--runs", "2")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["container_bytes"] == out.stat().st_size
    assert report["model_bytes"] == os.path.getsize(path)
    assert report["runs"] == 2
    assert report["load_seconds"] >= 0 and report["encode_seconds"] > 0 and report["megabytes_per_second"] > 0


def test_bench_lossless_refuses_zero_runs():
    result = run_pith("bench", "lossless", os.path.join(ROOT, "Fixtures", "lenet-300-100.onnx"), "--runs", "0")
    assert result.returncode == 64
    assert "--runs must be at least 1" in result.stderr
