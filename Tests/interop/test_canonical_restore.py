"""A lossless restore of an ONNX model Pith did not change is the source byte for byte where the source
used a canonical encoding (onnx re-serialises it to the very same bytes), and tensor for tensor always
(issue 15). The container format's sections "What the skeleton keeps of a slot" and "Putting tensor i
into slot i (restore)" give the rules: the skeleton tags a tensor whose data was in its type's typed
field (`float_data`, `int32_data`, …) or in no field at all, keeps an explicit `data_location` of
DEFAULT and the shape of a sparse tensor's coordinate indices, and restore writes each back the same way.

Each construct gets a small model built with onnx.helper here; the real models are the ONNX files of the
wheels in scripts/wheel_models.py, the ONNX fixtures, and the models of Debian's ONNX backend corpus that
hold tensors beyond `raw_data`. Compress runs with --per-tensor: a small model is
otherwise stored whole (the file itself), which would not exercise the skeleton."""
import glob
import os
import sys

import numpy as np
import onnx
import pytest
from onnx import TensorProto as TP
from onnx import helper, numpy_helper

from conftest import ROOT, run_pith
from test_onnx_slots import assert_graph_equal, assert_nodes_equal

sys.path.insert(0, os.path.join(ROOT, "scripts"))
import wheel_models  # noqa: E402

RNG = np.random.default_rng(15)
CORPUS_ROOT = "/usr/share/libonnx-testdata/data"
CORPUS = sorted(glob.glob(os.path.join(CORPUS_ROOT, "*", "*", "model.onnx")))


def canonical(data):
    return onnx.load_from_string(data).SerializeToString() == data


def round_trip(source, tmp_path, *compress):
    container, restored = str(tmp_path / "x.pith"), str(tmp_path / "restored.onnx")
    # Lossless, a small model is stored whole unless --per-tensor says otherwise.
    result = run_pith("compress", source, "-o", container, "--force", "--quiet", *(compress or ["--per-tensor"]))
    assert result.returncode == 0, result.stderr
    result = run_pith("restore", container, "-o", restored, "--force", "--quiet")
    assert result.returncode == 0, result.stderr
    return restored


def first_difference(a, b):
    """Where two files differ, for the failure message."""
    at = next((i for i in range(min(len(a), len(b))) if a[i] != b[i]), min(len(a), len(b)))
    return f"{len(a)} vs {len(b)} bytes, first difference at byte {at}: {a[max(0, at - 24):at + 24]!r} vs {b[max(0, at - 24):at + 24]!r}"


def model(initializers, nodes=(), sparse=(), functions=(), opset=21):
    """A model that reads every initializer through an Identity (and runs `nodes`), IR version 10."""
    nodes = list(nodes)
    outputs = []
    for t in initializers:
        nodes.append(helper.make_node("Identity", [t.name], [t.name + "_out"]))
        outputs.append(helper.make_tensor_value_info(t.name + "_out", t.data_type, None))
    for s in sparse:
        nodes.append(helper.make_node("Identity", [s.values.name], [s.values.name + "_out"]))
        outputs.append(helper.make_tensor_value_info(s.values.name + "_out", s.values.data_type, None))
    for n in nodes:
        if n.op_type != "Identity":
            outputs += [helper.make_tensor_value_info(o, TP.UNDEFINED, None) for o in n.output]
    graph = helper.make_graph(nodes, "canonical", [], outputs, list(initializers), sparse_initializer=list(sparse))
    imports = [helper.make_opsetid("", opset)] + [helper.make_opsetid(f.domain, 1) for f in functions]
    m = helper.make_model(graph, opset_imports=imports, producer_name="pith-tests", functions=list(functions))
    m.ir_version = 10
    return m


def typed(name, dtype, values, dims=None):
    """helper.make_tensor without raw=True: the data goes into the type's typed field."""
    values = list(values)
    return helper.make_tensor(name, dtype, [len(values)] if dims is None else dims, values)


def floats(n):
    return RNG.standard_normal(n).astype(np.float32).tolist()


def ints(n, low, high):
    return RNG.integers(low, high, n).tolist()


def typed_every_dtype():
    """Every ONNX type in its typed field, negative values where the type has them."""
    return model([
        typed("f32", TP.FLOAT, floats(6) + [float("nan"), -0.0, float("inf")]),
        typed("f64", TP.DOUBLE, RNG.standard_normal(5).tolist()),
        typed("c64", TP.COMPLEX64, [1 + 2j, -3.5j, 0.25]),
        typed("c128", TP.COMPLEX128, [1 - 1j, 2.5 + 0j]),
        typed("i64", TP.INT64, [-(2**62), -1, 0, 7, 2**40]),
        typed("i32", TP.INT32, [-(2**31), -5, 0, 2**31 - 1]),
        typed("i16", TP.INT16, ints(7, -(2**15), 2**15)),
        typed("i8", TP.INT8, [-128, -1, 0, 1, 127]),
        typed("u16", TP.UINT16, ints(7, 0, 2**16)),
        typed("u8", TP.UINT8, [0, 1, 128, 255]),
        typed("b", TP.BOOL, [True, False, True]),
        typed("u32", TP.UINT32, [0, 2**32 - 1, 12345]),
        typed("u64", TP.UINT64, [0, 2**64 - 1, 2**63]),
        typed("f16", TP.FLOAT16, [-1.5, 0.0, 65504.0, -0.0]),
        typed("bf16", TP.BFLOAT16, [-2.0, 1.0, 3.0e38]),
        typed("f8e4m3fn", TP.FLOAT8E4M3FN, [-1.0, 0.5, 448.0]),
        typed("f8e4m3fnuz", TP.FLOAT8E4M3FNUZ, [-1.0, 0.5]),
        typed("f8e5m2", TP.FLOAT8E5M2, [-1.0, 0.5, 57344.0]),
        typed("f8e5m2fnuz", TP.FLOAT8E5M2FNUZ, [-1.0, 0.5]),
        typed("f8e8m0", TP.FLOAT8E8M0, [1.0, 2.0, 0.5]),
        typed("i4", TP.INT4, [-8, -1, 0, 7, 3]),
        typed("u4", TP.UINT4, [0, 15, 9]),
        typed("f4", TP.FLOAT4E2M1, [-6.0, 0.5, 1.5]),
        typed("i2", TP.INT2, [-2, -1, 0, 1, 1]),
        typed("u2", TP.UINT2, [0, 3, 2]),
        typed("f6e2m3", TP.FLOAT6E2M3, [1.0, -2.0, 0.5, 7.5, -0.125]),
        typed("f6e3m2", TP.FLOAT6E3M2, [1.0, -2.0, 0.5, 28.0]),
        helper.make_tensor("strings", TP.STRING, [3], [b"alpha", b"", b"gamma"]),
    ])


def typed_large():
    """Typed fields of 64 KiB or more: float_data and double_data are written in place (their packed
    bytes are the raw bytes); int32_data and int64_data, varints, are encoded before packing."""
    return model([
        typed("big_f32", TP.FLOAT, floats(20000), [100, 200]),
        typed("big_f64", TP.DOUBLE, RNG.standard_normal(9000).tolist()),
        typed("big_u8", TP.UINT8, ints(70000, 0, 256)),
        typed("big_i8", TP.INT8, ints(70000, -128, 128)),
        typed("big_i64", TP.INT64, ints(9000, -(2**40), 2**40)),
        numpy_helper.from_array(RNG.standard_normal((128, 160)).astype(np.float32), "big_raw"),
    ])


def mixed_raw_and_typed():
    """Raw and typed tensors side by side, as exporters of quantized models write them (ddddocr
    common_old, pipecat smart-turn): scales in float_data, zero points in int32_data."""
    return model([
        numpy_helper.from_array(RNG.standard_normal((64, 32)).astype(np.float32), "w_raw"),
        typed("w_scale", TP.FLOAT, [0.0528623]),
        typed("w_zero_point", TP.UINT8, [121]),
        typed("shape", TP.INT64, [1, -1, 1, 1]),
        numpy_helper.from_array(np.array([3, -4], np.int64), "shape_raw"),
        typed("q_i8", TP.INT8, ints(40, -128, 128), [5, 8]),
        numpy_helper.from_array(RNG.integers(0, 256, (6, 7)).astype(np.uint8), "q_raw"),
    ])


def all_typed():
    """No tensor in raw_data at all (rapidocr's ch_ppocr_mobile_v2.0_cls_infer): Constant nodes whose
    `value` is in float_data, int64_data and int32_data."""
    nodes = [
        helper.make_node("Constant", [], ["k_w"], value=typed("k_w", TP.FLOAT, floats(200), [8, 25])),
        helper.make_node("Constant", [], ["k_shape"], value=typed("k_shape", TP.INT64, [1, -1])),
        helper.make_node("Constant", [], ["k_axis"], value=typed("k_axis", TP.INT32, [1], [])),
    ]
    return model([], nodes=nodes)


def empty_tensors():
    """Tensors without elements: without any data field (rapidocr PP-OCRv6 `helper.constant.96`),
    and with an empty raw_data."""
    no_field = [TP(name=f"empty_{n}", data_type=code, dims=[0]) for n, code in (("f32", TP.FLOAT), ("i64", TP.INT64), ("u8", TP.UINT8))]
    no_field.append(TP(name="empty_2d", data_type=TP.FLOAT, dims=[3, 0]))
    empty_raw = numpy_helper.from_array(np.zeros((0,), np.float32), "empty_raw")
    assert empty_raw.HasField("raw_data")
    nodes = [helper.make_node("Constant", [], ["k_empty"], value=TP(name="k_empty", data_type=TP.FLOAT, dims=[0]))]
    return model(no_field + [empty_raw, numpy_helper.from_array(np.ones(3, np.float32), "one")], nodes=nodes)


def explicit_default_location():
    """`data_location = DEFAULT` written out (it is optional, so onnx keeps it), on raw and typed tensors."""
    raw = numpy_helper.from_array(RNG.standard_normal((3, 4)).astype(np.float32), "raw_default")
    raw.data_location = TP.DEFAULT
    tensor = typed("typed_default", TP.INT64, [4, 5, 6])
    tensor.data_location = TP.DEFAULT
    return model([raw, tensor, typed("typed_plain", TP.FLOAT, [1.0])])


def attributes_and_subgraphs():
    """Typed tensors in node attributes (ConstantOfShape `value`, silero-vad's Constant), in an If
    branch and in a model-local function's body, with the Constant number attributes beside them."""
    then_graph = helper.make_graph(
        [helper.make_node("Constant", [], ["t_out"], value=typed("t_val", TP.FLOAT, [1.0, 2.0]))], "then", [],
        [helper.make_tensor_value_info("t_out", TP.FLOAT, [2])], [typed("then_init", TP.INT64, [16000], [])])
    else_graph = helper.make_graph(
        [helper.make_node("Constant", [], ["e_out"], value_floats=[3.0, -4.0])], "else", [],
        [helper.make_tensor_value_info("e_out", TP.FLOAT, [2])])
    function = helper.make_function(
        "pith.test", "Scaled", ["x"], ["y"],
        [helper.make_node("Constant", [], ["s"], value=typed("s", TP.DOUBLE, [0.5], [])),
         helper.make_node("Mul", ["x", "s"], ["y"])],
        [helper.make_opsetid("", 21)])
    nodes = [
        helper.make_node("Constant", [], ["sr"], value=typed("sr", TP.INT64, [16000], [])),
        helper.make_node("Constant", [], ["cond"], value=numpy_helper.from_array(np.array(True), "cond")),
        helper.make_node("ConstantOfShape", ["shape"], ["filled"], value=typed("fill", TP.FLOAT, [0.0])),
        helper.make_node("If", ["cond"], ["branch"], then_branch=then_graph, else_branch=else_graph),
        helper.make_node("Constant", [], ["c_ints"], value_ints=[1, -2, 3]),
        helper.make_node("Constant", [], ["c_float"], value_float=0.25),
        helper.make_node("Constant", [], ["c_strings"], value_strings=["a", "bc"]),
        helper.make_node("Scaled", ["filled"], ["scaled"], domain="pith.test"),
    ]
    return model([typed("shape", TP.INT64, [2, 3])], nodes=nodes, functions=[function])


def sparse_tensors():
    """Sparse initializers and a sparse Constant: coordinate indices ([nnz, rank], as the ONNX spec
    allows), linear indices, values and indices in typed fields."""
    coords = helper.make_sparse_tensor(
        numpy_helper.from_array(np.array([1.5, -2.0, 0.25], np.float32), "sparse_coords"),
        numpy_helper.from_array(np.array([[0, 1], [2, 3], [3, 4]], np.int64), "sparse_coords_idx"), [4, 5])
    linear = helper.make_sparse_tensor(
        numpy_helper.from_array(np.array([7.0, 8.0], np.float32), "sparse_linear"),
        numpy_helper.from_array(np.array([3, 17], np.int64), "sparse_linear_idx"), [4, 5])
    typed_fields = helper.make_sparse_tensor(
        typed("sparse_typed", TP.FLOAT, [0.5, -1.0, 2.0]), typed("sparse_typed_idx", TP.INT64, [0, 1, 1, 0, 2, 2], [3, 2]), [3, 3])
    constant = helper.make_node(
        "Constant", [], ["c_sparse"],
        sparse_value=helper.make_sparse_tensor(typed("csv", TP.INT64, [5, 6]), typed("csi", TP.INT64, [1, 3]), [2, 2]))
    return model([], nodes=[constant], sparse=[coords, linear, typed_fields])


CONSTRUCTS = {
    "typed-every-dtype": typed_every_dtype,
    "typed-large": typed_large,
    "mixed-raw-and-typed": mixed_raw_and_typed,
    "all-typed": all_typed,
    "empty-tensors": empty_tensors,
    "explicit-default-location": explicit_default_location,
    "attributes-and-subgraphs": attributes_and_subgraphs,
    "sparse-tensors": sparse_tensors,
}


@pytest.mark.parametrize("construct", list(CONSTRUCTS))
def test_a_canonical_model_restores_byte_for_byte(pith, tmp_path, construct):
    data = CONSTRUCTS[construct]().SerializeToString()
    assert canonical(data), "the model built here must be in onnx's canonical encoding"
    source = tmp_path / f"{construct}.onnx"
    source.write_bytes(data)
    with open(round_trip(str(source), tmp_path), "rb") as f:
        restored = f.read()
    assert restored == data, f"{construct}: {first_difference(restored, data)}"


def test_a_lossy_restore_keeps_each_tensor_in_its_field(pith, tmp_path):
    """Pruned, a weight in float_data stays in float_data (its values changed, the layout did not),
    and the untouched typed and raw tensors beside it stay where they were."""
    x = helper.make_tensor_value_info("x", TP.FLOAT, [1, 64])
    y = helper.make_tensor_value_info("y", TP.FLOAT, [1, 32])
    weight = typed("weight", TP.FLOAT, floats(64 * 32), [64, 32])
    bias = typed("bias", TP.FLOAT, floats(32))
    shape = typed("shape", TP.INT64, [1, 32])
    raw = numpy_helper.from_array(RNG.standard_normal(32).astype(np.float32), "offset")
    nodes = [helper.make_node("MatMul", ["x", "weight"], ["h"]), helper.make_node("Add", ["h", "bias"], ["a"]),
             helper.make_node("Add", ["a", "offset"], ["b"]), helper.make_node("Reshape", ["b", "shape"], ["y"])]
    graph = helper.make_graph(nodes, "lossy", [x], [y], [weight, bias, shape, raw])
    source = tmp_path / "lossy.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)]), str(source))
    restored = onnx.load(round_trip(str(source), tmp_path, "--prune", "0.5"))
    fields = {t.name: [f.name for f, _ in t.ListFields() if f.name.endswith("_data")] for t in restored.graph.initializer}
    assert fields == {"weight": ["float_data"], "bias": ["float_data"], "shape": ["int64_data"], "offset": ["raw_data"]}
    pruned = numpy_helper.to_array(restored.graph.initializer[0])
    assert pruned.shape == (64, 32) and 0.4 < np.mean(pruned == 0) < 0.6


def real_models():
    """The ONNX files of the wheels in scripts/wheel_models.py (each once) and the ONNX fixtures."""
    seen = set()
    for m in wheel_models.CATALOGUE:
        if "==" in m.requirement and (m.requirement, m.member) not in seen:
            seen.add((m.requirement, m.member))
            yield pytest.param(m, id=os.path.basename(m.member))
    fixtures = os.path.join(ROOT, "Fixtures", "onnx")
    for name in sorted(os.listdir(fixtures)) + ["../lenet-300-100.onnx"]:
        if name.endswith(".onnx"):
            yield pytest.param(os.path.join(fixtures, name), id=os.path.basename(name))


@pytest.mark.parametrize("source", list(real_models()))
def test_a_real_model_restores_byte_for_byte_when_canonical_and_tensor_for_tensor_always(pith, tmp_path, source):
    if isinstance(source, wheel_models.Model):
        try:
            source = source.path()
        except wheel_models.Unavailable as e:
            pytest.skip(f"SKIPPED: {e}")
    with open(source, "rb") as f:
        data = f.read()
    restored = round_trip(source, tmp_path)
    with open(restored, "rb") as f:
        back = f.read()
    if canonical(data):
        assert back == data, f"{os.path.basename(source)}: {first_difference(back, data)}"
        return
    # Not canonical: every tensor and attribute as the source's, the bytes not.
    x, y = onnx.load(source), onnx.load(restored)
    assert_graph_equal(x.graph, y.graph, "")
    for f, g in zip(x.functions, y.functions, strict=True):
        assert_nodes_equal(f.node, g.node, f"function:{f.name}/")


def beyond_raw_data(path):
    """Whether a model holds a numeric tensor outside `raw_data` (in a typed field or in none), a sparse
    tensor or an explicit `data_location`: what the skeleton's tags and restore's rules are for. The
    corpus models that hold none (958) have only what the fixtures and real models above already cover."""
    def tensors(graph):
        yield from graph.initializer
        for s in graph.sparse_initializer:
            yield from (s.values, s.indices, None)
        for node in graph.node:
            yield from nodes_tensors(node)

    def nodes_tensors(node):
        for a in node.attribute:
            if a.HasField("t"):
                yield a.t
            yield from a.tensors
            if a.HasField("sparse_tensor") or len(a.sparse_tensors):
                yield None
            for g in ([a.g] if a.HasField("g") else []) + list(a.graphs):
                yield from tensors(g)

    m = onnx.load(path, load_external_data=False)
    every = list(tensors(m.graph)) + [t for f in m.functions for n in f.node for t in nodes_tensors(n)]
    return any(t is None or t.HasField("data_location") or (t.data_type != TP.STRING and not t.HasField("raw_data")) for t in every)


@pytest.mark.parametrize("source", [p for p in CORPUS if beyond_raw_data(p)], ids=lambda p: os.path.relpath(os.path.dirname(p), CORPUS_ROOT))
def test_a_backend_corpus_model_restores_byte_for_byte(pith, tmp_path, source):
    """Debian's libonnx-testdata (test_onnx_corpus.py skips visibly without it): every model is canonical.
    The 114 that hold tensors beyond `raw_data` (Constant values in typed fields in the expanded function
    tests, empty tensors without a data field) all came back with other bytes before the tags."""
    with open(source, "rb") as f:
        data = f.read()
    assert canonical(data)
    with open(round_trip(source, tmp_path), "rb") as f:
        back = f.read()
    assert back == data, first_difference(back, data)
