"""Shared helpers for the fixture generators: Pith's tensor naming scheme,
computed independently of Pith from the ONNX protobuf, and manifest writing."""
import json
import os

import numpy as np

FIXTURES = os.path.normpath(os.path.join(os.path.dirname(__file__), ".."))


def onnx_inventory(model):
    """Every tensor Pith must report for an ONNX model, named as Pith names them:
    initializers and sparse initializers by name; a Constant's tensor by its output;
    any other tensor attribute as node/attribute[index]; tensors inside subgraphs
    prefixed with `node/attribute[index]/` per level; function bodies with
    `function:domain.name/`. Returns [(name, TensorProto or SparseTensorProto, kind)]."""
    from onnx import AttributeProto, helper

    out = []

    def walk_nodes(nodes, prefix):
        for index, node in enumerate(nodes):
            label = node.name or f"{node.op_type}#{index}"
            is_constant = node.op_type == "Constant" and node.domain in ("", "ai.onnx")
            for attr in node.attribute:
                kind = attr.type
                if is_constant:
                    base = prefix + node.output[0]
                    if kind == AttributeProto.TENSOR:
                        out.append((base, attr.t, "tensor"))
                    elif kind == AttributeProto.SPARSE_TENSOR:
                        out.append((base, attr.sparse_tensor, "sparse"))
                    elif attr.name in ("value_float", "value_floats", "value_int", "value_ints",
                                       "value_string", "value_strings"):
                        out.append((base, helper.get_attribute_value(attr), attr.name))
                    continue
                def name(i):
                    return prefix + label + "/" + attr.name + (f"[{i}]" if i > 0 else "")
                if kind == AttributeProto.TENSOR:
                    out.append((name(0), attr.t, "tensor"))
                elif kind == AttributeProto.SPARSE_TENSOR:
                    out.append((name(0), attr.sparse_tensor, "sparse"))
                elif kind == AttributeProto.TENSORS:
                    for i, t in enumerate(attr.tensors):
                        out.append((name(i), t, "tensor"))
                elif kind == AttributeProto.SPARSE_TENSORS:
                    for i, t in enumerate(attr.sparse_tensors):
                        out.append((name(i), t, "sparse"))
                elif kind == AttributeProto.GRAPH:
                    walk_graph(attr.g, prefix + label + "/" + attr.name + "/")
                elif kind == AttributeProto.GRAPHS:
                    for i, g in enumerate(attr.graphs):
                        walk_graph(g, prefix + label + "/" + attr.name + (f"[{i}]" if i else "") + "/")

    def walk_graph(graph, prefix):
        for t in graph.initializer:
            out.append((prefix + t.name, t, "tensor"))
        for s in graph.sparse_initializer:
            out.append((prefix + s.values.name, s, "sparse"))
        walk_nodes(graph.node, prefix)

    walk_graph(model.graph, "")
    for f in model.functions:
        walk_nodes(f.node, "function:" + (f.domain + "." if f.domain else "") + f.name + "/")
    return out


def write_manifest(name, entries, **extra):
    """Fixtures/expected/<name>.json: what Pith must report for a fixture."""
    path = os.path.join(FIXTURES, "expected", name + ".json")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump({"file": name, **extra, "tensors": entries}, f, indent=1, sort_keys=True)
        f.write("\n")


def stats_entry(name, dtype, shape, values=None, nonzero=None):
    """A manifest row; `values` (numpy, real) adds nonzero/min/max/mean computed here."""
    shape = [int(d) for d in shape]
    entry = {"name": name, "dtype": dtype, "shape": shape, "count": int(np.prod(shape, dtype=np.int64))}
    if values is not None:
        v = np.asarray(values).astype(np.float64).ravel()
        entry["nonzero"] = int(np.count_nonzero(v))
        finite = v[np.isfinite(v)]
        if finite.size:
            entry["min"] = float(finite.min())
            entry["max"] = float(finite.max())
            entry["mean"] = float(finite.mean())
    if nonzero is not None:
        entry["nonzero"] = int(nonzero)
    return entry
