"""Factorized models that still run: `pith compress --factorize …` then `pith restore --factored`,
checked in onnxruntime, `pith eval`, h5py and (when installed) Keras."""
import json
import os

import h5py
import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from conftest import ROOT, run_pith, by_index
from test_eval import IMAGES, LABELS, LENET, idx, within

MNIST_X = None


def mnist():
    global MNIST_X
    if MNIST_X is None:
        MNIST_X = (idx(IMAGES).reshape(-1, 784).astype(np.float32) / 255, idx(LABELS))
    return MNIST_X


def ort_accuracy(path):
    x, y = mnist()
    return float((ort.InferenceSession(str(path)).run(None, {"input": x})[0].argmax(1) == y).mean())


def pith_json(*args):
    result = run_pith(*args, "--format", "json")
    assert result.returncode in (0, 1), result.stderr
    return json.loads(result.stdout)


def test_lenet_fc1_rank_64_runs_factored_with_the_accuracy_of_the_dense_restore(tmp_path):
    container, dense, factored = tmp_path / "f.pith", tmp_path / "dense.onnx", tmp_path / "factored.onnx"
    report = pith_json("compress", LENET, "--factorize", "svd", "--rank", "64", "--only", "fc1.weight", "--dry-run")
    (row,) = report["factorizations"]
    assert row["ranks"] == [64] and row["parameters_after"] == 64 * (300 + 784) and row["multiply_adds_after"] == 64 * (300 + 784)
    assert 0 < row["relative_error"] < 1
    assert run_pith("compress", LENET, "--factorize", "svd", "--rank", "64", "--only", "fc1.weight", "-o", str(container)).returncode == 0
    assert run_pith("restore", str(container), "-o", str(dense)).returncode == 0
    restored = run_pith("restore", str(container), "-o", str(factored), "--factored")
    assert restored.returncode == 0 and "factored: fc1.weight" in restored.stdout
    onnx.checker.check_model(str(factored))
    model = onnx.load(str(factored))
    assert [n.op_type for n in model.graph.node] == ["Gemm", "Gemm", "Relu", "Gemm", "Relu", "Gemm"]
    assert "fc1.weight" not in {t.name for t in model.graph.initializer}
    assert os.path.getsize(factored) < 0.4 * os.path.getsize(dense)
    dense_accuracy = ort_accuracy(dense)
    assert ort_accuracy(factored) == dense_accuracy
    assert 0.97 < dense_accuracy < 0.99  # measured: 98.02% (1.98% error) at rank 64, 98.32% unfactored
    evaluated = pith_json("eval", str(factored), "--data", IMAGES, "--labels", LABELS)
    assert abs(evaluated["accuracy"] - dense_accuracy) < 1e-9
    # The container itself, verified against the original: the accuracy of both.
    verified = pith_json("verify", LENET, str(container), "--data", IMAGES, "--labels", LABELS)
    assert abs(verified["outputs"]["candidate_accuracy"] - dense_accuracy) < 1e-9
    assert abs(verified["outputs"]["original_accuracy"] - 0.9832) < 1e-9
    fc1 = {r["name"]: r for r in verified["weights"]["tensors"]}["fc1.weight"]
    assert abs(fc1["rmse"] * np.sqrt(235200) / np.linalg.norm(numpy_helper.to_array(
        [t for t in onnx.load(LENET).graph.initializer if t.name == "fc1.weight"][0])) - row["relative_error"]) < 1e-4
    # The factored ONNX compresses and restores again; verify compares it with the original by its outputs.
    again = tmp_path / "again.pith"
    assert run_pith("compress", str(factored), "-o", str(again)).returncode == 0
    outputs = pith_json("verify", LENET, str(again), "--data", IMAGES, "--labels", LABELS)
    assert abs(outputs["outputs"]["candidate_accuracy"] - dense_accuracy) < 1e-9
    assert "fc1.weight" in outputs["weights"]["missing_in_candidate"]


def gemm_model(path, rows, columns, trans_b, bias, op="Gemm", seed=0, kronecker=None):
    rng = np.random.default_rng(seed)
    w = (rng.standard_normal((rows, columns)) / np.sqrt(columns)).astype(np.float32)
    if kronecker:  # a Kronecker product of small factors: a tensor train of ranks 1, exact
        w = np.ones((1, 1), np.float32)
        for m, n in kronecker:
            w = np.kron(w, rng.standard_normal((m, n)).astype(np.float32))
        assert w.shape == (rows, columns)
    inputs = columns if (op == "Gemm" and trans_b) else rows
    outputs = rows if (op == "Gemm" and trans_b) else columns
    nodes_in = ["x", "w"] + (["b"] if bias else [])
    initializers = [numpy_helper.from_array(w, "w")]
    if bias:
        initializers.append(numpy_helper.from_array(rng.standard_normal(outputs).astype(np.float32), "b"))
    attrs = {"transB": trans_b} if op == "Gemm" else {}
    node = helper.make_node(op, nodes_in if op == "Gemm" else ["x", "w"], ["y"], name="layer", **attrs)
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", inputs])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", outputs])], initializers)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return inputs


@pytest.mark.parametrize("case", [
    ("svd", 48, 40, 1, True, "Gemm", ["--rank", "7"]),
    ("svd", 48, 40, 0, False, "Gemm", ["--rank", "7"]),
    ("svd", 30, 52, 0, False, "MatMul", ["--energy", "0.8"]),
    ("tt", 27, 35, 1, True, "Gemm", ["--tt-error", "1e-6"]),   # 27 = 3·3·3, 35 = 1·5·7: exact
    ("tt", 26, 33, 1, True, "Gemm", ["--tt-rank", "2"]),       # 26 → 27 and 33 → 35: padded
    ("tt", 44, 39, 0, False, "Gemm", ["--tt-rank", "3"]),      # 44 → 45, 39 → 40
])
def test_factored_graphs_compute_what_the_dense_restore_computes(tmp_path, case):
    method, rows, columns, trans_b, bias, op, options = case
    source = tmp_path / "m.onnx"
    width = gemm_model(source, rows, columns, trans_b, bias, op, kronecker=[(3, 1), (3, 5), (3, 7)] if "1e-6" in options else None)
    container, dense, factored = tmp_path / "m.pith", tmp_path / "dense.onnx", tmp_path / "factored.onnx"
    assert run_pith("compress", str(source), "--factorize", method, *options, "-o", str(container)).returncode == 0
    assert run_pith("restore", str(container), "-o", str(dense)).returncode == 0
    result = run_pith("restore", str(container), "-o", str(factored), "--factored")
    assert result.returncode == 0 and "factored: w" in result.stdout, result.stdout + result.stderr
    onnx.checker.check_model(str(factored))
    x = np.random.default_rng(1).standard_normal((5, width)).astype(np.float32)
    want = ort.InferenceSession(str(dense)).run(None, {"x": x})[0]
    have = ort.InferenceSession(str(factored)).run(None, {"x": x})[0]
    assert have.shape == want.shape and within(have, want, rtol=1e-4, atol=1e-4), np.abs(have - want).max()
    np.save(tmp_path / "x.npy", x)
    out = tmp_path / "out.npz"
    assert run_pith("eval", str(factored), "--data", str(tmp_path / "x.npy"), "--save-outputs", str(out)).returncode == 0
    assert within(by_index(np.load(out), 0), want, rtol=1e-4, atol=1e-4)
    if "1e-6" in options:
        # Without truncation the tensor train reconstructs the weight to float precision.
        original = ort.InferenceSession(str(source)).run(None, {"x": x})[0]
        assert within(have, original, rtol=1e-4, atol=1e-4)


def test_pointwise_convolution_splits_into_two_convolutions(tmp_path):
    rng = np.random.default_rng(2)
    w = rng.standard_normal((16, 12, 1, 1)).astype(np.float32)
    b = rng.standard_normal(16).astype(np.float32)
    node = helper.make_node("Conv", ["x", "w", "b"], ["y"], name="pw", strides=[2, 2])
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 12, 9, 9])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 16, 5, 5])],
                              [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")])
    source = tmp_path / "c.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(source))
    container, dense, factored = tmp_path / "c.pith", tmp_path / "d.onnx", tmp_path / "f.onnx"
    assert run_pith("compress", str(source), "--factorize", "svd", "--rank", "4", "--only", "w", "-o", str(container)).returncode == 0
    assert run_pith("restore", str(container), "-o", str(dense)).returncode == 0
    assert run_pith("restore", str(container), "-o", str(factored), "--factored").returncode == 0
    assert [n.op_type for n in onnx.load(str(factored)).graph.node] == ["Conv", "Conv"]
    x = rng.standard_normal((1, 12, 9, 9)).astype(np.float32)
    want = ort.InferenceSession(str(dense)).run(None, {"x": x})[0]
    have = ort.InferenceSession(str(factored)).run(None, {"x": x})[0]
    assert within(have, want, rtol=1e-4, atol=1e-4)


def test_keras_dense_becomes_two_dense_layers(tmp_path):
    source = os.path.join(ROOT, "Fixtures", "lenet-300-100.h5")
    container, dense, factored = tmp_path / "k.pith", tmp_path / "dense.h5", tmp_path / "factored.h5"
    assert run_pith("compress", source, "--factorize", "svd", "--rank", "64", "--only", "*fc1*kernel*", "-o", str(container)).returncode == 0
    assert run_pith("restore", str(container), "-o", str(dense)).returncode == 0
    result = run_pith("restore", str(container), "-o", str(factored), "--factored")
    assert result.returncode == 0 and "fc1_factor_a" in result.stdout
    with h5py.File(factored) as f:
        names = [n.decode() for n in f["model_weights"].attrs["layer_names"]]
        assert names == ["fc1_factor_a", "fc1", "fc2", "fc3"]
        assert f["model_weights/fc1_factor_a/fc1_factor_a/kernel:0"].shape == (784, 64)
        assert f["model_weights/fc1/fc1/kernel:0"].shape == (64, 300)
        config = json.loads(f.attrs["model_config"])
        assert [l["config"]["name"] for l in config["config"]["layers"] if l["class_name"] == "Dense"] == ["fc1_factor_a", "fc1", "fc2", "fc3"]
    a = pith_json("eval", str(dense), "--data", IMAGES, "--labels", LABELS)
    b = pith_json("eval", str(factored), "--data", IMAGES, "--labels", LABELS)
    assert a["correct"] == b["correct"]
    try:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        import tf_keras
    except Exception:
        pytest.skip("SKIPPED (Keras load only): tf_keras is not installed; h5py and pith eval checked the file")
    model = tf_keras.models.load_model(str(factored), compile=False)
    x, y = mnist()
    assert int((model.predict(x, verbose=0).argmax(1) == y).sum()) == b["correct"]


def test_real_ocr_model_with_constant_node_weights(tmp_path):
    """rapidocr's detector holds its weights in Constant nodes: its pointwise convolutions are split,
    the Constant nodes dropped, and the factored file is smaller and computes what the dense one does."""
    from test_real_models import fetch
    (path,) = [p for p in fetch("rapidocr-onnxruntime==1.4.4", ".onnx") if p.endswith("ch_PP-OCRv4_det_infer.onnx")]
    container, dense, factored = tmp_path / "det.pith", tmp_path / "dense.onnx", tmp_path / "factored.onnx"
    report = pith_json("compress", path, "--factorize", "svd", "--energy", "0.9", "-o", str(container))
    assert report["factorizations"] and all(r["parameters_after"] < r["parameters_before"] for r in report["factorizations"])
    assert any("not fewer than" in s["reason"] for s in report["skipped"])  # splits that would not shrink are not made
    assert run_pith("restore", str(container), "-o", str(dense)).returncode == 0
    assert run_pith("restore", str(container), "-o", str(factored), "--factored").returncode == 0
    onnx.checker.check_model(str(factored))
    assert os.path.getsize(factored) < os.path.getsize(dense)
    model = onnx.load(str(factored))
    name = model.graph.input[0].name
    x = np.random.default_rng(0).random((1, 3, 96, 128), dtype=np.float32)
    want = ort.InferenceSession(str(dense)).run(None, {name: x})[0]
    have = ort.InferenceSession(str(factored)).run(None, {name: x})[0]
    assert within(have, want, rtol=1e-4, atol=1e-5)


def test_keras3_functional_dense_split_is_rewired(tmp_path):
    """Keras 3 records inbound nodes as call arguments: the split layer takes them over."""
    source = os.path.join(ROOT, "Fixtures", "keras", "keras3-nested.h5")
    container, dense, factored = tmp_path / "k3.pith", tmp_path / "dense.h5", tmp_path / "factored.h5"
    assert run_pith("compress", source, "--factorize", "svd", "--rank", "1", "--only", "model_weights/fc/fc/kernel", "-o", str(container)).returncode == 0
    assert run_pith("restore", str(container), "-o", str(dense)).returncode == 0
    assert run_pith("restore", str(container), "-o", str(factored), "--factored").returncode == 0
    with h5py.File(factored) as f:
        layers = json.loads(f.attrs["model_config"])["config"]["layers"]
        fc = [l for l in layers if l["config"]["name"] == "fc"][0]
        assert fc["inbound_nodes"][0]["args"][0]["config"]["keras_history"][0] == "fc_factor_a"
    x = np.load(os.path.join(ROOT, "Fixtures", "expected", "keras-outputs.npz"))["keras3-nested.h5/input"]
    np.save(tmp_path / "x.npy", x)
    outputs = []
    for path in (dense, factored):
        out = tmp_path / f"{path.stem}.npz"
        assert run_pith("eval", str(path), "--data", str(tmp_path / "x.npy"), "--save-outputs", str(out)).returncode == 0
        outputs.append(by_index(np.load(out), 0))
    assert within(outputs[1], outputs[0], rtol=1e-4, atol=1e-5)
    try:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        import keras
        assert int(keras.__version__.split(".")[0]) >= 3
    except Exception:
        pytest.skip("SKIPPED (Keras load only): Keras 3 is not installed; h5py and pith eval checked the file")
    model = keras.models.load_model(str(factored), compile=False)
    assert [l.name for l in model.layers][2:4] == ["fc_factor_a", "fc"]
    assert within(np.asarray(model(x)), outputs[0], rtol=1e-4, atol=1e-5)
