"""`pith bench eval` and `PITH_EVAL_PROFILE`: the evaluator's own timings come out whole and sane
(values are not checked: they are timings)."""
import json
import os
import subprocess

import numpy as np

from conftest import PITH, ROOT, run_pith

LENET = os.path.join(ROOT, "Fixtures", "lenet-300-100.onnx")


def test_bench_eval_reports_each_phase(tmp_path):
    data = tmp_path / "x.npy"
    np.save(data, np.random.default_rng(1).random((64, 784), dtype=np.float32))
    result = run_pith("bench", "eval", LENET, "--data", str(data), "--runs", "3", "--batch-size", "16")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    for key in ("load_seconds", "build_seconds", "read_seconds", "first_run_seconds", "seconds"):
        assert report[key] >= 0, key
    assert report["samples"] == 64 and report["runs"] == 3 and report["batch_size"] == 16


def test_profile_lists_time_by_operator(tmp_path):
    data = tmp_path / "x.npy"
    np.save(data, np.random.default_rng(2).random((8, 784), dtype=np.float32))
    result = subprocess.run([PITH, "eval", LENET, "--data", str(data)], capture_output=True, text=True,
                            env={**os.environ, "PITH_EVAL_PROFILE": "1"})
    assert result.returncode == 0, result.stderr
    assert "step time by operator" in result.stderr
    # LeNet's Gemm → Relu pairs are fused: the Relu steps are gone.
    assert "Gemm" in result.stderr and "Relu" not in result.stderr
