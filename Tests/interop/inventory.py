"""Tensor inventories computed with onnx and h5py, independently of Pith."""
import h5py
import numpy as np
from onnx import numpy_helper

from common import onnx_inventory
from conftest import DTYPES


def onnx_expected(model):
    """[(name, dtype, shape, count, nonzero or None)] for every tensor Pith must report."""
    out = []
    for name, proto, kind in onnx_inventory(model):
        if kind in ("tensor", "sparse"):
            tensor = proto.values if kind == "sparse" else proto
            dims = list(proto.dims)
            dtype = DTYPES[tensor.data_type]
            nonzero = None
            if kind == "tensor" and dtype not in ("string",) and not tensor.external_data:
                try:
                    nonzero = int(np.count_nonzero(numpy_helper.to_array(tensor)))
                except Exception:  # exotic types numpy_helper cannot convert
                    nonzero = None
        else:
            value = proto
            dtype = {"value_float": "float32", "value_floats": "float32", "value_int": "int64",
                     "value_ints": "int64", "value_string": "string", "value_strings": "string"}[kind]
            dims = [len(value)] if kind.endswith("s") else []
            nonzero = None
        out.append((name, dtype, dims, int(np.prod(dims, dtype=np.int64)), nonzero))
    return out


def keras_expected(path):
    """Follows layer_names / weight_names the way Keras' legacy loader does."""
    out = []
    with h5py.File(path, "r") as f:
        group = f["model_weights"] if "model_weights" in f else f
        prefix = "model_weights/" if "model_weights" in f else ""

        def strings(obj, key):
            values = obj.attrs.get(key, [])
            return [v.decode() if isinstance(v, bytes) else str(v) for v in np.atleast_1d(values)] if np.size(values) else []

        for layer in strings(group, "layer_names"):
            for weight in strings(group[layer], "weight_names"):
                d = group[layer][weight]
                out.append((prefix + layer + "/" + weight, str(d.dtype), list(d.shape), int(d.size),
                            int(np.count_nonzero(d[()]))))
    return out


def pith_rows(report):
    return [(r["name"], r["dtype"], r["shape"], r["count"], r["nonzero"]) for r in report["tensors"]]


def assert_same_inventory(report, expected, label):
    rows = pith_rows(report)
    assert [r[0] for r in rows] == [e[0] for e in expected], f"{label}: tensor names differ"
    for row, exp in zip(rows, expected):
        assert row[1:4] == exp[1:4], f"{label}: {row[0]}: pith {row[1:4]} vs reference {exp[1:4]}"
        if exp[4] is not None:
            assert row[4] == exp[4], f"{label}: {row[0]}: nonzero {row[4]} vs {exp[4]}"
