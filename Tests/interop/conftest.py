"""Interop tests: the built `pith` binary against onnx, h5py and real models.

`make test` sets PITH_BINARY; otherwise the debug build is used."""
import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "Fixtures", "generate"))

PITH = os.environ.get("PITH_BINARY", os.path.join(ROOT, ".build", "debug", "pith"))

# MNIST is not in the repository: it is read from the shared data folder beside the checkout. Every test
# that needs it carries the `mnist` mark and is skipped, naming the missing files, when it is not there
# (as `make demo` skips its MNIST steps).
MNIST = os.path.normpath(os.path.join(ROOT, "..", "shared", "data", "mnist"))
MNIST_FILES = ("train-images.idx3-ubyte.gz", "t10k-images.idx3-ubyte.gz", "t10k-labels.idx1-ubyte.gz")


def pytest_configure(config):
    config.addinivalue_line("markers", "mnist: needs the MNIST files in ../shared/data/mnist beside the checkout")


def pytest_runtest_setup(item):
    if item.get_closest_marker("mnist"):
        missing = [name for name in MNIST_FILES if not os.path.isfile(os.path.join(MNIST, name))]
        if missing:
            pytest.skip(f"needs MNIST beside the checkout: {', '.join(missing)} not in {MNIST}")

# ONNX TensorProto.DataType code → Pith dtype name.
DTYPES = {1: "float32", 2: "uint8", 3: "int8", 4: "uint16", 5: "int16", 6: "int32", 7: "int64", 8: "string",
          9: "bool", 10: "float16", 11: "float64", 12: "uint32", 13: "uint64", 14: "complex64", 15: "complex128",
          16: "bfloat16", 17: "float8e4m3fn", 18: "float8e4m3fnuz", 19: "float8e5m2", 20: "float8e5m2fnuz",
          21: "uint4", 22: "int4", 23: "float4e2m1", 24: "float8e8m0", 25: "uint2", 26: "int2",
          27: "float6e2m3", 28: "float6e3m2"}


def by_index(outputs, k):
    """Output `k` of a `pith eval --save-outputs` .npz: the members are the model's outputs under their
    names, in the model's order."""
    return outputs[outputs.files[k]]


def run_pith(*args, timeout=300):
    return subprocess.run([PITH, *args], capture_output=True, text=True, timeout=timeout)


def refused_by_every_reader(bad, tmp_path, code, words):
    """`restore`, `inspect` and `check` of the damaged container `bad` each exit `code`, naming the file
    and saying `words`, without a crash; restore writes nothing."""
    out = tmp_path / "out.onnx"
    for command in (["restore", str(bad), "-o", str(out)], ["inspect", str(bad)], ["check", str(bad)]):
        result = run_pith(*command)
        assert result.returncode == code, (command, result.stderr)
        assert str(bad) in result.stderr and words in result.stderr, result.stderr
        assert "Fatal error" not in result.stderr
    assert not out.exists()


def inspect_json(path):
    result = run_pith("inspect", "--format", "json", path)
    assert result.returncode == 0, f"{path}: exit {result.returncode}: {result.stderr}"
    return json.loads(result.stdout)


@pytest.fixture(scope="session")
def pith():
    if not os.path.exists(PITH):
        pytest.fail(f"pith binary not found at {PITH}: run `swift build` first")
    return PITH
