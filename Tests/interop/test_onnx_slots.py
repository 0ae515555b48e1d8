"""compress → restore puts every tensor slot of an ONNX model back and leaves every other attribute as
it was: onnx loads the restored file with each node attribute and each tensor equal to the source's.

`Fixtures/onnx/custom-constants.onnx` holds a `Constant` of a custom domain (its `value_floats` /
`value_ints` / `value_float` are ordinary attributes, not tensor slots) beside ONNX's own `Constant`,
in the main graph and in an `If` branch. The container format's section "ONNX skeleton: tensor slots
and their order" states the rule."""
import os

import numpy as np
import onnx
import pytest
from onnx import AttributeProto, helper, numpy_helper

from conftest import ROOT, run_pith

SOURCES = [os.path.join(ROOT, "Fixtures", "onnx", name)
           for name in ("custom-constants.onnx", "constants-sparse.onnx", "subgraphs.onnx")]


def dense(sparse):
    """A SparseTensorProto as a dense array (linear or coordinate indices)."""
    values = numpy_helper.to_array(sparse.values)
    indices = numpy_helper.to_array(sparse.indices)
    out = np.zeros(int(np.prod(sparse.dims)), values.dtype)
    if indices.ndim == 2:
        indices = np.ravel_multi_index(indices.T, tuple(sparse.dims))
    out[indices] = values
    return out.reshape(tuple(sparse.dims))


def assert_tensor_equal(a, b, where):
    x, y = numpy_helper.to_array(a), numpy_helper.to_array(b)
    assert a.name == b.name, where
    assert x.dtype == y.dtype and x.shape == y.shape, where
    if x.dtype.kind in "OSU":
        assert x.tolist() == y.tolist(), where
    else:
        assert x.tobytes() == y.tobytes(), f"{where}: values differ"


def assert_sparse_equal(a, b, where):
    assert list(a.dims) == list(b.dims), where
    assert a.values.name == b.values.name, where
    x, y = dense(a), dense(b)
    assert x.dtype == y.dtype and x.tobytes() == y.tobytes(), f"{where}: values differ"


def assert_graph_equal(a, b, where):
    assert a.name == b.name, where
    assert len(a.initializer) == len(b.initializer), where
    for x, y in zip(a.initializer, b.initializer):
        assert_tensor_equal(x, y, f"{where}initializer `{x.name}`")
    assert len(a.sparse_initializer) == len(b.sparse_initializer), where
    for x, y in zip(a.sparse_initializer, b.sparse_initializer):
        assert_sparse_equal(x, y, f"{where}sparse initializer `{x.values.name}`")
    assert [v.SerializeToString() for v in a.input] == [v.SerializeToString() for v in b.input], where
    assert [v.SerializeToString() for v in a.output] == [v.SerializeToString() for v in b.output], where
    assert_nodes_equal(a.node, b.node, where)


def assert_nodes_equal(a, b, where):
    assert [(n.op_type, n.domain, n.name) for n in a] == [(n.op_type, n.domain, n.name) for n in b], where
    for index, (x, y) in enumerate(zip(a, b)):
        label = f"{where}{x.name or f'{x.op_type}#{index}'}"
        assert list(x.input) == list(y.input) and list(x.output) == list(y.output), label
        assert [(t.name, t.type) for t in x.attribute] == [(t.name, t.type) for t in y.attribute], label
        for p, q in zip(x.attribute, y.attribute):
            place = f"{label}/{p.name}"
            if p.type == AttributeProto.TENSOR:
                assert_tensor_equal(p.t, q.t, place)
            elif p.type == AttributeProto.TENSORS:
                assert len(p.tensors) == len(q.tensors), place
                for s, t in zip(p.tensors, q.tensors):
                    assert_tensor_equal(s, t, place)
            elif p.type == AttributeProto.SPARSE_TENSOR:
                assert_sparse_equal(p.sparse_tensor, q.sparse_tensor, place)
            elif p.type == AttributeProto.GRAPH:
                assert_graph_equal(p.g, q.g, place + "/")
            elif p.type == AttributeProto.GRAPHS:
                assert len(p.graphs) == len(q.graphs), place
                for i, (s, t) in enumerate(zip(p.graphs, q.graphs)):
                    assert_graph_equal(s, t, f"{place}[{i}]/")
            else:
                assert helper.get_attribute_value(p) == helper.get_attribute_value(q), place


def round_trip(source, tmp_path):
    container, restored = str(tmp_path / "x.pith"), str(tmp_path / "y.onnx")
    result = run_pith("compress", source, "-o", container, "--force")
    assert result.returncode == 0, result.stderr
    result = run_pith("restore", container, "-o", restored, "--force")
    assert result.returncode == 0, result.stderr
    return restored


@pytest.mark.parametrize("source", SOURCES, ids=os.path.basename)
def test_restore_keeps_every_attribute_and_tensor(pith, tmp_path, source):
    x = onnx.load(source)
    y = onnx.load(round_trip(source, tmp_path))
    assert_graph_equal(x.graph, y.graph, "")
    assert len(x.functions) == len(y.functions)
    for f, g in zip(x.functions, y.functions):
        assert (f.name, f.domain) == (g.name, g.domain)
        assert_nodes_equal(f.node, g.node, f"function:{f.name}/")


def test_custom_domain_constant_keeps_its_numbers(pith, tmp_path):
    """The bug this file was written for: a custom-domain `Constant` lost its `value_floats`."""
    source = SOURCES[0]
    y = onnx.load(round_trip(source, tmp_path))
    custom = next(n for n in y.graph.node if n.domain == "pith.custom")
    values = {a.name: helper.get_attribute_value(a) for a in custom.attribute}
    assert values["value_floats"] == [1.5, -2.0, 0.25, 8.0]
    assert values["value_ints"] == [4, -5]
    assert values["value_float"] == 0.75


def test_restored_file_is_byte_identical(pith, tmp_path):
    """Every tensor of the fixture is in `raw_data` and every list packed as onnx writes it, so the
    restored file is the source byte for byte."""
    source = SOURCES[0]
    with open(source, "rb") as f, open(round_trip(source, tmp_path), "rb") as g:
        assert f.read() == g.read()
