"""`pith eval` against onnxruntime on the operators of issue 12 A, built here with onnx.helper:
control flow (If, Loop, Scan with outer-scope reads, loop-carried values, scan outputs),
recurrent layers (LSTM, GRU, RNN: directions, layouts, sequence_lens, peepholes, activations,
clip), comparison and logic, and tensors built from shapes; then graphs the evaluator must refuse
quickly with a named error (cycles, huge shapes, endless loops), and an unsupported operator no
output needs, which must not stop evaluation."""
import itertools
import subprocess

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto as T
from onnx import helper as oh

from conftest import run_pith, by_index

NP_TO_ONNX = {np.dtype(np.float32): T.FLOAT, np.dtype(np.int64): T.INT64, np.dtype(np.int32): T.INT32,
              np.dtype(np.bool_): T.BOOL, np.dtype(np.float64): T.DOUBLE, np.dtype(np.uint8): T.UINT8}


def make_model(nodes, inputs, outputs, initializers=(), opset=17):
    """A model of `nodes`; `inputs` maps names to example arrays (their types and shapes are declared),
    `outputs` lists output names (types left to inference)."""
    graph = oh.make_graph(
        nodes, "g",
        [oh.make_tensor_value_info(name, NP_TO_ONNX[a.dtype], a.shape) for name, a in inputs.items()],
        [oh.make_empty_tensor_value_info(name) for name in outputs],
        initializer=list(initializers))
    model = oh.make_model(graph, opset_imports=[oh.make_opsetid("", opset)])
    model.ir_version = min(model.ir_version, 10)
    return model


def evaluate(tmp_path, model, feeds):
    path = tmp_path / "model.onnx"
    onnx.save(model, path)
    data = tmp_path / "in.npz"
    np.savez(data, **feeds)
    out = tmp_path / "out.npz"
    # Every graph output asked for by name: one the evaluator cannot compute is refused (exit 69).
    result = run_pith("eval", str(path), "--data", str(data), "--batch-size", "0", "--save-outputs", str(out),
                      "--outputs", *[o.name for o in model.graph.output])
    return result, (np.load(out) if result.returncode == 0 else None)


def check(tmp_path, model, feeds, rtol=1e-4, atol=1e-5, want=None):
    """pith's outputs equal onnxruntime's (or `want`): same shapes, integers and booleans exactly, floats within tolerance."""
    if want is None:
        want = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, feeds)
    result, have = evaluate(tmp_path, model, feeds)
    assert result.returncode == 0, result.stderr
    for k, w in enumerate(want):
        h = by_index(have, k)
        assert h.shape == w.shape, f"output {k}: shape {h.shape}, onnxruntime {w.shape}"
        if w.dtype.kind in "biu":
            assert np.array_equal(h.astype(np.int64), w.astype(np.int64)), f"output {k}: {h} != {w}"
        else:
            np.testing.assert_allclose(h.astype(np.float64), w.astype(np.float64), rtol=rtol, atol=atol, err_msg=f"output {k}")


def rand(rng, *shape):
    return rng.standard_normal(shape).astype(np.float32)


# MARK: Recurrent layers

def recurrent_case(op, direction, layout, lengths, initial, extra, seed):
    rng = np.random.default_rng(seed)
    gates = {"RNN": 1, "GRU": 3, "LSTM": 4}[op]
    seq, batch, size, hidden = 4, 3, 5, 3
    dirs = 2 if direction == "bidirectional" else 1
    x = rand(rng, *((seq, batch, size) if layout == 0 else (batch, seq, size)))
    inputs = {"X": x}
    initializers = [
        onnx.numpy_helper.from_array(rand(rng, dirs, gates * hidden, size) * 0.5, "W"),
        onnx.numpy_helper.from_array(rand(rng, dirs, gates * hidden, hidden) * 0.5, "R"),
        onnx.numpy_helper.from_array(rand(rng, dirs, 2 * gates * hidden) * 0.5, "B"),
    ]
    names = ["X", "W", "R", "B", "", ""]
    if lengths is not None:
        inputs["sequence_lens"] = np.array(lengths, np.int32)
        names[4] = "sequence_lens"
    state = (dirs, batch, hidden) if layout == 0 else (batch, dirs, hidden)
    if initial:
        inputs["initial_h"] = rand(rng, *state)
        names[5] = "initial_h"
        if op == "LSTM":
            inputs["initial_c"] = rand(rng, *state)
            names.append("initial_c")
    if op == "LSTM" and extra.pop("peepholes", False):
        names += [""] * (7 - len(names)) + ["P"]
        initializers.append(onnx.numpy_helper.from_array(rand(rng, dirs, 3 * hidden) * 0.5, "P"))
    outputs = ["Y", "Y_h"] + (["Y_c"] if op == "LSTM" else [])
    node = oh.make_node(op, names, outputs, hidden_size=hidden, direction=direction, layout=layout, **extra)
    return make_model([node], inputs, outputs, initializers, opset=14), inputs


@pytest.mark.parametrize("op,direction,layout,lengths,initial", [
    (op, d, layout, lengths, initial)
    for op in ["LSTM", "GRU", "RNN"]
    for d in ["forward", "reverse", "bidirectional"]
    for layout, lengths, initial in [(0, None, False), (0, [4, 2, 3], True), (1, [1, 4, 0], True), (1, None, True)]
])
def test_recurrent_matches_onnxruntime(tmp_path, op, direction, layout, lengths, initial):
    seed = ["LSTM", "GRU", "RNN"].index(op) * 10 + ["forward", "reverse", "bidirectional"].index(direction)
    model, feeds = recurrent_case(op, direction, layout, lengths, initial, {}, seed=seed)
    if layout == 0:
        check(tmp_path, model, feeds)
        return
    # onnxruntime has no batch-first layout: it runs the same layer with layout 0 on transposed data.
    reference, _ = recurrent_case(op, direction, 0, lengths, initial, {}, seed=seed)
    swapped = {k: (v.transpose(1, 0, 2) if v.ndim == 3 else v) for k, v in feeds.items()}
    y, *states = ort.InferenceSession(reference.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, swapped)
    check(tmp_path, model, feeds, want=[y.transpose(2, 0, 1, 3)] + [s.transpose(1, 0, 2) for s in states])


@pytest.mark.parametrize("op,extra", [
    ("LSTM", dict(peepholes=True)),
    ("LSTM", dict(peepholes=True, clip=0.7)),
    ("LSTM", dict(input_forget=1)),
    ("LSTM", dict(activations=["HardSigmoid", "LeakyRelu", "Softsign"], activation_alpha=[0.3, 0.2], activation_beta=[0.4])),
    ("LSTM", dict(activations=["Sigmoid", "ScaledTanh", "Affine"], activation_alpha=[0.9, 1.5], activation_beta=[1.1, 0.1])),
    ("GRU", dict(linear_before_reset=1)),
    ("GRU", dict(linear_before_reset=1, clip=0.5)),
    ("GRU", dict(activations=["Sigmoid", "Elu"], activation_alpha=[0.7])),
    ("GRU", dict(activations=["HardSigmoid", "Softplus"])),
    ("RNN", dict(activations=["Relu"])),
    ("RNN", dict(activations=["ThresholdedRelu"], activation_alpha=[0.1])),
    ("RNN", dict(activations=["Sigmoid"], clip=0.3)),
])
def test_recurrent_options_match_onnxruntime(tmp_path, op, extra):
    for direction in ["forward", "bidirectional"]:
        options = dict(extra)
        if direction == "bidirectional" and "activations" in options:
            options["activations"] = options["activations"] * 2
            for key in ("activation_alpha", "activation_beta"):
                if key in options:
                    options[key] = options[key] * 2
        model, feeds = recurrent_case(op, direction, 0, [4, 1, 3], True, options, seed=7)
        check(tmp_path, model, feeds)


# MARK: Control flow

def loop_model(trip, with_condition):
    """Loop: carried (sum, count) += outer `step`; scan output per iteration; stops when sum > limit
    (when the condition input is given): mean(sum) ≥ limit."""
    one = oh.make_tensor("one", T.INT64, [], [1])
    body = oh.make_graph([
        oh.make_node("Add", ["sum_in", "step"], ["sum_out"]),                     # step: outer scope
        oh.make_node("Constant", [], ["one"], value=one),
        oh.make_node("Add", ["count_in", "one"], ["count_out"]),
        oh.make_node("ReduceMean", ["sum_out"], ["total"], keepdims=0),
        oh.make_node("Less", ["total", "limit"], ["cond_out"]),                   # limit: outer scope
        oh.make_node("Cast", ["i"], ["i_float"], to=T.FLOAT),
        oh.make_node("Mul", ["sum_out", "i_float"], ["scanned"]),
    ], "body",
        [oh.make_tensor_value_info("i", T.INT64, []), oh.make_tensor_value_info("cond_in", T.BOOL, []),
         oh.make_tensor_value_info("sum_in", T.FLOAT, [2]), oh.make_tensor_value_info("count_in", T.INT64, [])],
        [oh.make_tensor_value_info("cond_out", T.BOOL, []), oh.make_tensor_value_info("sum_out", T.FLOAT, [2]),
         oh.make_tensor_value_info("count_out", T.INT64, []), oh.make_tensor_value_info("scanned", T.FLOAT, [2])])
    nodes = [
        oh.make_node("Mul", ["x", "x"], ["step"]),
        oh.make_node("Loop", ["M" if trip is not None else "", "cond" if with_condition else "", "sum0", "count0"],
                     ["sum", "count", "scans"], body=body),
    ]
    inputs = {"x": np.array([0.5, 1.5], np.float32), "limit": np.array(9.0, np.float32), "sum0": np.zeros(2, np.float32),
              "count0": np.array(0, np.int64)}
    if trip is not None:
        inputs["M"] = np.array(trip, np.int64)
    if with_condition:
        inputs["cond"] = np.array(True)
    return make_model(nodes, inputs, ["sum", "count", "scans"], opset=13), inputs


@pytest.mark.parametrize("trip,with_condition", [(10, True), (2, True), (5, False), (0, True), (None, True)])
def test_loop_matches_onnxruntime(tmp_path, trip, with_condition):
    model, feeds = loop_model(trip, with_condition)
    check(tmp_path, model, feeds)


def test_nested_if_in_loop_reads_two_scopes_up(tmp_path):
    """A Loop body holds an If whose branches read the Loop's carried value and a main-graph value."""
    then_branch = oh.make_graph([oh.make_node("Add", ["acc_in", "bias"], ["t"])], "then", [], [oh.make_tensor_value_info("t", T.FLOAT, [3])])
    else_branch = oh.make_graph([oh.make_node("Sub", ["acc_in", "bias"], ["e"])], "else", [], [oh.make_tensor_value_info("e", T.FLOAT, [3])])
    body = oh.make_graph([
        oh.make_node("Constant", [], ["two"], value=oh.make_tensor("two", T.INT64, [], [2])),
        oh.make_node("Less", ["i", "two"], ["early"]),
        oh.make_node("If", ["early"], ["acc_out"], then_branch=then_branch, else_branch=else_branch),
        oh.make_node("Identity", ["cond_in"], ["cond_out"]),
        oh.make_node("Identity", ["acc_out"], ["seen"]),
    ], "body",
        [oh.make_tensor_value_info("i", T.INT64, []), oh.make_tensor_value_info("cond_in", T.BOOL, []),
         oh.make_tensor_value_info("acc_in", T.FLOAT, [3])],
        [oh.make_tensor_value_info("cond_out", T.BOOL, []), oh.make_tensor_value_info("acc_out", T.FLOAT, [3]),
         oh.make_tensor_value_info("seen", T.FLOAT, [3])])
    nodes = [oh.make_node("Relu", ["b"], ["bias"]), oh.make_node("Loop", ["M", "", "acc0"], ["acc", "trace"], body=body)]
    feeds = {"b": np.array([1.0, -2.0, 3.0], np.float32), "acc0": np.array([0.5, 0.5, 0.5], np.float32), "M": np.array(5, np.int64)}
    check(tmp_path, make_model(nodes, feeds, ["acc", "trace"], opset=13), feeds)


@pytest.mark.parametrize("input_axis,input_direction,output_axis,output_direction", [
    (0, 0, 0, 0), (1, 0, 0, 0), (1, 1, 1, 0), (0, 1, 1, 1), (-1, 0, -1, 1)])
def test_scan_matches_onnxruntime(tmp_path, input_axis, input_direction, output_axis, output_direction):
    body = oh.make_graph([
        oh.make_node("Add", ["state_in", "slice"], ["state_out"]),
        oh.make_node("Mul", ["state_out", "scale"], ["scanned"]),  # scale: outer scope
    ], "body",
        [oh.make_tensor_value_info("state_in", T.FLOAT, [3]), oh.make_tensor_value_info("slice", T.FLOAT, [3])],
        [oh.make_tensor_value_info("state_out", T.FLOAT, [3]), oh.make_tensor_value_info("scanned", T.FLOAT, [3])])
    node = oh.make_node("Scan", ["state0", "xs"], ["state", "ys"], body=body, num_scan_inputs=1,
                        scan_input_axes=[input_axis], scan_input_directions=[input_direction],
                        scan_output_axes=[output_axis], scan_output_directions=[output_direction])
    rng = np.random.default_rng(3)
    xs = rand(rng, 4, 3) if input_axis == 0 else rand(rng, 3, 4)
    feeds = {"state0": rand(rng, 3), "xs": xs, "scale": np.array([2.0], np.float32)}
    check(tmp_path, make_model([node], feeds, ["state", "ys"], opset=16), feeds)


def test_if_branches_of_different_shapes(tmp_path):
    then_branch = oh.make_graph([oh.make_node("Concat", ["x", "x"], ["t"], axis=0)], "then", [], [oh.make_tensor_value_info("t", T.FLOAT, None)])
    else_branch = oh.make_graph([oh.make_node("Neg", ["x"], ["e"])], "else", [], [oh.make_tensor_value_info("e", T.FLOAT, None)])
    for flag in [True, False]:
        feeds = {"c": np.array(flag), "x": np.array([1.0, 2.0], np.float32)}
        node = oh.make_node("If", ["c"], ["y"], then_branch=then_branch, else_branch=else_branch)
        check(tmp_path, make_model([node], feeds, ["y"], opset=13), feeds)


# MARK: Comparison, logic, tensors from shapes

@pytest.mark.parametrize("op", ["Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual"])
@pytest.mark.parametrize("dtype", [np.float32, np.int32, np.int64])
def test_comparisons_broadcast(tmp_path, op, dtype):
    rng = np.random.default_rng(1)
    feeds = {"a": rng.integers(-3, 3, (2, 3, 4)).astype(dtype), "b": rng.integers(-3, 3, (3, 1)).astype(dtype)}
    check(tmp_path, make_model([oh.make_node(op, ["a", "b"], ["y"])], feeds, ["y"]), feeds)


@pytest.mark.parametrize("op", ["And", "Or", "Xor"])
def test_logic_broadcasts(tmp_path, op):
    rng = np.random.default_rng(2)
    feeds = {"a": rng.integers(0, 2, (2, 1, 4)).astype(bool), "b": rng.integers(0, 2, (3, 4)).astype(bool)}
    nodes = [oh.make_node(op, ["a", "b"], ["t"]), oh.make_node("Not", ["t"], ["y"])]
    check(tmp_path, make_model(nodes, feeds, ["t", "y"]), feeds)


@pytest.mark.parametrize("dtype", [np.float32, np.int64, np.uint8])
def test_where_broadcasts_three_ways(tmp_path, dtype):
    rng = np.random.default_rng(4)
    feeds = {"c": rng.integers(0, 2, (2, 1, 3)).astype(bool), "x": rng.integers(-5, 5, (4, 1)).astype(dtype),
             "y": rng.integers(-5, 5, (3,)).astype(dtype)}
    check(tmp_path, make_model([oh.make_node("Where", ["c", "x", "y"], ["z"])], feeds, ["z"]), feeds)


@pytest.mark.parametrize("opset,split,num_outputs,outputs,axis,length", [
    (11, [1, 4], None, 2, 1, 5), (13, [2, 0, 3], None, 3, -1, 5), (13, None, None, 3, 0, 6), (18, None, 3, 3, 1, 7),
    (18, None, 2, 2, 1, 5)])
def test_split_forms(tmp_path, opset, split, num_outputs, outputs, axis, length):
    shape = (6, length) if axis != 0 else (length, 2)
    feeds = {"x": np.arange(np.prod(shape), dtype=np.float32).reshape(shape)}
    names = ["x"]
    attributes = {"axis": axis}
    initializers = []
    if split is not None and opset < 13:
        attributes["split"] = split
    elif split is not None:
        names.append("split")
        initializers.append(onnx.numpy_helper.from_array(np.array(split, np.int64), "split"))
    if num_outputs is not None:
        attributes["num_outputs"] = num_outputs
    out = [f"y{k}" for k in range(outputs)]
    check(tmp_path, make_model([oh.make_node("Split", names, out, **attributes)], feeds, out, initializers, opset=opset), feeds)


def test_shape_builders(tmp_path):
    """ConstantOfShape (int value), Range (int and float, negative delta), Expand, Tile, Size, NonZero."""
    value = oh.make_tensor("value", T.INT32, [1], [7])
    nodes = [
        oh.make_node("Shape", ["x"], ["s"]),
        oh.make_node("ConstantOfShape", ["s"], ["filled"], value=value),
        oh.make_node("Range", ["start", "limit", "delta"], ["r"]),
        oh.make_node("Range", ["fstart", "flimit", "fdelta"], ["fr"]),
        oh.make_node("Expand", ["x", "shape"], ["expanded"]),
        oh.make_node("Tile", ["x", "repeats"], ["tiled"]),
        oh.make_node("Size", ["tiled"], ["size"]),
        oh.make_node("Greater", ["x", "zero"], ["positive"]),
        oh.make_node("NonZero", ["positive"], ["where"]),
    ]
    feeds = {"x": np.array([[1.0, -2.0, 3.0]], np.float32), "start": np.array(10, np.int64), "limit": np.array(-3, np.int64),
             "delta": np.array(-4, np.int64), "fstart": np.array(0.5, np.float32), "flimit": np.array(2.0, np.float32),
             "fdelta": np.array(0.3, np.float32), "shape": np.array([2, 1, 1], np.int64), "repeats": np.array([3, 2], np.int64),
             "zero": np.array(0.0, np.float32)}
    outputs = ["filled", "r", "fr", "expanded", "tiled", "size", "where"]
    check(tmp_path, make_model(nodes, feeds, outputs), feeds)


# MARK: Refusals and what is not needed

def refused(tmp_path, model, feeds, code, *words):
    result, _ = evaluate(tmp_path, model, feeds)
    assert result.returncode == code, result.stderr
    for word in words:
        assert word in result.stderr, result.stderr


def test_huge_shapes_are_refused_before_allocating(tmp_path):
    for op, extra in [("ConstantOfShape", []), ("Expand", ["x"]), ("Tile", ["x"])]:
        shape = np.array([1 << 20, 1 << 20], np.int64)
        feeds = {"x": np.ones((1, 1), np.float32), "s": shape} if extra else {"s": shape}
        names = (["x", "s"] if extra else ["s"])
        refused(tmp_path, make_model([oh.make_node(op, names, ["y"])], feeds, ["y"]), feeds, 65, op, "larger than")


def test_endless_loops_are_refused(tmp_path):
    model, feeds = loop_model(1 << 40, False)
    refused(tmp_path, model, feeds, 69, "trip count", "limit")
    # A condition that never turns false stops at the limit: EvaluatorTests (with a small limit).


def test_cycles_and_undefined_values_are_named(tmp_path):
    feeds = {"x": np.ones(2, np.float32)}
    cycle = make_model([oh.make_node("Add", ["x", "b"], ["a"], name="first"), oh.make_node("Relu", ["a"], ["b"], name="second")], feeds, ["b"])
    refused(tmp_path, cycle, feeds, 65, "cycle", "`first`", "`second`")
    missing = make_model([oh.make_node("Add", ["x", "nowhere"], ["y"], name="adder")], feeds, ["y"])
    refused(tmp_path, missing, feeds, 65, "`adder`", "`nowhere`")


def test_an_unsupported_node_nothing_needs_does_not_stop_evaluation(tmp_path):
    feeds = {"x": np.array([1.0, -1.0], np.float32)}
    nodes = [oh.make_node("Relu", ["x"], ["y"]), oh.make_node("Frobnicate", ["x"], ["dead"], domain="com.example")]
    model = make_model(nodes, feeds, ["y"])
    model.opset_import.append(oh.make_opsetid("com.example", 1))
    result, have = evaluate(tmp_path, model, feeds)
    assert result.returncode == 0, result.stderr
    assert np.array_equal(by_index(have, 0), [1.0, 0.0])
    # Asked for as a graph output, it is named (exit 69).
    model.graph.output.append(oh.make_empty_tensor_value_info("dead"))
    refused(tmp_path, model, feeds, 69, "com.example.Frobnicate", "`dead`")


def test_subgraphs_fixture_matches_onnxruntime(tmp_path):
    """Fixtures/onnx/subgraphs.onnx: initializers and Constants inside If branches, a Loop body
    holding an If, a Scan body; its last node calls a model-local function the evaluator does not
    run. The CLI asks for every output, so it is refused naming the function; without that node
    the rest matches onnxruntime."""
    from conftest import ROOT
    import os
    model = onnx.load(os.path.join(ROOT, "Fixtures", "onnx", "subgraphs.onnx"))
    rng = np.random.default_rng(5)
    feeds = {"x0": rand(rng, 3), "trip": np.array(3, np.int64), "s0": rand(rng, 2), "xs": rand(rng, 4, 2)}
    for flag in [True, False]:
        feeds["cond"] = np.array(flag)
        refused(tmp_path, model, feeds, 69, "pith.test.AddBias", "`out`")
        del model.graph.node[-1]
        model.graph.output[0].name = "looped"
        del model.functions[:]
        check(tmp_path, model, feeds)
        model = onnx.load(os.path.join(ROOT, "Fixtures", "onnx", "subgraphs.onnx"))
