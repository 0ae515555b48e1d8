"""Small ONNX models that cover every path of Pith's ONNX importer.

Writes into Fixtures/onnx/ and a manifest per model into Fixtures/expected/onnx/.
Each manifest row holds what this script put in the file (name, dtype, shape, count)
and, for real types, nonzero/min/max/mean computed here with numpy and ml_dtypes,
so tests check Pith's decoders against an independent implementation.
Needs: numpy, onnx, ml_dtypes.
"""
import os
import sys

import ml_dtypes as mld
import numpy as np
import onnx
from onnx import TensorProto as TP
from onnx import helper, numpy_helper

sys.path.insert(0, os.path.dirname(__file__))
from common import FIXTURES, onnx_inventory, stats_entry, write_manifest  # noqa: E402

OUT = os.path.join(FIXTURES, "onnx")
rng = np.random.default_rng(20251123)

# name, ONNX code, numpy/ml_dtypes type, bits
TYPES = [
    ("float32", TP.FLOAT, np.float32, 32), ("float64", TP.DOUBLE, np.float64, 64),
    ("float16", TP.FLOAT16, np.float16, 16), ("bfloat16", TP.BFLOAT16, mld.bfloat16, 16),
    ("float8e4m3fn", TP.FLOAT8E4M3FN, mld.float8_e4m3fn, 8), ("float8e4m3fnuz", TP.FLOAT8E4M3FNUZ, mld.float8_e4m3fnuz, 8),
    ("float8e5m2", TP.FLOAT8E5M2, mld.float8_e5m2, 8), ("float8e5m2fnuz", TP.FLOAT8E5M2FNUZ, mld.float8_e5m2fnuz, 8),
    ("float8e8m0", 24, mld.float8_e8m0fnu, 8), ("float4e2m1", 23, mld.float4_e2m1fn, 4),
    ("float6e2m3", 27, mld.float6_e2m3fn, 6), ("float6e3m2", 28, mld.float6_e3m2fn, 6),
    ("int8", TP.INT8, np.int8, 8), ("uint8", TP.UINT8, np.uint8, 8), ("int16", TP.INT16, np.int16, 16),
    ("uint16", TP.UINT16, np.uint16, 16), ("int32", TP.INT32, np.int32, 32), ("uint32", TP.UINT32, np.uint32, 32),
    ("int64", TP.INT64, np.int64, 64), ("uint64", TP.UINT64, np.uint64, 64),
    ("int4", 22, mld.int4, 4), ("uint4", 21, mld.uint4, 4), ("int2", 26, mld.int2, 2), ("uint2", 25, mld.uint2, 2),
    ("bool", TP.BOOL, np.bool_, 8),
]


def sample(dtype, shape):
    """Values of `dtype` with about a quarter zeros."""
    n = int(np.prod(shape))
    if dtype is mld.float8_e8m0fnu:
        v = 2.0 ** rng.integers(-10, 10, n)
    elif np.issubdtype(np.dtype(dtype), np.floating) or dtype in (mld.bfloat16,) or "float" in np.dtype(dtype).name:
        v = rng.normal(0, 2, n)
        v[rng.random(n) < 0.25] = 0
    elif dtype is np.bool_:
        v = rng.random(n) < 0.6
    else:
        info = mld.iinfo(dtype) if dtype in (mld.int4, mld.uint4, mld.int2, mld.uint2) else np.iinfo(dtype)
        lo, hi = int(info.min), int(info.max)
        if hi > 1000:
            lo, hi = max(lo, -100000), min(hi, 100000)
        v = rng.integers(lo, hi + 1, n)
        v[rng.random(n) < 0.25] = 0
    return np.asarray(v).astype(dtype).reshape(shape)


def pack(values, bits):
    """Little-endian raw bytes; sub-byte types as one LSB-first bit stream."""
    if bits >= 8:
        return values.astype(values.dtype.newbyteorder("<")).tobytes()
    codes = values.ravel().view(np.uint8).astype(np.uint64) & ((1 << bits) - 1)
    stream = 0
    for i, c in enumerate(codes.tolist()):
        stream |= int(c) << (i * bits)
    return stream.to_bytes((len(codes) * bits + 7) // 8, "little")


def raw_tensor(name, code, shape, raw):
    t = TP()
    t.name, t.data_type = name, code
    t.dims.extend(shape)
    t.raw_data = raw
    return t


def save(model, name, entries, check=True, **extra):
    if check:
        onnx.checker.check_model(model)
    path = os.path.join(OUT, name)
    onnx.save(model, path)
    inventory = [n for n, _, _ in onnx_inventory(onnx.load(path, load_external_data=False))]
    # The file's own order (onnx.helper sorts attributes by name) is the order Pith reports.
    assert sorted(inventory) == sorted(e["name"] for e in entries), (inventory, [e["name"] for e in entries])
    by_name = {e["name"]: e for e in entries}
    write_manifest("onnx/" + name, [by_name[n] for n in inventory], format="onnx", **extra)


def identity_model(inits, name, extra_nodes=(), sparse=(), opset=21, ir=10):
    # Outputs every initializer through Identity so the model is valid and runs.
    nodes = list(extra_nodes)
    outputs = []
    for t in inits:
        nodes.append(helper.make_node("Identity", [t.name], [t.name + "_out"]))
        outputs.append(helper.make_tensor_value_info(t.name + "_out", t.data_type, None))
    for s in sparse:
        nodes.append(helper.make_node("Identity", [s.values.name], [s.values.name + "_out"]))
        outputs.append(helper.make_tensor_value_info(s.values.name + "_out", s.values.data_type, None))
    graph = helper.make_graph(nodes, name, [], outputs, list(inits), sparse_initializer=list(sparse))
    model = helper.make_model(graph, producer_name="pith-fixtures", opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = ir
    return model


def dtypes_raw():
    inits, entries = [], []
    for name, code, dtype, bits in TYPES:
        shape = [3, 5] if bits >= 8 else [3, 7]
        values = sample(dtype, shape)
        inits.append(raw_tensor("raw_" + name, code, shape, pack(values, bits)))
        entries.append(stats_entry("raw_" + name, name, shape, values))
    c64 = (rng.normal(size=(2, 3)) + 1j * rng.normal(size=(2, 3))).astype(np.complex64)
    c64[0, 0] = 0
    inits.append(raw_tensor("raw_complex64", TP.COMPLEX64, [2, 3], c64.tobytes()))
    entries.append(stats_entry("raw_complex64", "complex64", [2, 3], nonzero=np.count_nonzero(c64)))
    c128 = (rng.normal(size=(4,)) + 1j * rng.normal(size=(4,))).astype(np.complex128)
    inits.append(raw_tensor("raw_complex128", TP.COMPLEX128, [4], c128.tobytes()))
    entries.append(stats_entry("raw_complex128", "complex128", [4], nonzero=np.count_nonzero(c128)))
    strings = helper.make_tensor("strings", TP.STRING, [3], [b"alpha", b"", b"gamma"])
    inits.append(strings)
    entries.append(stats_entry("strings", "string", [3], nonzero=2))
    scalar = numpy_helper.from_array(np.array(3.5, np.float32), "scalar")
    inits.append(scalar)
    entries.append(stats_entry("scalar", "float32", [], np.array(3.5)))
    empty = numpy_helper.from_array(np.zeros((0, 4), np.float32), "empty")
    inits.append(empty)
    entries.append(stats_entry("empty", "float32", [0, 4], np.zeros(0)))
    # Old opsets cannot hold every type in Identity: this model is for import, not execution.
    save(identity_model(inits, "dtypes_raw"), "dtypes-raw.onnx", entries, check=False)


def typed_fields():
    """The same kind of data in the typed repeated fields instead of raw_data."""
    inits, entries = [], []

    def add(t, name, dtype, shape, values=None, nonzero=None):
        inits.append(t)
        entries.append(stats_entry(name, dtype, shape, values, nonzero))

    f = sample(np.float32, [4, 3])
    add(helper.make_tensor("f_float_data", TP.FLOAT, [4, 3], f.ravel().tolist()), "f_float_data", "float32", [4, 3], f)
    d = sample(np.float64, [5])
    add(helper.make_tensor("f_double_data", TP.DOUBLE, [5], d.tolist()), "f_double_data", "float64", [5], d)
    i64 = sample(np.int64, [6])
    add(helper.make_tensor("f_int64_data", TP.INT64, [6], i64.tolist()), "f_int64_data", "int64", [6], i64)
    for name, code, dtype in [("int32", TP.INT32, np.int32), ("int16", TP.INT16, np.int16), ("int8", TP.INT8, np.int8),
                              ("uint16", TP.UINT16, np.uint16), ("uint8", TP.UINT8, np.uint8)]:
        v = sample(dtype, [7])
        t = TP(name="f_" + name, data_type=code, dims=[7])
        t.int32_data.extend(int(x) for x in v)
        add(t, "f_" + name, name, [7], v)
    b = sample(np.bool_, [9])
    t = TP(name="f_bool", data_type=TP.BOOL, dims=[9])
    t.int32_data.extend(int(x) for x in b)
    add(t, "f_bool", "bool", [9], b)
    for name, code, dtype in [("float16", TP.FLOAT16, np.float16), ("bfloat16", TP.BFLOAT16, mld.bfloat16),
                              ("float8e4m3fn", TP.FLOAT8E4M3FN, mld.float8_e4m3fn), ("float8e5m2", TP.FLOAT8E5M2, mld.float8_e5m2)]:
        v = sample(dtype, [8])
        t = TP(name="f_" + name, data_type=code, dims=[8])
        t.int32_data.extend(int(x) for x in v.view(np.uint16 if v.dtype.itemsize == 2 else np.uint8))
        add(t, "f_" + name, name, [8], v)
    for name, code, dtype, bits in [("int4", 22, mld.int4, 4), ("uint2", 25, mld.uint2, 2)]:
        v = sample(dtype, [9])
        t = TP(name="f_" + name, data_type=code, dims=[9])
        t.int32_data.extend(pack(v, bits))  # one packed byte per int32
        add(t, "f_" + name, name, [9], v)
    v = sample(mld.float6_e2m3fn, [5])
    t = TP(name="f_float6e2m3", data_type=27, dims=[5])
    t.int32_data.extend(int(x) & 0x3F for x in v.view(np.uint8))
    add(t, "f_float6e2m3", "float6e2m3", [5], v)
    for name, code, dtype in [("uint32", TP.UINT32, np.uint32), ("uint64", TP.UINT64, np.uint64)]:
        v = sample(dtype, [6])
        t = TP(name="f_" + name, data_type=code, dims=[6])
        t.uint64_data.extend(int(x) for x in v)
        add(t, "f_" + name, name, [6], v)
    c = np.array([1 + 2j, 0, 3 - 1j], np.complex64)
    t = TP(name="f_complex64", data_type=TP.COMPLEX64, dims=[3])
    t.float_data.extend([1, 2, 0, 0, 3, -1])
    add(t, "f_complex64", "complex64", [3], nonzero=2)
    save(identity_model(inits, "typed_fields"), "typed-fields.onnx", entries, check=False)


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def unpacked_fields():
    """Repeated numeric fields written unpacked (one key per element), which
    proto2 writers may do and readers must accept. Python's protobuf always
    packs, so the tensors are encoded by hand and merged into the graph by
    appending a second `graph` field (protobuf merges repeated fields)."""
    import struct
    base = identity_model([], "unpacked")
    f = np.array([1.5, 0, -2.25, 4], np.float32)
    i = np.array([7, -3, 0, 100000, 5], np.int64)
    h = np.array([0.5, -1, 0, 2], np.float16)

    def tensor(name, code, dims, field, wire, items):
        body = b"".join(b"\x08" + varint(d) for d in dims)            # dims (1), unpacked
        body += b"\x10" + varint(code)                                  # data_type (2)
        body += b"\x42" + varint(len(name)) + name.encode()             # name (8)
        for item in items:
            body += varint(field << 3 | wire) + item
        return body

    tensors = [
        tensor("u_float", TP.FLOAT, [4], 4, 5, [struct.pack("<f", x) for x in f]),
        tensor("u_int64", TP.INT64, [5], 7, 0, [varint(int(x) & (2**64 - 1)) for x in i]),
        tensor("u_float16", TP.FLOAT16, [2, 2], 5, 0, [varint(int(x)) for x in h.view(np.uint16)]),
    ]
    graph = b"".join(b"\x2a" + varint(len(t)) + t for t in tensors)     # initializer (5)
    data = base.SerializeToString() + b"\x3a" + varint(len(graph)) + graph  # graph (7)
    path = os.path.join(OUT, "unpacked-fields.onnx")
    with open(path, "wb") as out:
        out.write(data)
    entries = [stats_entry("u_float", "float32", [4], f), stats_entry("u_int64", "int64", [5], i),
               stats_entry("u_float16", "float16", [2, 2], h)]
    model = onnx.load(path)
    assert [n for n, _, _ in onnx_inventory(model)] == [e["name"] for e in entries]
    assert np.array_equal(numpy_helper.to_array(model.graph.initializer[1]), i)
    write_manifest("onnx/unpacked-fields.onnx", entries, format="onnx")


def sparse_and_constants():
    entries = []
    dense = np.zeros((4, 5), np.float32)
    dense[0, 1], dense[2, 3], dense[3, 4] = 1.5, -2, 0.25
    flat = np.flatnonzero(dense)
    s1 = helper.make_sparse_tensor(
        numpy_helper.from_array(dense.ravel()[flat], "sparse_linear"), numpy_helper.from_array(flat.astype(np.int64), "sparse_linear_idx"), [4, 5])
    entries.append(stats_entry("sparse_linear", "float32", [4, 5], dense))
    coords = np.argwhere(dense).astype(np.int64)
    s2 = helper.make_sparse_tensor(
        numpy_helper.from_array(dense[dense != 0], "sparse_coords"), numpy_helper.from_array(coords, "sparse_coords_idx"), [4, 5])
    entries.append(stats_entry("sparse_coords", "float32", [4, 5], dense))

    w = rng.normal(size=(3, 4)).astype(np.float32)
    nodes = [
        helper.make_node("Constant", [], ["c_tensor"], value=numpy_helper.from_array(w)),
        helper.make_node("Constant", [], ["c_float"], value_float=2.5),
        helper.make_node("Constant", [], ["c_floats"], value_floats=[1.0, 0.0, -3.0]),
        helper.make_node("Constant", [], ["c_int"], value_int=42),
        helper.make_node("Constant", [], ["c_ints"], value_ints=[3, 0, 7, 9]),
        helper.make_node("Constant", [], ["c_string"], value_string="hello"),
        helper.make_node("Constant", [], ["c_strings"], value_strings=["a", "bc"]),
        helper.make_node("Constant", [], ["c_sparse"], sparse_value=helper.make_sparse_tensor(
            numpy_helper.from_array(np.array([5, 6], np.int64), "csv"), numpy_helper.from_array(np.array([1, 3], np.int64), "csi"), [2, 2])),
        helper.make_node("MatMul", ["c_tensor", "w_init"], ["mm"], name="matmul"),
    ]
    entries += [stats_entry("w_init", "float32", [4, 2], None)]
    w_init = rng.normal(size=(4, 2)).astype(np.float32)
    entries[-1] = stats_entry("w_init", "float32", [4, 2], w_init)
    entries += [
        stats_entry("c_tensor", "float32", [3, 4], w), stats_entry("c_float", "float32", [], np.array(2.5)),
        stats_entry("c_floats", "float32", [3], np.array([1, 0, -3])), stats_entry("c_int", "int64", [], np.array(42)),
        stats_entry("c_ints", "int64", [4], np.array([3, 0, 7, 9])), stats_entry("c_string", "string", [], nonzero=1),
        stats_entry("c_strings", "string", [2], nonzero=2),
        stats_entry("c_sparse", "int64", [2, 2], np.array([0, 5, 0, 6])),
    ]
    outputs = [helper.make_tensor_value_info(n, t, shape) for n, t, shape in
               [("mm", TP.FLOAT, [3, 2]), ("c_float", TP.FLOAT, []), ("c_floats", TP.FLOAT, [3]), ("c_int", TP.INT64, []),
                ("c_ints", TP.INT64, [4]), ("c_string", TP.STRING, []), ("c_strings", TP.STRING, [2]),
                ("c_sparse", TP.INT64, [2, 2])]]
    graph = helper.make_graph(nodes, "constants", [], outputs, [numpy_helper.from_array(w_init, "w_init")], sparse_initializer=[s1, s2])
    model = helper.make_model(graph, producer_name="pith-fixtures", opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    # Manifest order is Pith's: initializers, sparse initializers, then node tensors.
    order = ["w_init", "sparse_linear", "sparse_coords", "c_tensor", "c_float", "c_floats", "c_int", "c_ints",
             "c_string", "c_strings", "c_sparse"]
    by_name = {e["name"]: e for e in entries}
    save(model, "constants-sparse.onnx", [by_name[n] for n in order])


def subgraphs():
    """Weights inside If branches, a Loop body holding an If, a Scan body, and a function."""
    entries = []

    def vec(name, n):
        v = rng.normal(size=n).astype(np.float32)
        entries.append(stats_entry(name, "float32", [n], v))
        return numpy_helper.from_array(v, name.split("/")[-1])

    outer = vec("outer_w", 3)
    # If: then adds an initializer, else a Constant.
    then_w = vec("gate/then_branch/then_w", 3)
    then_g = helper.make_graph([helper.make_node("Add", ["x", "then_w"], ["then_out"])], "then", [],
                               [helper.make_tensor_value_info("then_out", TP.FLOAT, [3])], [then_w])
    else_v = rng.normal(size=3).astype(np.float32)
    else_g = helper.make_graph([helper.make_node("Constant", [], ["else_c"], value=numpy_helper.from_array(else_v)),
                                helper.make_node("Mul", ["x", "else_c"], ["else_out"])], "else", [],
                               [helper.make_tensor_value_info("else_out", TP.FLOAT, [3])])
    entries.append(stats_entry("gate/else_branch/else_c", "float32", [3], else_v))
    # Loop body with a nested If (unnamed nodes get op#index labels).
    inner_w = rng.normal(size=3).astype(np.float32)
    inner_then = helper.make_graph([helper.make_node("Constant", [], ["k"], value=numpy_helper.from_array(inner_w))], "inner_then", [],
                                   [helper.make_tensor_value_info("k", TP.FLOAT, [3])])
    inner_else = helper.make_graph([helper.make_node("Identity", ["acc_in"], ["k2"])], "inner_else", [],
                                   [helper.make_tensor_value_info("k2", TP.FLOAT, [3])])
    body_w = vec("loop/body/body_w", 3)
    entries.append(stats_entry("loop/body/If#1/then_branch/k", "float32", [3], inner_w))
    body = helper.make_graph(
        [helper.make_node("Add", ["acc_in", "body_w"], ["acc_mid"]),
         helper.make_node("If", ["cond_in"], ["acc_if"], then_branch=inner_then, else_branch=inner_else),
         helper.make_node("Add", ["acc_mid", "acc_if"], ["acc_out"]),
         helper.make_node("Identity", ["cond_in"], ["cond_out"])],
        "body", [helper.make_tensor_value_info("iter", TP.INT64, []), helper.make_tensor_value_info("cond_in", TP.BOOL, []),
                 helper.make_tensor_value_info("acc_in", TP.FLOAT, [3])],
        [helper.make_tensor_value_info("cond_out", TP.BOOL, []), helper.make_tensor_value_info("acc_out", TP.FLOAT, [3])], [body_w])
    scan_w = vec("scan/body/scan_w", 2)
    scan_body = helper.make_graph(
        [helper.make_node("Add", ["s_in", "scan_w"], ["s_out"]), helper.make_node("Identity", ["s_out"], ["y"])], "scan_body",
        [helper.make_tensor_value_info("s_in", TP.FLOAT, [2]), helper.make_tensor_value_info("x_in", TP.FLOAT, [2])],
        [helper.make_tensor_value_info("s_out", TP.FLOAT, [2]), helper.make_tensor_value_info("y", TP.FLOAT, [2])], [scan_w])
    fn_v = rng.normal(size=3).astype(np.float32)
    function = helper.make_function(
        "pith.test", "AddBias", ["a"], ["b"],
        [helper.make_node("Constant", [], ["fbias"], value=numpy_helper.from_array(fn_v)), helper.make_node("Add", ["a", "fbias"], ["b"])],
        [helper.make_opsetid("", 17)])
    nodes = [
        helper.make_node("Add", ["x0", "outer_w"], ["x"], name="pre"),
        helper.make_node("If", ["cond"], ["gated"], name="gate", then_branch=then_g, else_branch=else_g),
        helper.make_node("Loop", ["trip", "cond", "gated"], ["looped"], name="loop", body=body),
        helper.make_node("Scan", ["s0", "xs"], ["s_final", "ys"], name="scan", body=scan_body, num_scan_inputs=1),
        helper.make_node("AddBias", ["looped"], ["out"], name="fn", domain="pith.test"),
    ]
    graph = helper.make_graph(
        nodes, "subgraphs",
        [helper.make_tensor_value_info("x0", TP.FLOAT, [3]), helper.make_tensor_value_info("cond", TP.BOOL, []),
         helper.make_tensor_value_info("trip", TP.INT64, []), helper.make_tensor_value_info("s0", TP.FLOAT, [2]),
         helper.make_tensor_value_info("xs", TP.FLOAT, [4, 2])],
        [helper.make_tensor_value_info("out", TP.FLOAT, [3]), helper.make_tensor_value_info("s_final", TP.FLOAT, [2]),
         helper.make_tensor_value_info("ys", TP.FLOAT, [4, 2])], [outer])
    model = helper.make_model(graph, producer_name="pith-fixtures", functions=[function],
                              opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("pith.test", 1)])
    model.ir_version = 8
    entries.append(stats_entry("function:pith.test.AddBias/fbias", "float32", [3], fn_v))
    order = ["outer_w", "gate/then_branch/then_w", "gate/else_branch/else_c", "loop/body/body_w",
             "loop/body/If#1/then_branch/k", "scan/body/scan_w", "function:pith.test.AddBias/fbias"]
    by_name = {e["name"]: e for e in entries}
    save(model, "subgraphs.onnx", [by_name[n] for n in order])


def external_data():
    """Tensors in a separate file: aligned offsets, one without `length`, one in a second file."""
    entries, inits = [], []
    blobs = {"external-data.bin": bytearray(), "external-data-2.bin": bytearray()}

    def add(name, values, location, with_length=True):
        data = values.astype(values.dtype.newbyteorder("<")).tobytes()
        blob = blobs[location]
        blob.extend(b"\0" * (-len(blob) % 4096))
        t = TP(name=name, data_type=helper.np_dtype_to_tensor_dtype(values.dtype), dims=list(values.shape))
        t.data_location = TP.EXTERNAL
        entry = [("location", location), ("offset", str(len(blob)))]
        if with_length:
            entry.append(("length", str(len(data))))
        for k, v in entry:
            e = t.external_data.add()
            e.key, e.value = k, v
        blob.extend(data)
        inits.append(t)
        entries.append(stats_entry(name, str(values.dtype), values.shape, values))

    add("ext_a", rng.normal(size=(64, 32)).astype(np.float32), "external-data.bin")
    add("ext_b", rng.normal(size=(100,)).astype(np.float16), "external-data.bin", with_length=False)
    add("ext_c", rng.integers(-5, 5, size=(7, 3)).astype(np.int64), "external-data-2.bin")
    for name, blob in blobs.items():
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(bytes(blob))
    save(identity_model(inits, "external"), "external-data.onnx", entries, check=False)


def custom_constants():
    """A `Constant` node of a custom domain beside ONNX's own `Constant`: the custom one's
    `value_floats` / `value_ints` are ordinary attributes (they stay in the skeleton), only its
    TENSOR attribute `value` is a tensor, named after node and attribute. The same pair sits in
    an `If` branch, so the rule holds in subgraphs too."""
    entries = []
    local = np.random.default_rng(20251124)  # its own generator: remaking this file alone gives the same bytes
    w = local.normal(size=(2, 3)).astype(np.float32)
    onnx_floats = np.array([0.5, -1.25, 3.0], np.float32)
    custom_value = local.normal(size=(4,)).astype(np.float32)
    branch_floats = np.array([2.0, 0.0, -0.5], np.float32)
    then_g = helper.make_graph(
        [helper.make_node("Constant", [], ["b_onnx"], value_floats=branch_floats.tolist()),
         helper.make_node("Constant", [], ["b_custom"], name="branch_custom", domain="pith.custom",
                          value_floats=[7.0, -7.5], value_ints=[1, 2])],
        "then", [], [helper.make_tensor_value_info("b_onnx", TP.FLOAT, [3])])
    else_g = helper.make_graph(
        [helper.make_node("Constant", [], ["e_onnx"], value_floats=[1.0, 1.0, 1.0])],
        "else", [], [helper.make_tensor_value_info("e_onnx", TP.FLOAT, [3])])
    nodes = [
        helper.make_node("Constant", [], ["c_onnx"], value_floats=onnx_floats.tolist()),
        helper.make_node("Constant", [], ["c_custom"], name="custom", domain="pith.custom",
                         value_floats=[1.5, -2.0, 0.25, 8.0], value_ints=[4, -5], value_float=0.75,
                         value=numpy_helper.from_array(custom_value)),
        helper.make_node("If", ["cond"], ["gated"], name="gate", then_branch=then_g, else_branch=else_g),
        helper.make_node("Identity", ["w"], ["w_out"]),
    ]
    graph = helper.make_graph(
        nodes, "custom-constants", [helper.make_tensor_value_info("cond", TP.BOOL, [])],
        [helper.make_tensor_value_info("c_onnx", TP.FLOAT, [3]), helper.make_tensor_value_info("c_custom", TP.FLOAT, [4]),
         helper.make_tensor_value_info("gated", TP.FLOAT, [3]), helper.make_tensor_value_info("w_out", TP.FLOAT, [2, 3])],
        [numpy_helper.from_array(w, "w")])
    model = helper.make_model(graph, producer_name="pith-fixtures",
                              opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("pith.custom", 1)])
    model.ir_version = 8
    entries += [
        stats_entry("w", "float32", [2, 3], w), stats_entry("c_onnx", "float32", [3], onnx_floats),
        stats_entry("custom/value", "float32", [4], custom_value),
        stats_entry("gate/then_branch/b_onnx", "float32", [3], branch_floats),
        stats_entry("gate/else_branch/e_onnx", "float32", [3], np.ones(3, np.float32)),
    ]
    save(model, "custom-constants.onnx", entries)


def stft_frontend():
    """A spectrogram front end as audio models export it (silero-vad, basic-pitch): a Conv whose
    weight is a windowed DFT basis — 66,048 floats with few distinct values, in rows that repeat
    mirrored, which LZ coding shrinks 4× and per-byte entropy coding 1.2× — then Slice / Mul / Add /
    Sqrt for the magnitude, with the int64 shape constants such graphs carry. The container stores
    the basis as one zstd frame and pools the constants (format 1.4)."""
    n_fft, hop = 256, 128
    n = np.arange(n_fft)
    window = (0.5 - 0.5 * np.cos(2 * np.pi * n / n_fft))
    k = np.arange(n_fft // 2 + 1)[:, None]
    real = np.cos(2 * np.pi * k * n / n_fft) * window
    imag = -np.sin(2 * np.pi * k * n / n_fft) * window
    basis = np.concatenate([real, imag]).astype(np.float32)[:, None, :]  # [258, 1, 256]
    bins = n_fft // 2 + 1
    constants = {
        "pads": np.array([0, 0, n_fft // 2, 0, 0, n_fft // 2], np.int64),
        "real_starts": np.array([0], np.int64), "real_ends": np.array([bins], np.int64),
        "imag_starts": np.array([bins], np.int64), "imag_ends": np.array([2 * bins], np.int64),
        "axes": np.array([1], np.int64),
    }
    inits = [numpy_helper.from_array(basis, "stft.forward_basis")] + [numpy_helper.from_array(v, name) for name, v in constants.items()]
    nodes = [
        helper.make_node("Pad", ["audio", "pads"], ["padded"], mode="reflect"),
        helper.make_node("Conv", ["padded", "stft.forward_basis"], ["spectrum"], strides=[hop]),
        helper.make_node("Slice", ["spectrum", "real_starts", "real_ends", "axes"], ["re"]),
        helper.make_node("Slice", ["spectrum", "imag_starts", "imag_ends", "axes"], ["im"]),
        helper.make_node("Mul", ["re", "re"], ["re2"]),
        helper.make_node("Mul", ["im", "im"], ["im2"]),
        helper.make_node("Add", ["re2", "im2"], ["power"]),
        helper.make_node("Sqrt", ["power"], ["magnitude"]),
    ]
    graph = helper.make_graph(
        nodes, "stft-frontend", [helper.make_tensor_value_info("audio", TP.FLOAT, [1, 1, 2048])],
        [helper.make_tensor_value_info("magnitude", TP.FLOAT, [1, bins, None])], inits)
    model = helper.make_model(graph, producer_name="pith-fixtures", opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    entries = [stats_entry("stft.forward_basis", "float32", list(basis.shape), basis)]
    entries += [stats_entry(name, "int64", list(v.shape), v) for name, v in constants.items()]
    save(model, "stft-frontend.onnx", entries)


def main():
    os.makedirs(OUT, exist_ok=True)
    dtypes_raw()
    typed_fields()
    unpacked_fields()
    sparse_and_constants()
    subgraphs()
    external_data()
    custom_constants()
    stft_frontend()
    print("wrote", sorted(os.listdir(OUT)))


if __name__ == "__main__":
    # `python3 make_onnx_fixtures.py custom_constants` remakes one fixture only.
    if len(sys.argv) > 1:
        os.makedirs(OUT, exist_ok=True)
        for name in sys.argv[1:]:
            globals()[name]()
    else:
        main()
