"""Debian's libonnx-testdata: every model.onnx imports, with the inventory onnx reports."""
import glob
import os

import onnx
import pytest

from conftest import inspect_json
from inventory import assert_same_inventory, onnx_expected

CORPUS = "/usr/share/libonnx-testdata/data"
MODELS = sorted(glob.glob(os.path.join(CORPUS, "*", "*", "model.onnx")))


def test_corpus_is_installed():
    if not MODELS:
        pytest.skip(f"SKIPPED: no ONNX backend corpus at {CORPUS} (apt-get install libonnx-testdata)")
    assert len(MODELS) > 1000


@pytest.mark.parametrize("path", MODELS, ids=lambda p: os.path.relpath(os.path.dirname(p), CORPUS))
def test_corpus_model_imports_with_onnx_inventory(pith, path):
    report = inspect_json(path)
    assert report["format"] == "onnx"
    assert_same_inventory(report, onnx_expected(onnx.load(path, load_external_data=False)), path)
