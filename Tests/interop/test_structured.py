"""Structured pruning (`--structured F`, `--structured-criterion`) end to end: the container restores to
an ONNX model with narrower layers that onnxruntime runs and numpy agrees with; `obs` (data-aware:
the consumer's other weights and bias updated by Optimal Brain Surgeon) moves the consumer's output
less than removing the same number by weight norm, on LeNet-300-100 (MNIST, held-out images) and on a
generated Conv → Relu → Conv model whose input channels are blocks of nine columns."""
import json
import os

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from conftest import MNIST, ROOT, run_pith
from test_data_aware import TEST, TRAIN, activations, images, layers

LENET = os.path.join(ROOT, "Fixtures", "lenet-300-100.onnx")


def compress_restore(tmp_path, name, model, *flags):
    container, restored = tmp_path / f"{name}.pith", tmp_path / f"{name}.onnx"
    result = run_pith("compress", "--format", "json", "--force", "-o", str(container), *flags, model, timeout=600)
    assert result.returncode == 0, result.stderr
    back = run_pith("restore", "--force", "-o", str(restored), str(container))
    assert back.returncode == 0, back.stderr
    return json.loads(result.stdout), str(restored)


def test_structured_container_restores_to_narrower_layers_onnxruntime_runs(pith, tmp_path):
    report, restored = compress_restore(tmp_path, "l2", LENET, "--structured", "0.2")
    model = onnx.load(restored)
    onnx.checker.check_model(model, full_check=True)
    shapes = {t.name: list(t.dims) for t in model.graph.initializer}
    assert shapes["fc1.weight"] == [240, 784] and shapes["fc1.bias"] == [240]
    assert shapes["fc2.weight"] == [80, 240] and shapes["fc2.bias"] == [80]
    assert shapes["fc3.weight"] == [10, 80]
    assert [p["action"] for p in report["passes"]] == ["structured", "structured"]
    x = np.random.default_rng(0).random((16, 784), dtype=np.float32)
    session = ort.InferenceSession(restored)
    have = session.run(None, {session.get_inputs()[0].name: x})[0]
    _, outputs = activations(layers(restored), x.astype(np.float64))
    np.testing.assert_allclose(have, outputs[-1], rtol=1e-4, atol=1e-5)


@pytest.mark.mnist
def test_obs_neuron_removal_beats_removal_by_norm_on_lenet(pith, tmp_path):
    recipe = tmp_path / "recipe.yaml"
    flags = {}
    for criterion in ("l2", "obs"):
        recipe.write_text(f"passes:\n- select:\n    names: [fc1.weight]\n  structured:\n    fraction: 0.2\n    criterion: {criterion}\n")
        extra = ["--calibration", TRAIN, "--calibration-samples", "1000"] if criterion == "obs" else []
        flags[criterion] = compress_restore(tmp_path, criterion, LENET, "--recipe", str(recipe), *extra)
    original = layers(LENET)
    x = images(TEST)
    _, want = activations(original, x)
    errors = {}
    for criterion, (report, restored) in flags.items():
        model = layers(restored)
        assert model[0][0].shape == (240, 784) and model[1][0].shape == (100, 240)
        _, have = activations(model, x)
        errors[criterion] = float(((want[1] - have[1]) ** 2).sum() / (want[1] ** 2).sum())
    # fc2's output on 10,000 held-out images: OBS is calibrated on training images only.
    assert errors["obs"] < 0.25 * errors["l2"], errors
    report = flags["obs"][0]
    row = report["passes"][0]
    assert row["layer_error"]["after"] < row["layer_error"]["data_free"]
    assert "bias updated" in row["detail"]


def conv_model(path, rng):
    """x (1×4×8×8) → Conv 3×3 (12 filters, pad 1) → Relu → Conv 3×3 (6 filters) → y."""
    w1 = rng.normal(0, 0.3, (12, 4, 3, 3)).astype(np.float32)
    b1 = rng.normal(0, 0.1, 12).astype(np.float32)
    w2 = rng.normal(0, 0.3, (6, 12, 3, 3)).astype(np.float32)
    b2 = rng.normal(0, 0.1, 6).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w1", "b1"], ["h"], name="conv1", pads=[1, 1, 1, 1]),
         helper.make_node("Relu", ["h"], ["r"], name="relu"),
         helper.make_node("Conv", ["r", "w2", "b2"], ["y"], name="conv2")],
        "convs", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 4, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 6, 6, 6])],
        [numpy_helper.from_array(a, n) for a, n in ((w1, "w1"), (b1, "b1"), (w2, "w2"), (b2, "b2"))])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)


def test_obs_removes_conv_channels_and_beats_removal_by_norm(pith, tmp_path):
    rng = np.random.default_rng(3)
    model = str(tmp_path / "convs.onnx")
    conv_model(model, rng)
    calibration, held_out = tmp_path / "calib.npy", rng.normal(0, 1, (64, 4, 8, 8)).astype(np.float32)
    np.save(calibration, rng.normal(0, 1, (256, 4, 8, 8)).astype(np.float32))
    session = ort.InferenceSession(model)
    want = session.run(None, {"x": held_out})[0]
    errors = {}
    for criterion in ("l2", "obs"):
        extra = ["--calibration", str(calibration)] if criterion == "obs" else []
        report, restored = compress_restore(tmp_path, criterion, model, "--structured", "0.25", "--structured-criterion", criterion, *extra)
        shapes = {t.name: list(t.dims) for t in onnx.load(restored).graph.initializer}
        assert shapes["w1"] == [9, 4, 3, 3] and shapes["b1"] == [9] and shapes["w2"] == [6, 9, 3, 3]
        have = ort.InferenceSession(restored).run(None, {"x": held_out})[0]
        errors[criterion] = float(((want - have) ** 2).sum() / (want ** 2).sum())
    assert errors["obs"] < errors["l2"], errors


def test_obs_without_calibration_is_refused(pith, tmp_path):
    result = run_pith("compress", "--structured", "0.2", "--structured-criterion", "obs", "-o", str(tmp_path / "x.pith"), LENET)
    assert result.returncode == 64, result.stderr
    assert "structured" in result.stderr and "--calibration" in result.stderr
    assert not (tmp_path / "x.pith").exists()
