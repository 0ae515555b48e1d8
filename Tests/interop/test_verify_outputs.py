"""`pith verify` on outputs that are not class scores: a det-style probability map (N×1×H×W) and a model
with two outputs. Per output it reports max |error|, relative L2 error, cosine, SNR and the share within
tolerance; agreement only for class scores; its gates fail when the map is damaged."""
import json

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from conftest import run_pith


def det_model(path, scale=1.0, seed=0):
    """Conv 3→8 (3×3) → Relu → Conv 8→1 (1×1) → Sigmoid: a text-detector-shaped map, and a class-score
    head (GlobalAveragePool → Flatten → Gemm 8→4) as a second output."""
    rng = np.random.default_rng(seed)
    w1 = (rng.standard_normal((8, 3, 3, 3)) * 0.3).astype(np.float32)
    w2 = (rng.standard_normal((1, 8, 1, 1)) * 0.5 * scale).astype(np.float32)
    w3 = (rng.standard_normal((4, 8)) * 0.5).astype(np.float32)
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["h"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["h"], ["r"]),
        helper.make_node("Conv", ["r", "w2"], ["logits"]),
        helper.make_node("Sigmoid", ["logits"], ["map"]),
        helper.make_node("GlobalAveragePool", ["r"], ["pooled"]),
        helper.make_node("Flatten", ["pooled"], ["flat"]),
        helper.make_node("Gemm", ["flat", "w3"], ["scores"], transB=1),
    ]
    graph = helper.make_graph(
        nodes, "det",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 16, 16])],
        [helper.make_tensor_value_info("map", TensorProto.FLOAT, ["N", 1, 16, 16]),
         helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["N", 4])],
        [numpy_helper.from_array(w1, "w1"), numpy_helper.from_array(w2, "w2"), numpy_helper.from_array(w3, "w3")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    onnx.save(model, path)


def verify(*args):
    result = run_pith("verify", *args, "--format", "json")
    return result.returncode, json.loads(result.stdout) if result.stdout.startswith("{") else result.stderr


def test_probability_map_gets_snr_and_cosine_and_gates_fail_when_damaged(tmp_path):
    original, damaged = str(tmp_path / "det.onnx"), str(tmp_path / "damaged.onnx")
    det_model(original)
    det_model(damaged, scale=1.3)  # the map's head scaled: the map changes, the score head does not
    data = str(tmp_path / "x.npy")
    np.save(data, np.random.default_rng(1).random((4, 3, 16, 16), dtype=np.float32))

    code, same = verify(original, original, "--data", data, "--min-output-snr", "60", "--min-cosine", "0.9999")
    assert code == 0, same
    rows = {r["name"]: r for r in same["outputs"]["compared"]}
    assert set(rows) == {"map", "scores"}
    assert rows["map"]["max_abs_error"] == 0 and rows["map"]["within_tolerance"] == 1
    assert rows["map"].get("agreement") is None  # a probability map is not class scores
    assert rows["scores"]["agreement"] == 1

    code, report = verify(original, damaged, "--data", data, "--min-output-snr", "30", "--min-cosine", "0.9999")
    assert code == 1, report
    rows = {r["name"]: r for r in report["outputs"]["compared"]}
    m = rows["map"]
    assert m["snr_db"] < 30 and m["cosine"] < 1 and m["relative_l2_error"] > 0 and m["within_tolerance"] < 1
    assert rows["scores"]["max_abs_error"] == 0
    assert any("output `map`: SNR" in f for f in report["failures"])
    assert not any("`scores`" in f for f in report["failures"])
    # The figures are those numpy computes from the two models' outputs (onnxruntime).
    import onnxruntime as ort
    x = np.load(data)
    a = ort.InferenceSession(original).run(["map"], {"x": x})[0].astype(np.float64)
    b = ort.InferenceSession(damaged).run(["map"], {"x": x})[0].astype(np.float64)
    snr = 10 * np.log10((a ** 2).sum() / ((b - a) ** 2).sum())
    cosine = (a * b).sum() / np.sqrt((a ** 2).sum() * (b ** 2).sum())
    assert abs(m["snr_db"] - snr) < 0.05 and abs(m["cosine"] - cosine) < 1e-5
    assert abs(m["max_abs_error"] - np.abs(b - a).max()) < 1e-5

    # --max-output-error and --min-agreement gate too; an agreement gate on the map alone is refused.
    assert verify(original, damaged, "--data", data, "--max-output-error", "1e-6")[0] == 1
    assert verify(original, damaged, "--data", data, "--min-agreement", "0.99")[0] == 0  # scores unchanged


def test_gates_on_outputs_need_data(tmp_path):
    original = str(tmp_path / "det.onnx")
    det_model(original)
    result = run_pith("verify", original, original, "--min-output-snr", "30")
    assert result.returncode == 64 and "--min-output-snr needs --data" in result.stderr
