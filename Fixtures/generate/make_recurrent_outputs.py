"""Writes Fixtures/reference/recurrent-cases.json: small LSTM, GRU and RNN layers on seeded inputs with
the outputs onnxruntime computes, for PithEvalTests (RecurrentTests) to check the evaluator against
without Python.

onnxruntime is the reference here because onnx's ReferenceEvaluator ignores `sequence_lens`,
`activations` and `clip`; where it does apply (no sequence_lens, default activations) the script
asserts that the two agree. onnxruntime has no `layout` 1: that case is computed by onnxruntime with
layout 0 on transposed data.

Each case: op, opset, attributes (int / float / string / ints / floats / strings), inputs (name,
dtype, shape, data; null for an omitted optional input), outputs (shape, data)."""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))

import numpy as np  # noqa: E402
import onnxruntime as ort  # noqa: E402
from onnx import TensorProto as T  # noqa: E402
from onnx import helper as oh  # noqa: E402
from onnx.reference import ReferenceEvaluator  # noqa: E402

from common import FIXTURES  # noqa: E402

OUT = os.path.join(FIXTURES, "reference", "recurrent-cases.json")


def model(op, names, inputs, n_outputs, attributes):
    node = oh.make_node(op, names, [f"y{k}" for k in range(n_outputs)], **attributes)
    graph = oh.make_graph([node], "g",
                          [oh.make_tensor_value_info(n, T.INT32 if v.dtype == np.int32 else T.FLOAT, v.shape)
                           for n, v in zip(names, inputs) if n],
                          [oh.make_empty_tensor_value_info(f"y{k}") for k in range(n_outputs)])
    m = oh.make_model(graph, opset_imports=[oh.make_opsetid("", 14)])
    m.ir_version = 8
    return m


def run(op, names, inputs, n_outputs, attributes, layout=0):
    feeds = {n: v for n, v in zip(names, inputs) if n}
    if layout == 1:
        swapped = {n: (v.transpose(1, 0, 2) if v.ndim == 3 and n in ("X", "initial_h", "initial_c") else v) for n, v in feeds.items()}
        m = model(op, names, [swapped.get(n) if n else None for n in names], n_outputs, dict(attributes, layout=0))
        y, *states = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, swapped)
        return [y.transpose(2, 0, 1, 3)] + [s.transpose(1, 0, 2) for s in states]
    m = model(op, names, inputs, n_outputs, attributes)
    want = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, feeds)
    plain = "sequence_lens" not in names and not {"activations", "clip", "input_forget"} & set(attributes)
    if plain:
        reference = ReferenceEvaluator(m).run(None, feeds)
        for a, b in zip(want, reference):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    return want


def encode_attributes(attributes):
    out = {}
    for key, value in attributes.items():
        if isinstance(value, str):
            out[key] = {"string": value}
        elif isinstance(value, int):
            out[key] = {"int": value}
        elif isinstance(value, float):
            out[key] = {"float": value}
        elif all(isinstance(v, str) for v in value):
            out[key] = {"strings": value}
        else:
            out[key] = {"floats": [float(v) for v in value]}
    return out


def case(name, op, gates, direction, attributes, *, lengths=None, initial=False, peepholes=False, layout=0, seed=0):
    rng = np.random.default_rng(seed)
    seq, batch, size, hidden = 4, 3, 2, 3
    dirs = 2 if direction == "bidirectional" else 1
    x = rng.standard_normal((seq, batch, size) if layout == 0 else (batch, seq, size)).astype(np.float32)
    w = (rng.standard_normal((dirs, gates * hidden, size)) * 0.6).astype(np.float32)
    r = (rng.standard_normal((dirs, gates * hidden, hidden)) * 0.6).astype(np.float32)
    b = (rng.standard_normal((dirs, 2 * gates * hidden)) * 0.3).astype(np.float32)
    state = (dirs, batch, hidden) if layout == 0 else (batch, dirs, hidden)
    names, inputs = ["X", "W", "R", "B", "", ""], [x, w, r, b, None, None]
    if lengths is not None:
        names[4], inputs[4] = "sequence_lens", np.array(lengths, np.int32)
    if initial:
        names[5], inputs[5] = "initial_h", rng.standard_normal(state).astype(np.float32)
        if op == "LSTM":
            names.append("initial_c")
            inputs.append(rng.standard_normal(state).astype(np.float32))
    if peepholes:
        names += [""] * (7 - len(names)) + ["P"]
        inputs += [None] * (7 - len(inputs)) + [(rng.standard_normal((dirs, 3 * hidden)) * 0.5).astype(np.float32)]
    attributes = dict(attributes, hidden_size=hidden, direction=direction)
    if layout:
        attributes["layout"] = layout
    n_outputs = 3 if op == "LSTM" else 2
    outputs = run(op, names, inputs, n_outputs, {k: v for k, v in attributes.items() if k != "layout"}, layout)
    return {
        "name": name, "op": op, "opset": 14, "attributes": encode_attributes(attributes),
        "inputs": [None if not n else {"name": n, "dtype": "int32" if v.dtype == np.int32 else "float32", "shape": list(v.shape),
                                       "data": [float(e) for e in v.ravel()]} for n, v in zip(names, inputs)],
        "outputs": [{"shape": list(o.shape), "data": [float(e) for e in o.ravel()]} for o in outputs],
    }


def main():
    cases = [
        case("lstm-bidirectional-sequence-lens-peepholes", "LSTM", 4, "bidirectional", {}, lengths=[4, 2, 0], initial=True, peepholes=True, seed=1),
        case("lstm-reverse-clip-input-forget", "LSTM", 4, "reverse", {"clip": 0.8, "input_forget": 1}, lengths=[3, 4, 1], initial=True, seed=2),
        case("lstm-batch-first", "LSTM", 4, "forward", {}, initial=True, layout=1, seed=3),
        case("lstm-plain", "LSTM", 4, "forward", {}, seed=4),
        case("gru-reverse-linear-before-reset", "GRU", 3, "reverse", {"linear_before_reset": 1}, lengths=[2, 4, 3], initial=True, seed=5),
        case("gru-bidirectional-activations", "GRU", 3, "bidirectional",
             {"activations": ["HardSigmoid", "Softsign", "Sigmoid", "Elu"], "activation_alpha": [0.3, 0.8], "activation_beta": [0.45]},
             initial=True, seed=6),
        case("rnn-bidirectional-batch-first", "RNN", 1, "bidirectional", {}, initial=True, layout=1, seed=7),
        case("rnn-leaky-relu-clip", "RNN", 1, "forward", {"activations": ["LeakyRelu"], "activation_alpha": [0.2], "clip": 1.5},
             lengths=[1, 4, 3], seed=8),
    ]
    with open(OUT, "w") as f:
        json.dump({"generator": "Fixtures/generate/make_recurrent_outputs.py", "onnxruntime": ort.__version__, "cases": cases}, f)
        f.write("\n")
    print(f"wrote {len(cases)} cases to {OUT}")


if __name__ == "__main__":
    main()
