"""The README's "as a Swift library" example compiles (it is a target of the package) and runs: it
inspects LeNet, compresses it with a recipe built in code, restores it and compares the weights."""
import os
import subprocess

from conftest import PITH, ROOT


def test_the_library_example_runs():
    binary = os.path.join(os.path.dirname(PITH), "pith-library-example")
    assert os.path.exists(binary), f"{binary} is missing: `swift build` builds it with pith"
    result = subprocess.run([binary, os.path.join(ROOT, "Fixtures", "lenet-300-100.onnx")], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].endswith("lenet-300-100.onnx: 6 tensors, 266610 parameters, 1066440 bytes")
    assert "  input input: float32 [N, 784]" in lines
    container = int(next(line for line in lines if line.startswith("container: ")).split()[1])
    assert 60_000 < container < 100_000, container
    assert "6 tensors compared, 3 bit-exact" in result.stdout and result.stdout.rstrip().endswith("verify: passed")
