#!/usr/bin/env python3
"""Makes the zstd dictionaries of the container's whole-file form (format 1.5) and writes them to
Sources/PithContainer/Internals/WholeFileDictionaries.swift.

A file in the whole-file form names its dictionary by number, and decoding needs the very bytes it
was made with, so a dictionary, once released, never changes: this script is kept to show how each
was made, and running it again only adds a dictionary under a new number (a test pins each one's
CRC-32C). Neither dictionary is trained on a model: both are built from what the formats define.

  onnx-1  the ONNX operator schemas of the `onnx` package (1.20): one NodeProto per operator of every
          domain, with the schema's input and output names and its attribute names and types; then
          a minimal ModelProto per well-known exporter name (opset imports, a float tensor's
          ValueInfo with the shape the ONNX operator documentation uses), the framing that begins
          every model.
  hdf5-1  an HDF5 file written here by h5py (libhdf5 2.0) with the layout Keras writes: the
          superblock, root group and symbol tables, a Keras 2 model's `model_config`,
          `training_config`, `model_weights` (`layer_names`, `weight_names`, `backend`,
          `keras_version`) and `optimizer_weights`, and a Keras 3 weights file's `layers/…/vars`.

    python3 scripts/make_dictionaries.py            # checks the committed file is what it writes
    python3 scripts/make_dictionaries.py --write    # rewrites it (only to add a dictionary)
"""
import base64
import io
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUTPUT = os.path.join(ROOT, "Sources/PithContainer/Internals/WholeFileDictionaries.swift")
PRODUCERS = ["onnx-example", "backend-test", "onnxmltools", "keras2onnx", "paddle2onnx", "skl2onnx", "tf2onnx", "pytorch"]


def onnx_dictionary():
    import onnx
    import onnx.defs
    from onnx import TensorProto, helper

    parts = []
    seen = set()
    # Operators of other domains first: the default domain's, most used, end up nearest the data.
    schemas = sorted(onnx.defs.get_all_schemas(), key=lambda s: (s.domain == "", s.domain, s.name))
    for schema in schemas:
        if (schema.domain, schema.name) in seen:
            continue
        seen.add((schema.domain, schema.name))
        node = helper.make_node(
            schema.name, [i.name for i in schema.inputs], [o.name for o in schema.outputs], domain=schema.domain or None)
        for name in sorted(schema.attributes):
            attribute = node.attribute.add()
            attribute.name = name
            attribute.type = schema.attributes[name].type
        parts.append(node.SerializeToString())
    for producer in PRODUCERS:
        x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [3, 4, 5])
        y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [3, 4, 5])
        graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "test_graph", [x], [y])
        model = helper.make_model(graph, producer_name=producer, opset_imports=[helper.make_opsetid("", 13)])
        parts.append(model.SerializeToString())
    return b"".join(parts)


def hdf5_dictionary():
    import h5py
    import numpy as np

    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as f:
        f.attrs["backend"] = "tensorflow"
        f.attrs["keras_version"] = "2.15.0"
        dense = {
            "name": "dense", "trainable": True, "dtype": "float32", "units": 4, "activation": "relu", "use_bias": True,
            "kernel_initializer": {"class_name": "GlorotUniform", "config": {"seed": None}},
            "bias_initializer": {"class_name": "Zeros", "config": {}},
            "kernel_regularizer": None, "bias_regularizer": None, "activity_regularizer": None,
            "kernel_constraint": None, "bias_constraint": None,
        }
        layers = [
            {"class_name": "InputLayer", "config": {"batch_input_shape": [None, 8], "dtype": "float32", "sparse": False,
                                                    "ragged": False, "name": "input_1"}},
            {"class_name": "Dense", "config": dense},
        ]
        f.attrs["model_config"] = json.dumps({"class_name": "Sequential", "config": {"name": "sequential", "layers": layers}})
        weights = f.create_group("model_weights")
        weights.attrs["layer_names"] = np.array([b"dense"])
        weights.attrs["backend"] = "tensorflow"
        weights.attrs["keras_version"] = "2.15.0"
        layer = weights.create_group("dense")
        layer.attrs["weight_names"] = np.array([b"dense/kernel:0", b"dense/bias:0"])
        inner = layer.create_group("dense")
        inner.create_dataset("kernel:0", data=np.zeros((8, 4), np.float32))
        inner.create_dataset("bias:0", data=np.zeros(4, np.float32))
        f.create_group("optimizer_weights")
        keras3 = f.create_group("layers").create_group("dense").create_group("vars")
        keras3.create_dataset("0", data=np.zeros((8, 4), np.float32))
        f.attrs["training_config"] = json.dumps({
            "loss": "categorical_crossentropy", "metrics": ["accuracy"],
            "optimizer_config": {"class_name": "Adam", "config": {"name": "Adam", "learning_rate": 0.001}},
        })
    return buffer.getvalue()


def swift_source(dictionaries):
    lines = [
        "// Generated by scripts/make_dictionaries.py; never edit a released dictionary (see that script).",
        "",
        "extension WholeFileContainer.Dictionary {",
        "    /// The dictionary's bytes, base64 in the source.",
        "    var base64: String {",
        "        switch self {",
    ]
    for case, data in dictionaries:
        text = base64.b64encode(data).decode()
        lines.append(f"        case .{case}:")
        lines.append('            return """')
        for k in range(0, len(text), 120):
            lines.append("                " + text[k:k + 120] + "\\")
        lines[-1] = lines[-1][:-1]
        lines.append('                """')
    lines += ["        }", "    }", "}", ""]
    return "\n".join(lines)


def main():
    source = swift_source([("onnx1", onnx_dictionary()), ("hdf5v1", hdf5_dictionary())])
    if "--write" in sys.argv:
        with open(OUTPUT, "w") as f:
            f.write(source)
        print(f"wrote {OUTPUT}")
        return
    with open(OUTPUT) as f:
        committed = f.read()
    if committed != source:
        sys.exit(f"{OUTPUT} differs from what this script writes now (another onnx or h5py?); released dictionaries never change")
    print("the committed dictionaries are what this script writes")


if __name__ == "__main__":
    main()
