"""The evaluator's reductions, element-wise math, normalizations, indexing, Einsum, quantization and
ai.onnx.ml operators (issue 12, part B) against onnx's reference evaluator — and onnxruntime where
the reference departs from the specification — on one-node models built here, covering what the
ONNX 1.12 backend corpus does not: opset 18–21 forms (axes as inputs, blocked and 4-bit
quantization, GroupNormalization 18 and 21, Gelu), ties and NaN, reductions in ScatterND and
ScatterElements, Einsum diagonals and broadcasting, and the errors sizes read from data give."""
import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator

from conftest import run_pith, by_index

RNG = np.random.default_rng(12)


def rand(*shape, dtype=np.float32):
    return RNG.standard_normal(shape).astype(dtype)


def ints(low, high, *shape, dtype=np.int64):
    return RNG.integers(low, high, shape).astype(dtype)


class Init:
    """An input given as an initializer (for types an .npz cannot carry, such as int4)."""

    def __init__(self, tensor):
        self.tensor = tensor


def build(op, inputs, attrs=None, opset=18, outputs=1, domain=""):
    """A one-node model: `inputs` maps names to arrays (graph inputs), Init (initializers) or None
    (an omitted optional input)."""
    names, graph_inputs, initializers, feeds = [], [], [], {}
    for name, value in inputs.items():
        if value is None:
            names.append("")
        elif isinstance(value, Init):
            names.append(name)
            value.tensor.name = name
            initializers.append(value.tensor)
        else:
            names.append(name)
            graph_inputs.append(helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(value.dtype), value.shape))
            feeds[name] = value
    outs = [f"y{k}" for k in range(outputs)]
    node = helper.make_node(op, names, outs, domain=domain, **(attrs or {}))
    graph = helper.make_graph([node], "g", graph_inputs, [helper.make_empty_tensor_value_info(o) for o in outs], initializers)
    opsets = [helper.make_opsetid("", opset)] + ([helper.make_opsetid(domain, 3)] if domain else [])
    model = helper.make_model(graph, opset_imports=opsets, ir_version=10 if opset >= 21 else 8)
    return model, feeds


def pith_outputs(tmp_path, model, feeds, outputs):
    path = tmp_path / "model.onnx"
    onnx.save(model, path)
    data = tmp_path / "in.npz"
    np.savez(data, **feeds)
    out = tmp_path / "out.npz"
    result = run_pith("eval", str(path), "--data", str(data), "--batch-size", "0", "--save-outputs", str(out))
    assert result.returncode == 0, result.stderr
    got = np.load(out)
    return [by_index(got, k) for k in range(outputs)]


def assert_matches(have, want):
    want = np.asarray(want)
    assert have.shape == want.shape, f"shape {have.shape}, expected {want.shape}"
    if want.dtype.kind in "biu" or want.dtype.name in ("int4", "uint4"):
        np.testing.assert_array_equal(have.astype(np.int64), want.astype(np.int64))
    else:
        np.testing.assert_allclose(have.astype(np.float64), want.astype(np.float64), rtol=1e-5, atol=1e-6, equal_nan=True)


def check(tmp_path, op, inputs, attrs=None, opset=18, outputs=1, domain="", runtime="reference"):
    model, feeds = build(op, inputs, attrs, opset, outputs, domain)
    if runtime == "reference":
        want = ReferenceEvaluator(model).run(None, feeds)
    else:
        want = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, feeds)
    have = pith_outputs(tmp_path, model, feeds, outputs)
    for h, w in zip(have, want):
        assert_matches(h, w)


def refused(tmp_path, op, inputs, attrs=None, opset=18, domain=""):
    """pith's exit code and message for a model it must reject."""
    model, feeds = build(op, inputs, attrs, opset, 1, domain)
    path = tmp_path / "model.onnx"
    onnx.save(model, path)
    data = tmp_path / "in.npz"
    np.savez(data, **feeds)
    result = run_pith("eval", str(path), "--data", str(data), "--batch-size", "0", "--save-outputs", str(tmp_path / "out.npz"))
    return result.returncode, result.stderr


X = rand(3, 4, 5)
TIES = np.array([[3, 1, 3, 2, 1, 3], [0, 0, 0, 0, 0, 0], [np.nan, 5, np.nan, -np.inf, 5, np.inf]], np.float32)

CASES = {
    # Reductions: opset 18 axes inputs, noop_with_empty_axes, integers.
    "reduce_max_axes_input": ("ReduceMax", {"x": X, "axes": np.array([0, -1], np.int64)}, {"keepdims": 0}),
    "reduce_l2_noop": ("ReduceL2", {"x": X, "axes": np.array([], np.int64)}, {"noop_with_empty_axes": 1}),
    "reduce_sum_square_noop_no_axes": ("ReduceSumSquare", {"x": X}, {"noop_with_empty_axes": 1}),
    "reduce_prod_all": ("ReduceProd", {"x": rand(2, 3)}, {"keepdims": 0}),
    "reduce_min_attr_opset13": ("ReduceMin", {"x": X}, {"axes": [1], "keepdims": 1}, 13),
    "reduce_sum_int32": ("ReduceSum", {"x": ints(-100, 100, 3, 4, dtype=np.int32), "axes": np.array([1], np.int64)}, {}),
    "reduce_max_int8": ("ReduceMax", {"x": ints(-128, 127, 3, 4, dtype=np.int8)}, {"keepdims": 0}),
    "reduce_mean_int32_truncates": ("ReduceMean", {"x": np.array([[1, 2], [-3, -4], [5, 6]], np.int32), "axes": np.array([1], np.int64)}, {}),
    "reduce_l1_empty": ("ReduceL1", {"x": np.zeros((2, 0, 3), np.float32), "axes": np.array([1], np.int64)}, {}),
    "reduce_max_empty": ("ReduceMax", {"x": np.zeros((2, 0, 3), np.float32), "axes": np.array([1], np.int64)}, {}),
    "reduce_max_bool": ("ReduceMax", {"x": np.array([[True, False], [False, False]]), "axes": np.array([1], np.int64)}, {}, 20),
    "argmin_ties_last": ("ArgMin", {"x": TIES[:2]}, {"axis": 1, "select_last_index": 1}),
    "argmin_ties_first_int": ("ArgMin", {"x": TIES[:2].astype(np.int32)}, {"axis": 1, "keepdims": 0}),
    # Element-wise.
    "gelu_none": ("Gelu", {"x": rand(4, 5) * 3}, {}, 20),
    "gelu_tanh": ("Gelu", {"x": rand(4, 5) * 3}, {"approximate": "tanh"}, 20),
    "round_half_to_even": ("Round", {"x": np.array([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 2.4999, -0.4, 1e8 + 0.5], np.float32)}, {}),
    "mod_int_floored": ("Mod", {"a": np.array([-7, 7, -7, 7, 5, 0], np.int32), "b": np.array([3, -3, -3, 3, 0, 4], np.int32)}, {}),
    "mod_int_fmod": ("Mod", {"a": np.array([-7, 7, -7, 7, 0], np.int64), "b": np.array([3, -3, -3, 3, 4], np.int64)}, {"fmod": 1}),
    "mod_float_fmod": ("Mod", {"a": np.array([-7.5, 7.5, -7.5, 7.5, 1], np.float32), "b": np.array([2, -2, -2, 2, np.inf], np.float32)}, {"fmod": 1}),
    "mod_broadcast_uint8": ("Mod", {"a": ints(0, 255, 3, 4, dtype=np.uint8), "b": ints(1, 20, 4, dtype=np.uint8)}, {}),
    "bitshift_left_overflow": ("BitShift", {"a": np.array([255, 1, 16], np.uint8), "b": np.array([1, 7, 3], np.uint8)}, {"direction": "LEFT"}),
    "bitshift_right_uint32": ("BitShift", {"a": np.array([4294967295, 1, 16], np.uint32), "b": np.array([31, 0, 4], np.uint32)}, {"direction": "RIGHT"}),
    "isinf_positive_only": ("IsInf", {"x": np.array([np.inf, -np.inf, 1, np.nan], np.float32)}, {"detect_negative": 0}),
    "max_nan_broadcast_three": ("Max", {"a": np.array([[1, np.nan, 3]], np.float32), "b": np.array([[2], [0]], np.float32), "c": np.array([1.5], np.float32)}, {}),
    "min_int16": ("Min", {"a": ints(-1000, 1000, 2, 3, dtype=np.int16), "b": ints(-1000, 1000, 3, dtype=np.int16)}, {}),
    "mean_broadcast": ("Mean", {"a": rand(2, 3), "b": rand(3), "c": rand(2, 1)}, {}),
    "sum_one_input": ("Sum", {"a": rand(2, 3)}, {}),
    "prelu_channel_slope": ("PRelu", {"x": rand(2, 3, 4), "slope": rand(3, 1)}, {}),
    "softplus_large": ("Softplus", {"x": np.array([-100, -20, 0, 20, 100], np.float32)}, {}),
    "celu_alpha": ("Celu", {"x": rand(3, 4)}, {"alpha": 2.0}),
    "hardmax_ties_first": ("Hardmax", {"x": TIES[:2]}, {}, 13),
    "logsoftmax_axis0": ("LogSoftmax", {"x": rand(2, 3, 4)}, {"axis": 0}, 13),
    # Normalizations.
    "layer_norm_three_outputs": ("LayerNormalization", {"x": rand(2, 3, 4), "scale": rand(3, 4), "bias": rand(4)}, {"axis": 1, "epsilon": 1e-3}, 17, 3),
    "layer_norm_no_bias": ("LayerNormalization", {"x": rand(2, 3, 4), "scale": rand(4)}, {}, 17),
    "group_norm_18_per_group": ("GroupNormalization", {"x": rand(2, 4, 3, 3), "scale": rand(2), "bias": rand(2)}, {"num_groups": 2}, 18),
    "group_norm_21_per_channel": ("GroupNormalization", {"x": rand(2, 6, 5), "scale": rand(6), "bias": rand(6)}, {"num_groups": 3, "epsilon": 1e-2}, 21),
    "lp_norm_l2_axis0": ("LpNormalization", {"x": rand(3, 4)}, {"axis": 0}),
    "lp_norm_l2_zero_row": ("LpNormalization", {"x": np.array([[0, 0], [3, 4]], np.float32)}, {}),
    "mvn_default_axes": ("MeanVarianceNormalization", {"x": rand(2, 3, 4, 5)}, {}),
    "mvn_axes": ("MeanVarianceNormalization", {"x": rand(2, 3, 4)}, {"axes": [1]}),
    "instance_norm": ("InstanceNormalization", {"x": rand(2, 3, 4, 2), "scale": rand(3), "b": rand(3)}, {"epsilon": 1e-3}),
    # Indexing.
    "topk_largest_ties_nan": ("TopK", {"x": TIES, "k": np.array([4], np.int64)}, {}, 11, 2),
    "topk_smallest_ties_nan": ("TopK", {"x": TIES, "k": np.array([4], np.int64)}, {"largest": 0}, 11, 2),
    "topk_axis0_int": ("TopK", {"x": ints(0, 3, 5, 4), "k": np.array([3], np.int64)}, {"axis": 0}, 11, 2),
    "topk_k0": ("TopK", {"x": rand(2, 3), "k": np.array([0], np.int64)}, {}, 11, 2),
    "topk_opset1_attribute": ("TopK", {"x": rand(3, 5)}, {"k": 2}, 9, 2),
    "einsum_diagonal": ("Einsum", {"x": rand(4, 4)}, {"equation": "ii->i"}),
    "einsum_trace_implicit": ("Einsum", {"x": rand(4, 4)}, {"equation": "ii"}),
    "einsum_batch_diagonal_ellipsis": ("Einsum", {"x": rand(2, 3, 4, 4)}, {"equation": "...ii->...i"}),
    "einsum_matmul_implicit": ("Einsum", {"a": rand(3, 4), "b": rand(4, 5)}, {"equation": "ij,jk"}),
    "einsum_ellipsis_broadcast": ("Einsum", {"a": rand(1, 3, 4), "b": rand(2, 4, 5)}, {"equation": "...ij,...jk->...ik"}),
    "einsum_three_operands": ("Einsum", {"a": rand(2, 3), "b": rand(3, 4), "c": rand(4, 2)}, {"equation": "ij,jk,kl->il"}),
    "einsum_outer_and_sum": ("Einsum", {"a": rand(3), "b": rand(4)}, {"equation": "i,j->"}),
    "einsum_shared_batch_and_repeat": ("Einsum", {"a": rand(2, 3, 3), "b": rand(2, 3, 5)}, {"equation": "bii,bik->bk"}),
    "einsum_transpose_uppercase": ("Einsum", {"a": rand(2, 3, 4)}, {"equation": "Abc->cAb"}),
    "einsum_implicit_order": ("Einsum", {"a": rand(2, 3), "b": rand(3, 4)}, {"equation": "bA,Ac"}),
    "einsum_int": ("Einsum", {"a": ints(-5, 5, 3, 4), "b": ints(-5, 5, 4, 2)}, {"equation": "ij,jk->ik"}),
    "cumsum_exclusive_reverse": ("CumSum", {"x": rand(3, 4), "axis": np.array(1, np.int32)}, {"exclusive": 1, "reverse": 1}),
    "cumsum_int_axis0": ("CumSum", {"x": ints(-9, 9, 3, 4, dtype=np.int32), "axis": np.array(0, np.int64)}, {}),
    "onehot_axis0_out_of_range": ("OneHot", {"i": np.array([[0, -1, 7], [2, -4, 3]], np.int64), "depth": np.array(4, np.int64),
                                             "values": np.array([-1, 5], np.float32)}, {"axis": 0}, 11),
    "onehot_float_depth": ("OneHot", {"i": np.array([1, 2, 0], np.float32), "depth": np.array(3.0, np.float32),
                                      "values": np.array([0, 1], np.int32)}, {}, 11),
    "gather_elements_negative": ("GatherElements", {"x": rand(3, 4), "i": np.array([[-1, 0], [2, -4], [1, 1]], np.int64)}, {"axis": 1}),
    "gathernd_batch1": ("GatherND", {"x": rand(2, 3, 4), "i": np.array([[[1], [0]], [[2], [2]]], np.int64)}, {"batch_dims": 1}, 13),
    "gathernd_batch2_scalars": ("GatherND", {"x": rand(2, 3, 4), "i": ints(0, 4, 2, 3, 1)}, {"batch_dims": 2}, 13),
    "gathernd_slices": ("GatherND", {"x": rand(3, 4, 2), "i": np.array([[0, 1], [2, -1]], np.int64)}, {}, 13),
    "scatternd_max_duplicates": ("ScatterND", {"x": rand(4, 3), "i": np.array([[1], [1], [3]], np.int64), "u": rand(3, 3)}, {"reduction": "max"}),
    "scatternd_mul": ("ScatterND", {"x": rand(4, 3), "i": np.array([[1, 2], [1, 2], [0, 0]], np.int64), "u": rand(3)}, {"reduction": "mul"}),
    "scatter_elements_min_negative": ("ScatterElements", {"x": rand(3, 4), "i": np.array([[-1, 0], [0, 0]], np.int64), "u": rand(2, 2)},
                                      {"axis": 1, "reduction": "min"}),
    "scatter_elements_add_axis0": ("ScatterElements", {"x": rand(3, 4), "i": np.array([[2, 0, 2, 1]], np.int64), "u": rand(1, 4)}, {"reduction": "add"}),
    "depth_to_space_crd": ("DepthToSpace", {"x": rand(1, 8, 2, 3)}, {"blocksize": 2, "mode": "CRD"}),
    "depth_to_space_dcr": ("DepthToSpace", {"x": rand(2, 8, 2, 3)}, {"blocksize": 2}),
    "space_to_depth": ("SpaceToDepth", {"x": rand(2, 2, 4, 6)}, {"blocksize": 2}),
    "trilu_lower_k": ("Trilu", {"x": rand(2, 4, 5), "k": np.array(-1, np.int64)}, {"upper": 0}),
    "trilu_upper_k_large": ("Trilu", {"x": ints(-9, 9, 3, 3), "k": np.array(2, np.int64)}, {}),
    # Quantization.
    "quantize_per_axis_int8": ("QuantizeLinear", {"x": rand(2, 3, 4) * 50, "s": np.array([0.5, 1, 2], np.float32),
                                                  "zp": np.array([0, 10, -10], np.int8)}, {}, 13),
    "quantize_default_uint8_halves": ("QuantizeLinear", {"x": np.array([-1, 0.5, 1.5, 2.5, 300, 254.5], np.float32), "s": np.array(1, np.float32)}, {}, 13),
    "quantize_blocked_int4": ("QuantizeLinear", {"x": rand(4, 6) * 8, "s": np.abs(rand(4, 2)) + 0.5,
                                                 "zp": Init(helper.make_tensor("", TensorProto.INT4, [4, 2], [1, -1, 0, 2, -3, 7, -8, 0]))},
                              {"axis": 1, "block_size": 3}, 21),
    "quantize_uint16": ("QuantizeLinear", {"x": rand(5) * 10000, "s": np.array(0.25, np.float32), "zp": np.array(30000, np.uint16)}, {}, 21),
    "quantize_output_dtype_uint4": ("QuantizeLinear", {"x": rand(2, 5) * 8, "s": np.array(0.5, np.float32)}, {"output_dtype": TensorProto.UINT4}, 21),
    "dequantize_blocked_int4": ("DequantizeLinear", {"x": Init(helper.make_tensor("", TensorProto.INT4, [2, 5], [-8, -3, 0, 5, 7, 1, 2, 3, -1, -2])),
                                                     "s": np.array([[0.5, 2], [1, 0.25]], np.float32),
                                                     "zp": Init(helper.make_tensor("", TensorProto.INT4, [2, 2], [1, -2, 0, 3]))},
                                {"axis": 1, "block_size": 3}, 21),
    "dequantize_blocked_axis0_uint4": ("DequantizeLinear", {"x": Init(helper.make_tensor("", TensorProto.UINT4, [5, 2], list(range(10)))),
                                                            "s": np.array([[0.5, 2], [1, 0.25]], np.float32)}, {"axis": 0, "block_size": 4}, 21),
    "dequantize_per_axis_int16": ("DequantizeLinear", {"x": ints(-30000, 30000, 2, 3, dtype=np.int16), "s": np.array([0.5, 1, 2], np.float32),
                                                       "zp": np.array([0, 100, -100], np.int16)}, {}, 21),
    "dequantize_float8": ("DequantizeLinear", {"x": Init(numpy_helper.from_array(np.array([0.5, -3, 448, 0.0136], np.float32).astype(
                                                   helper.tensor_dtype_to_np_dtype(TensorProto.FLOAT8E4M3FN)))), "s": np.array(2, np.float32)}, {}, 19),
    "dequantize_int32": ("DequantizeLinear", {"x": ints(-100000, 100000, 6, dtype=np.int32), "s": np.array(0.01, np.float32)}, {}, 19),
    "dynamic_quantize": ("DynamicQuantizeLinear", {"x": rand(3, 4) * 5}, {}, 11, 3),
    "dynamic_quantize_positive": ("DynamicQuantizeLinear", {"x": np.abs(rand(3, 4)) + 1}, {}, 11, 3),
    "matmul_integer_batched_int8": ("MatMulInteger", {"a": ints(-128, 128, 2, 1, 3, 5, dtype=np.int8), "b": ints(-128, 128, 4, 5, 2, dtype=np.int8)}, {}, 10),
    "conv_integer_filter_zero_points": ("ConvInteger", {"x": ints(0, 256, 1, 4, 5, 5, dtype=np.uint8), "w": ints(0, 256, 6, 2, 3, 3, dtype=np.uint8),
                                                        "xz": np.array(128, np.uint8), "wz": ints(0, 256, 6, dtype=np.uint8)},
                                        {"group": 2, "pads": [1, 1, 1, 1], "strides": [2, 1]}, 10),
}


# Where onnx's reference departs from the specification, onnxruntime is the judge.
ORT_CASES = {
    # The reference ignores the opset-11 meaning (the input flattened to 2-D from `axis`).
    "hardmax_opset11_flattens": ("Hardmax", {"x": rand(2, 3, 4)}, {"axis": 1}, 11),
    "logsoftmax_opset11_flattens": ("LogSoftmax", {"x": rand(2, 3, 4)}, {"axis": 1}, 11),
    # The reference gives NaN for a row of −∞; the log of an empty sum is −∞.
    "reduce_log_sum_exp_infinities": ("ReduceLogSumExp", {"x": np.array([[1, np.inf, 2], [-np.inf, -np.inf, -np.inf], [1000, 999, 3]], np.float32),
                                                          "axes": np.array([1], np.int64)}, {}),
    # More than 256 terms of up to 255²: exact only if summed in chunks (the reference agrees too).
    "matmul_integer_zero_points": ("MatMulInteger", {"a": ints(0, 256, 3, 300, dtype=np.uint8), "b": ints(0, 256, 300, 4, dtype=np.uint8),
                                                     "az": np.array(255, np.uint8), "bz": np.array([255, 0, 128, 3], np.uint8)}, {}, 10),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_matches_onnx_reference(tmp_path, case):
    op, inputs, attrs, *rest = CASES[case]
    opset = rest[0] if rest else 18
    outputs = rest[1] if len(rest) > 1 else 1
    check(tmp_path, op, inputs, attrs, opset, outputs)


@pytest.mark.parametrize("case", sorted(ORT_CASES))
def test_matches_onnxruntime(tmp_path, case):
    op, inputs, attrs, *rest = ORT_CASES[case]
    opset = rest[0] if rest else 18
    outputs = rest[1] if len(rest) > 1 else 1
    check(tmp_path, op, inputs, attrs, opset, outputs, runtime="onnxruntime")


def test_conv_integer_sums_beyond_float_precision(tmp_path):
    """Sums of more than 256 products of 255² stay exact (BLAS runs in chunks of 256 terms)."""
    x = np.full((1, 64, 3, 3), 255, np.uint8)
    w = np.full((2, 64, 3, 3), 255, np.uint8)
    check(tmp_path, "ConvInteger", {"x": x, "w": w, "xz": np.array(0, np.uint8), "wz": np.array(0, np.uint8)}, {"pads": [1, 1, 1, 1]}, 10)


def test_matmul_integer_per_row_zero_points(tmp_path):
    """a_zero_point per row of A ([M], or [D, M, 1] for N-D A), as the specification describes;
    the onnx reference subtracts it along the wrong axis and onnxruntime refuses it, so numpy
    gives the expected values."""
    a, b = ints(0, 256, 2, 3, 5, dtype=np.uint8), ints(0, 256, 5, 4, dtype=np.uint8)
    az, bz = ints(0, 256, 2, 3, 1, dtype=np.uint8), ints(0, 256, 4, dtype=np.uint8)
    model, feeds = build("MatMulInteger", {"a": a, "b": b, "az": az, "bz": bz}, opset=10)
    want = (a.astype(np.int32) - az) @ (b.astype(np.int32) - bz)
    assert_matches(pith_outputs(tmp_path, model, feeds, 1)[0], want)
    model, feeds = build("MatMulInteger", {"a": a[0], "b": b, "az": az[0, :, 0]}, opset=10)
    assert_matches(pith_outputs(tmp_path, model, feeds, 1)[0], (a[0].astype(np.int32) - az[0]) @ b.astype(np.int32))


def test_lp_normalization_l1_sums_absolute_values(tmp_path):
    """p = 1 divides by Σ|x| as the specification and onnxruntime do (the onnx reference sums x)."""
    check(tmp_path, "LpNormalization", {"x": rand(3, 4)}, {"axis": 1, "p": 1}, 13, runtime="onnxruntime")


@pytest.mark.parametrize("norm", ["MAX", "L1", "L2"])
def test_ml_normalizer(tmp_path, norm):
    """As onnxruntime: MAX divides by the largest element, as the specification says (the onnx
    reference by the largest absolute value); a row whose divisor is 0 stays as it is."""
    x = np.array([[1, -3, 2], [0, 0, 0], [-1, -2, -4], [0, -1, 0]], np.float32)
    check(tmp_path, "Normalizer", {"x": x}, {"norm": norm}, domain="ai.onnx.ml", runtime="onnxruntime")


def test_ml_scaler_and_array_feature_extractor(tmp_path):
    check(tmp_path, "Scaler", {"x": rand(3, 4)}, {"offset": [0.5, -1, 0, 2], "scale": [2.0]}, domain="ai.onnx.ml")
    check(tmp_path, "ArrayFeatureExtractor", {"x": rand(2, 3, 5), "i": np.array([4, 0, 4], np.int64)}, domain="ai.onnx.ml")
    check(tmp_path, "ArrayFeatureExtractor", {"x": rand(5), "i": np.array([[1, 3]], np.int64)}, domain="ai.onnx.ml")


def test_ml_scaler_of_integers_gives_floats(tmp_path):
    """The domain declares Scaler's output float (onnxruntime agrees; the onnx reference keeps the input's type)."""
    check(tmp_path, "Scaler", {"x": ints(-9, 9, 3, 2)}, {"offset": [1.5, -1], "scale": [0.5, 2]}, domain="ai.onnx.ml", runtime="onnxruntime")


def test_zipmap_is_refused_naming_maps(tmp_path):
    code, message = refused(tmp_path, "ZipMap", {"x": rand(2, 3)}, {"classlabels_int64s": [1, 2, 3]}, domain="ai.onnx.ml")
    assert code == 69 and "ZipMap" in message and "sequence of maps" in message, message


@pytest.mark.parametrize("op,inputs,attrs,opset,words", [
    ("OneHot", {"i": np.array([1], np.int64), "depth": np.array(1 << 40, np.int64), "values": np.array([0, 1], np.float32)}, {}, 11, "depth"),
    ("OneHot", {"i": np.array([1], np.int64), "depth": np.array(0, np.int64), "values": np.array([0, 1], np.float32)}, {}, 11, "depth"),
    ("TopK", {"x": np.zeros((2, 3), np.float32), "k": np.array([4], np.int64)}, {}, 11, "k 4"),
    ("TopK", {"x": np.zeros((2, 3), np.float32), "k": np.array([-1], np.int64)}, {}, 11, "k -1"),
    ("Einsum", {"a": np.zeros((2, 3), np.float32)}, {"equation": "ijk->i"}, 12, "subscripts"),
    ("Einsum", {"a": np.zeros((2, 3), np.float32), "b": np.zeros((4, 3), np.float32)}, {"equation": "ij,ij->i"}, 12, "axis"),
    ("GatherElements", {"x": np.zeros((2, 3), np.float32), "i": np.array([[3]], np.int64)}, {"axis": 1}, 13, "index 3"),
    ("ScatterND", {"x": np.zeros((2, 3), np.float32), "i": np.array([[2]], np.int64), "u": np.zeros((1, 3), np.float32)}, {}, 13, "index 2"),
    ("GatherND", {"x": np.zeros((2, 3), np.float32), "i": np.array([[0, 1, 2]], np.int64)}, {}, 13, "index tuples"),
    ("DepthToSpace", {"x": np.zeros((1, 3, 2, 2), np.float32)}, {"blocksize": 2}, 13, "blocksize"),
    ("ReduceSum", {"x": np.zeros((2, 3), np.float32), "axes": np.array([2], np.int64)}, {}, 13, "axis 2"),
    ("DequantizeLinear", {"x": np.zeros((2, 6), np.int8), "s": np.ones((2, 3), np.float32)}, {"axis": 1, "block_size": 4}, 21, "blocked"),
    ("GroupNormalization", {"x": np.zeros((1, 4, 2), np.float32), "s": np.ones(4, np.float32), "b": np.ones(4, np.float32)}, {"num_groups": 2}, 18, "one per group"),
    ("Trilu", {"x": np.zeros(3, np.float32)}, {}, 14, "rank 2"),
    ("QuantizeLinear", {"x": np.zeros(3, np.float32), "s": np.ones(1, np.float32)}, {"output_dtype": TensorProto.FLOAT8E4M3FN}, 21, "float8e4m3fn"),
])
def test_bad_sizes_and_axes_are_named(tmp_path, op, inputs, attrs, opset, words):
    code, message = refused(tmp_path, op, inputs, attrs, opset)
    assert code in (65, 69) and words in message, f"exit {code}: {message}"
