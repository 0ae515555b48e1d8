"""`pith eval` against onnxruntime on its contrib operators (domain com.microsoft) that the evaluator
runs: DynamicQuantizeLSTM, built here with onnx.helper — every direction, int8 and uint8 weights,
per-tensor and per-column scales, sequence_lens (with an empty entry), initial states, peepholes, the
model with and without Y — and malformed layers refused by name. Then the float32 Sigmoid and Tanh,
which must equal onnxruntime's bit for bit: a model that quantizes as it runs turns an ulp into a
quantization step.

onnxruntime runs with one thread: with several, it quantizes each thread's share of a batch of 2 or more
(hidden size ≤ 256) on its own range, so its results depend on the thread count."""
import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto as T
from onnx import helper as oh
from onnx import numpy_helper as nh

from conftest import by_index, run_pith

INPUTS = ["X", "W", "R", "B", "sequence_lens", "initial_h", "initial_c", "P",
          "W_scale", "W_zero_point", "R_scale", "R_zero_point"]


def onnxruntime(model, feeds):
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return session.run(None, feeds)


def pith(tmp_path, model, feeds):
    path, data, out = tmp_path / "model.onnx", tmp_path / "in.npz", tmp_path / "out.npz"
    onnx.save(model, path)
    np.savez(data, **feeds)
    result = run_pith("eval", str(path), "--data", str(data), "--batch-size", "0", "--save-outputs", str(out),
                      "--outputs", *[o.name for o in model.graph.output])
    return result, (np.load(out) if result.returncode == 0 else None)


def quantized(rng, shape, signed, per_column):
    """Weights quantized from floats: int8 symmetric (zero point 0) or uint8 asymmetric, per direction or
    per column of the last axis. Returns (values, scale, zero point)."""
    w = rng.standard_normal(shape).astype(np.float32) * 0.6
    axes = (1,) if per_column else (1, 2)
    low, high = np.minimum(w.min(axis=axes), 0), np.maximum(w.max(axis=axes), 0)
    if signed:
        scale = (np.maximum(-low, high) / 127).astype(np.float32)
        zero = np.zeros_like(scale, dtype=np.int8)
        q = np.clip(np.round(w / np.expand_dims(scale, axes)), -127, 127).astype(np.int8)
    else:
        scale = ((high - low) / 255).astype(np.float32)
        # onnxruntime takes one zero point for the whole tensor when it is given per column.
        z = np.clip(np.round(-low.min() / scale.max()), 0, 255)
        zero = np.full(scale.shape, z, np.uint8)
        q = np.clip(np.round(w / np.expand_dims(scale, axes)) + np.expand_dims(zero, axes), 0, 255).astype(np.uint8)
    return q, scale, zero


def lstm_case(direction="forward", signed=True, per_column=False, lengths=None, initial=False, peepholes=False,
              with_y=True, seq=5, batch=3, size=6, hidden=4, seed=0, **attributes):
    """A DynamicQuantizeLSTM model and its feeds. X grows along the sequence, so the steps past the longest
    entry would widen the quantization range if they were counted."""
    rng = np.random.default_rng(seed)
    dirs = 2 if direction == "bidirectional" else 1
    x = (rng.standard_normal((seq, batch, size)) * (1 + np.arange(seq)[:, None, None])).astype(np.float32)
    w, w_scale, w_zero = quantized(rng, (dirs, size, 4 * hidden), signed, per_column)
    r, r_scale, r_zero = quantized(rng, (dirs, hidden, 4 * hidden), signed, per_column)
    tensors = {"W": w, "R": r, "B": (rng.standard_normal((dirs, 8 * hidden)) * 0.3).astype(np.float32),
               "W_scale": w_scale, "W_zero_point": w_zero, "R_scale": r_scale, "R_zero_point": r_zero}
    feeds = {"X": x}
    if lengths is not None:
        feeds["sequence_lens"] = np.array(lengths, np.int32)
    if initial:
        feeds["initial_h"] = (rng.standard_normal((dirs, batch, hidden)) * 0.5).astype(np.float32)
        feeds["initial_c"] = rng.standard_normal((dirs, batch, hidden)).astype(np.float32)
    if peepholes:
        tensors["P"] = (rng.standard_normal((dirs, 3 * hidden)) * 0.5).astype(np.float32)
    names = [n if n in feeds or n in tensors else "" for n in INPUTS]
    outputs = ["Y", "Y_h", "Y_c"] if with_y else ["", "Y_h", "Y_c"]
    node = oh.make_node("DynamicQuantizeLSTM", names, outputs, domain="com.microsoft", hidden_size=hidden,
                        direction=direction, **attributes)
    graph = oh.make_graph(
        [node], "g",
        [oh.make_tensor_value_info(k, T.INT32 if v.dtype == np.int32 else T.FLOAT, v.shape) for k, v in feeds.items()],
        [oh.make_empty_tensor_value_info(n) for n in outputs if n],
        initializer=[nh.from_array(np.ascontiguousarray(v), k) for k, v in tensors.items()])
    model = oh.make_model(graph, opset_imports=[oh.make_opsetid("", 17), oh.make_opsetid("com.microsoft", 1)])
    model.ir_version = 8
    return model, feeds


def check(tmp_path, model, feeds):
    """pith's outputs equal onnxruntime's within 1e-4 relative (+1e-5); returns the largest |Δ|."""
    want = onnxruntime(model, feeds)
    result, have = pith(tmp_path, model, feeds)
    assert result.returncode == 0, result.stderr
    worst = 0.0
    for k, w in enumerate(want):
        h = by_index(have, k)
        assert h.shape == w.shape, f"output {k}: shape {h.shape}, onnxruntime {w.shape}"
        np.testing.assert_allclose(h, w, rtol=1e-4, atol=1e-5, err_msg=f"output {k}")
        worst = max(worst, float(np.abs(h.astype(np.float64) - w).max()))
    return worst


@pytest.mark.parametrize("direction", ["forward", "reverse", "bidirectional"])
@pytest.mark.parametrize("lengths,initial", [(None, False), ([5, 2, 3], True), ([1, 4, 0], True)])
def test_dynamic_quantize_lstm_matches_onnxruntime(tmp_path, direction, lengths, initial):
    seed = ["forward", "reverse", "bidirectional"].index(direction) * 3 + (0 if lengths is None else lengths[0])
    model, feeds = lstm_case(direction, lengths=lengths, initial=initial, seed=seed)
    check(tmp_path, model, feeds)


@pytest.mark.parametrize("options", [
    dict(signed=False),                                   # uint8 weights with a zero point
    dict(per_column=True),                                # one scale per column of W and R
    dict(signed=False, per_column=True, direction="bidirectional"),
    dict(peepholes=True, lengths=[5, 3, 4], initial=True),
    dict(input_forget=1, direction="reverse"),
    dict(clip=0.8, direction="bidirectional"),
    dict(activations=["HardSigmoid", "Tanh", "Softsign"], activation_alpha=[0.3], activation_beta=[0.4]),
    dict(batch=1, seq=7, size=24, hidden=16),             # ddddocr's case: one entry
])
def test_dynamic_quantize_lstm_options_match_onnxruntime(tmp_path, options):
    model, feeds = lstm_case(seed=11, **options)
    check(tmp_path, model, feeds)


@pytest.mark.parametrize("direction", ["forward", "reverse", "bidirectional"])
def test_dynamic_quantize_lstm_without_y(tmp_path, direction):
    """Without Y, onnxruntime reads each step's previous state from Y_h, where an entry that has finished
    keeps its last state, and that state joins the quantization range; with Y it reads zeros there."""
    for with_y in (True, False):
        model, feeds = lstm_case(direction, lengths=[1, 5, 2], initial=True, with_y=with_y, seed=21)
        check(tmp_path, model, feeds)


def refused(tmp_path, model, feeds, code, *words):
    result, _ = pith(tmp_path, model, feeds)
    assert result.returncode == code, result.stderr
    for word in words:
        assert word in result.stderr, result.stderr


def test_malformed_dynamic_quantize_lstm_is_refused_by_name(tmp_path):
    model, feeds = lstm_case()
    w = next(t for t in model.graph.initializer if t.name == "W")
    transposed = nh.to_array(w).transpose(0, 2, 1).copy()    # LSTM's layout, not the contrib operator's
    w.CopyFrom(nh.from_array(transposed, "W"))
    refused(tmp_path, model, feeds, 65, "W has shape [1, 16, 6]", "[num_directions, input_size, 4·hidden_size]")

    model, feeds = lstm_case()
    node = model.graph.node[0]
    node.input[10] = ""                                     # R_scale
    refused(tmp_path, model, feeds, 65, "DynamicQuantizeLSTM needs R_scale (input 10)")

    model, feeds = lstm_case()
    scale = next(t for t in model.graph.initializer if t.name == "W_scale")
    scale.CopyFrom(nh.from_array(np.ones((1, 3), np.float32), "W_scale"))
    refused(tmp_path, model, feeds, 65, "W_scale has shape [1, 3]")

    model, feeds = lstm_case()
    zero = next(t for t in model.graph.initializer if t.name == "R_zero_point")
    zero.CopyFrom(nh.from_array(np.zeros(1, np.uint8), "R_zero_point"))
    refused(tmp_path, model, feeds, 65, "R_zero_point has type uint8; its weight has type int8")

    model, feeds = lstm_case(per_column=True)
    zero = next(t for t in model.graph.initializer if t.name == "W_zero_point")
    zero.CopyFrom(nh.from_array(np.arange(16, dtype=np.int8).reshape(1, 16), "W_zero_point"))
    refused(tmp_path, model, feeds, 69, "W_zero_point with different zero points within direction 0")


@pytest.mark.parametrize("op", ["Sigmoid", "Tanh"])
def test_float_activations_equal_onnxruntime_bit_for_bit(tmp_path, op):
    rng = np.random.default_rng(5)
    x = np.concatenate([rng.standard_normal(40000) * 4, rng.uniform(-25, 25, 20000),
                        [0, -0.0, 1e-30, -1e-30, 8.99, 9.01, 17.99, 18.01, -40, 40, np.inf, -np.inf]]).astype(np.float32)
    graph = oh.make_graph([oh.make_node(op, ["x"], ["y"])], "g", [oh.make_tensor_value_info("x", T.FLOAT, [len(x)])],
                          [oh.make_tensor_value_info("y", T.FLOAT, [len(x)])])
    model = oh.make_model(graph, opset_imports=[oh.make_opsetid("", 17)])
    model.ir_version = 8
    want = onnxruntime(model, {"x": x})[0]
    result, have = pith(tmp_path, model, {"x": x})
    assert result.returncode == 0, result.stderr
    differ = np.flatnonzero(by_index(have, 0).view(np.uint32) != want.view(np.uint32))
    assert differ.size == 0, f"{differ.size} values differ from onnxruntime's, first at x = {x[differ[:5]]}"
