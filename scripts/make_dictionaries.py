#!/usr/bin/env python3
"""Makes the zstd dictionaries of the container format and writes them to
Sources/PithContainer/Internals/WholeFileDictionaries.swift: those of the whole-file form (format 1.5)
and the vocabulary of the manifest's dictionary (format 1.6).

A file names its dictionary (by number, or by a header flag), and decoding needs the very bytes it
was made with, so a dictionary, once released, never changes: this script is kept to show how each
was made, and running it again only adds a dictionary under a new name (a test pins each one's
CRC-32C). No dictionary is trained on a model: each is built from what the formats define.

  onnx-1  the ONNX operator schemas of the `onnx` package (1.20): one NodeProto per operator of every
          domain, with the schema's input and output names and its attribute names and types; then
          a minimal ModelProto per well-known exporter name (opset imports, a float tensor's
          ValueInfo with the shape the ONNX operator documentation uses), the framing that begins
          every model.
  hdf5-1  an HDF5 file written here by h5py (libhdf5 2.0) with the layout Keras writes: the
          superblock, root group and symbol tables, a Keras 2 model's `model_config`,
          `training_config`, `model_weights` (`layer_names`, `weight_names`, `backend`,
          `keras_version`) and `optimizer_weights`, and a Keras 3 weights file's `layers/…/vars`.
  manifest-1  (format 1.6) `hdf5-1`, then `onnx-1`, then the manifest vocabulary written here: the keys
          and values of Schemas/container-manifest.schema.json as Pith's writer spells them (sorted
          keys, no spaces), rarest first, so that the commonest sit nearest the data. The container's
          manifest frame is made with it, and may hold the source skeleton after its JSON: a manifest
          names tensors and the skeleton spells out the format's framing. Only the vocabulary is
          written to the Swift file; the reader puts the three together.

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
SCHEMA = os.path.join(ROOT, "Schemas/container-manifest.schema.json")
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


def manifest_vocabulary():
    """The manifest's keys and values, from the schema, as JSON fragments in the writer's spelling:
    keys sorted, no whitespace, numbers as placeholders. Rarest first (the encodings of the lossy
    passes, Keras sources), commonest last (stream entries, a float32 tensor, the manifest's end)."""
    with open(SCHEMA) as f:
        schema = json.load(f)
    top = schema["properties"]
    encoding = schema["$defs"]["encoding"]["properties"]
    source = top["source"]["properties"]
    tensor = top["tensors"]["items"]["properties"]
    stream = top["streams"]["items"]["properties"]
    parts = []
    # Encoding fields other than `kind` (codebook, quantized, sparse, factored): each key with its
    # values, a boolean's two, or a placeholder number.
    for key in sorted(encoding, reverse=True):
        spec = encoding[key]
        if key in ("kind", "streams", "start"):
            continue
        if "enum" in spec:
            parts += [f'"{key}":"{value}",' for value in spec["enum"]]
        elif spec.get("type") == "boolean":
            parts += [f'"{key}":false,', f'"{key}":true,']
        elif spec.get("type") == "array":
            parts.append(f'"{key}":[1,')
        elif "$ref" in spec:
            parts.append(f'"{key}":{{"kind":"')
        else:
            parts.append(f'"{key}":0,')
    # The source: each format, with the keys a container of it has.
    for name in reversed(source["format"]["enum"]):
        keys = ['"configuration":"",'] if name != "onnx" else []
        parts.append('{"format":"pith","source":{' + "".join(keys) + f'"format":"{name}","producer_name":"","producer_version":"",'
                     '"properties":[{"key":"","value":""}],"skeleton":')
    parts.append('"origin":"')
    # Tensors: every dtype, rarest first, then every kind with its streams.
    for dtype in reversed(tensor["dtype"]["enum"]):
        parts.append(f'{{"consumer_name":"","consumer_op":"","dtype":"{dtype}","encoding":{{"kind":"')
    for kind in reversed(encoding["kind"]["enum"]):
        parts.append(f'"kind":"{kind}","start":0,"streams":[0,1,2,3]}},"name":"","shape":[1,')
    # Streams: each coding and dictionary, a Huffman table of exponents (their code lengths start
    # with a run of unused symbols), then the keys every entry has.
    for value in stream["dictionary"]["enum"]:
        parts.append(f',"dictionary":"{value}",')
    for bits in reversed(stream["symbol_bits"]["enum"]):
        parts.append(f',"symbol_bits":{bits},"symbols":')
    parts.append('{"code_lengths":"' + "0" * 128 + '","coding":"huffman","crc32c":"')
    for coding in stream["coding"]["enum"]:
        parts.append(f'{{"coding":"{coding}","crc32c":"')
    parts.append('","length":0,"offset":64,"symbols":0},')
    parts.append('],"streams":[{"coding":"raw","crc32c":"')
    parts.append('{"consumer_name":"","consumer_op":"","dtype":"float32","encoding":{"kind":"float-split","streams":[0,1,2,3]},"name":"","shape":[1,1]}')
    parts.append('],"tensors":[{"consumer_name":"')
    parts.append('],"version":"1.')
    return "".join(parts).encode()


def swift_source(dictionaries, vocabulary):
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
    text = base64.b64encode(vocabulary).decode()
    lines += [
        "extension ManifestDictionary {",
        "    /// The manifest vocabulary (what follows `hdf5-1` and `onnx-1` in `manifest-1`), base64 in the source.",
        "    static let vocabularyBase64 = \"\"\"",
    ]
    for k in range(0, len(text), 120):
        lines.append("        " + text[k:k + 120] + "\\")
    lines[-1] = lines[-1][:-1]
    lines += ['        """', "}", ""]
    return "\n".join(lines)


def main():
    # `onnx-skeleton-1` (dictionary 3) is `onnx-1` with a frame of another content: the same bytes.
    source = swift_source([("onnx1, .onnxSkeleton1", onnx_dictionary()), ("hdf5v1", hdf5_dictionary())], manifest_vocabulary())
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
