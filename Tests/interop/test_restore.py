"""compress (lossless) → restore gives ONNX files whose every tensor is bit-identical to the
source's, which onnx's checker and onnxruntime accept; a lossy container restores to a model that
onnxruntime runs."""
import glob
import os

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

from common import onnx_inventory
from conftest import MNIST, ROOT, run_pith

FIXTURES = [os.path.join(ROOT, "Fixtures", "lenet-300-100.onnx")] + sorted(glob.glob(os.path.join(ROOT, "Fixtures", "onnx", "*.onnx")))
CORPUS = sorted(glob.glob("/usr/share/libonnx-testdata/data/*/*/model.onnx"))


def values(model):
    """Every tensor of the model as numpy arrays (or python values), in Pith's order."""
    out = []
    for name, proto, kind in onnx_inventory(model):
        if kind == "tensor":
            out.append((name, numpy_helper.to_array(proto)))
        elif kind == "sparse":
            dense = np.zeros(int(np.prod(proto.dims)), numpy_helper.to_array(proto.values).dtype)
            idx = numpy_helper.to_array(proto.indices)
            if idx.ndim == 2:
                idx = np.ravel_multi_index(idx.T, tuple(proto.dims))
            dense[idx] = numpy_helper.to_array(proto.values)
            out.append((name, dense.reshape(tuple(proto.dims))))
        else:
            out.append((name, np.asarray(proto)))
    return out


def round_trip(source, tmp_path):
    container, restored = str(tmp_path / "m.pith"), str(tmp_path / "m.onnx")
    result = run_pith("compress", source, "-o", container, "--force")
    assert result.returncode == 0, result.stderr
    result = run_pith("restore", container, "-o", restored, "--force")
    assert result.returncode == 0, result.stderr
    return restored


def assert_bit_identical(source, restored):
    a, b = values(onnx.load(source)), values(onnx.load(restored))
    assert [n for n, _ in a] == [n for n, _ in b]
    for (name, x), (_, y) in zip(a, b):
        assert x.dtype == y.dtype and x.shape == y.shape, name
        if x.dtype.kind in "OSU":
            assert x.tolist() == y.tolist(), name
        else:
            assert x.tobytes() == y.tobytes(), f"{name}: values differ"


@pytest.mark.parametrize("source", FIXTURES, ids=os.path.basename)
def test_fixture_round_trip_is_bit_identical(pith, tmp_path, source):
    restored = round_trip(source, tmp_path)
    assert_bit_identical(source, restored)
    original = onnx.load(source)
    try:
        onnx.checker.check_model(original)
    except onnx.checker.ValidationError:
        return  # fixtures built for import only: the restored copy need not pass either
    onnx.checker.check_model(onnx.load(restored))


@pytest.mark.parametrize("source", CORPUS, ids=lambda p: os.path.relpath(os.path.dirname(p), "/usr/share/libonnx-testdata/data"))
def test_corpus_round_trip_is_bit_identical(pith, tmp_path, source):
    assert_bit_identical(source, round_trip(source, tmp_path))


def mnist():
    from make_lenet import idx  # the fixture script's IDX reader (Fixtures/generate is on the path)
    return idx("t10k-images.idx3-ubyte.gz").reshape(-1, 784).astype(np.float32) / 255, idx("t10k-labels.idx1-ubyte.gz")


@pytest.mark.mnist
def test_restored_lenet_runs_in_onnxruntime(pith, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    source = os.path.join(ROOT, "Fixtures", "lenet-300-100.onnx")
    x, y = mnist()
    original = ort.InferenceSession(source).run(None, {"input": x})[0]
    lossless = ort.InferenceSession(round_trip(source, tmp_path)).run(None, {"input": x})[0]
    assert np.array_equal(original, lossless)
    def restored_accuracy(*flags):
        container, restored = str(tmp_path / "c.pith"), str(tmp_path / "c.onnx")
        result = run_pith("compress", *flags, source, "-o", container, "--force")
        assert result.returncode == 0, result.stderr
        assert run_pith("restore", container, "-o", restored, "--force").returncode == 0
        onnx.checker.check_model(onnx.load(restored))
        return float((ort.InferenceSession(restored).run(None, {"input": x})[0].argmax(1) == y).mean())

    baseline = float((original.argmax(1) == y).mean())
    # Measured here without retraining (this fixture, 1.68% error): one global threshold at 70% + 5-bit
    # k-means gives 2.02%; the paper's per-layer rates (92/91/74%) + 6 bits give 15.9%, since they need
    # the retraining the paper did. The bounds below guard those measurements against regressions.
    gentle = restored_accuracy("--prune", "0.7", "--cluster", "5")
    paper = restored_accuracy("--recipe", os.path.join(ROOT, "Fixtures", "recipes", "deep-compression-lenet.yaml"))
    print(f"LeNet-300-100 MNIST accuracy: original {baseline:.4f}, global 70% + 5-bit {gentle:.4f}, paper's rates + 6-bit {paper:.4f}")
    assert gentle >= baseline - 0.005
    assert paper > 0.5  # runs and still classifies; the damage is real and is what `pith verify` will report
