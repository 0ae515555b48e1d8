"""A corpus of broken model files, each named after the error Pith must report.

Writes Fixtures/broken/ and Fixtures/broken/expected.json, which maps every file to
the exit code and a phrase its error message must contain (besides the file's name).
Built from the good fixtures, so run make_lenet.py and make_keras_fixtures.py first.
Needs: numpy, onnx, h5py.
"""
import json
import os
import shutil
import sys

import h5py
import numpy as np
import onnx
from onnx import TensorProto as TP
from onnx import helper, numpy_helper

sys.path.insert(0, os.path.dirname(__file__))
from common import FIXTURES  # noqa: E402

OUT = os.path.join(FIXTURES, "broken")
expected = {}


def varint(n):
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def read_varint(data, position):
    value, shift = 0, 0
    while True:
        byte = data[position]
        position += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, position


def write(name, data, code, phrase):
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(data)
    expected[name] = {"exit_code": code, "message": phrase}


def tiny_model(tensor):
    graph = helper.make_graph([helper.make_node("Identity", [tensor.name], ["y"])], "g", [],
                              [helper.make_tensor_value_info("y", TP.FLOAT, None)], [tensor])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


def external(name, location, length=None, offset=0, size=(4, 4)):
    t = TP(name="w", data_type=TP.FLOAT, dims=list(size), data_location=TP.EXTERNAL)
    for key, value in [("location", location), ("offset", str(offset))] + ([("length", str(length))] if length is not None else []):
        e = t.external_data.add()
        e.key, e.value = key, value
    return tiny_model(t)


def main():
    shutil.rmtree(OUT, ignore_errors=True)
    os.makedirs(OUT)
    # A small valid model to damage (keeps the corpus a few kilobytes).
    lenet = open(os.path.join(FIXTURES, "onnx", "external-data.onnx"), "rb").read()

    write("empty.onnx", b"", 65, "not an ONNX model: it looks like an empty file")
    write("truncated-half.onnx", lenet[: len(lenet) // 2], 65, "remain")
    write("truncated-header.onnx", lenet[:3], 65, "not a valid ONNX model")
    # Byte 1 and on is the graph's length varint: set its high bits so it claims more than the file holds.
    flipped = bytearray(lenet)
    # Walk the top-level fields to the graph (field 7) and set the high bits of its length's last byte.
    position = 0
    while True:
        key, position = read_varint(lenet, position)
        if key >> 3 == 7:
            break
        if key & 7 == 0:
            _, position = read_varint(lenet, position)
        else:
            length, position = read_varint(lenet, position)
            position += length
    last = position
    while lenet[last] & 0x80:
        last += 1
    flipped[last] |= 0x7F
    write("bitflip-graph-length.onnx", bytes(flipped), 65, "declares")
    bad_wire = bytearray(lenet)
    bad_wire[0] = (bad_wire[0] & ~7) | 7  # wire type 7 does not exist
    write("bitflip-wire-type.onnx", bytes(bad_wire), 65, "invalid wire type")
    write("not-a-model.txt", b"This is a text file, not a model.\n" * 4, 65, "not an ONNX model: it looks like a text file (it begins `This is a text file, not a model.`)")
    write("no-graph.onnx", b"\x08\x08", 65, "`ModelProto.graph` (field 7) is missing")

    t = TP(name="short", data_type=TP.FLOAT, dims=[10, 10], raw_data=b"\0" * 40)
    write("raw-data-too-short.onnx", tiny_model(t), 65, "raw_data holds 40 bytes")
    t = TP(name="neg", data_type=TP.FLOAT, dims=[4, -2], raw_data=b"")
    write("negative-dimension.onnx", tiny_model(t), 65, "dimension -2 is negative")
    t = TP(name="huge", data_type=TP.FLOAT, dims=[1 << 40, 1 << 40], raw_data=b"\0" * 16)
    write("huge-shape.onnx", tiny_model(t), 65, "more elements than can be addressed")
    t = TP(name="huge2", data_type=TP.FLOAT, dims=[1 << 20, 1 << 20], raw_data=b"\0" * 16)
    write("huge-shape-small-data.onnx", tiny_model(t), 65, "raw_data holds 16 bytes")
    t = TP(name="odd", data_type=99, dims=[2], raw_data=b"\0\0")
    write("unknown-data-type.onnx", tiny_model(t), 69, "data_type 99")
    t = TP(name="few", data_type=TP.FLOAT, dims=[3], float_data=[1.0, 2.0])
    # 200 nested If nodes: deeper than Pith accepts (each level is graph → node → attribute).
    # Encoded by hand: Python's protobuf itself refuses to build messages this deep.
    def field(number, payload):
        return varint(number << 3 | 2) + varint(len(payload)) + payload
    graph = b""
    for level in range(200):
        attribute = field(1, b"then_branch") + varint(20 << 3) + varint(5) + field(6, graph)
        graph = field(1, field(4, b"If") + field(5, attribute))
    nested = varint(1 << 3) + varint(8) + field(7, graph)
    write("nesting-too-deep.onnx", nested, 65, "nested deeper than")
    write("float-data-count.onnx", tiny_model(t), 65, "float_data holds 2 values")
    t = TP(name="nodata", data_type=TP.FLOAT, dims=[3])
    write("missing-data.onnx", tiny_model(t), 65, "has no data")
    sparse = helper.make_sparse_tensor(numpy_helper.from_array(np.array([1.0], np.float32), "sp"),
                                       numpy_helper.from_array(np.array([99], np.int64), "spi"), [3, 3])
    graph = helper.make_graph([], "g", [], [], sparse_initializer=[sparse])
    huge = helper.make_sparse_tensor(numpy_helper.from_array(np.array([1.0], np.float32), "big"),
                                     numpy_helper.from_array(np.array([7], np.int64), "bigi"), [1 << 15, 1 << 15])
    huge_graph = helper.make_graph([], "g", [], [], sparse_initializer=[huge])
    write("sparse-expands-too-far.onnx", helper.make_model(huge_graph).SerializeToString(), 65, "would expand to more than")
    write("sparse-index-out-of-range.onnx", helper.make_model(graph).SerializeToString(), 65, "sparse index 99 is outside")

    write("external-escapes-folder.onnx", external("w", "../lenet-300-100.onnx", 64), 65, "contains `..`")
    write("external-absolute-path.onnx", external("w", "/etc/hostname", 64), 65, "absolute path")
    write("external-missing-file.onnx", external("w", "no-such-file.bin", 64), 65, "not found")
    write("external-too-short.onnx", external("w", "external-too-short.bin", 64), 65, "the tensor needs bytes")
    with open(os.path.join(OUT, "external-too-short.bin"), "wb") as f:
        f.write(b"\0" * 32)
    write("external-length-mismatch.onnx", external("w", "external-too-short.bin", 60), 65, "`length` is 60 bytes")
    write("external-symlink-escapes.onnx", external("w", "escape-link.bin", 64), 65, "outside the model's folder")
    os.symlink("../lenet-300-100.onnx", os.path.join(OUT, "escape-link.bin"))
    write("external-bad-offset.onnx", external("w", "external-too-short.bin", 64, offset=0).replace(b"\x06offset\x12\x010", b"\x06offset\x12\x01x"), 65, "`offset` is \"x\"")

    # HDF5: a Keras 2 layout whose weight_names names a dataset that does not exist.
    path = os.path.join(OUT, "keras-missing-dataset.h5")
    with h5py.File(path, "w") as f:
        g = f.create_group("model_weights")
        g.attrs["layer_names"] = np.array([b"dense"])
        d = g.create_group("dense")
        d.attrs["weight_names"] = np.array([b"dense/kernel:0", b"dense/bias:0"])
        d.create_dataset("dense/kernel:0", data=np.ones((3, 2), np.float32))
    expected["keras-missing-dataset.h5"] = {"exit_code": 65, "message": "dataset `model_weights/dense/dense/bias:0` does not exist"}
    path = os.path.join(OUT, "keras-missing-layer-group.h5")
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = np.array([b"dense", b"ghost"])
        d = f.create_group("dense")
        d.attrs["weight_names"] = np.array([b"dense/kernel:0"])
        d.create_dataset("dense/kernel:0", data=np.ones((3, 2), np.float32))
    expected["keras-missing-layer-group.h5"] = {"exit_code": 65, "message": "there is no group `ghost`"}
    path = os.path.join(OUT, "hdf5-huge-unwritten-dataset.h5")
    with h5py.File(path, "w") as f:
        f.create_dataset("w", shape=(1 << 20, 1 << 20), dtype=np.float32, chunks=(64, 64))
    expected["hdf5-huge-unwritten-dataset.h5"] = {"exit_code": 65, "message": "but the file stores only 0"}
    keras = open(os.path.join(FIXTURES, "keras", "keras2-cnn.h5"), "rb").read()
    write("hdf5-truncated.h5", keras[: len(keras) // 3], 65, "not a readable HDF5 file")
    path = os.path.join(OUT, "keras-string-weight.h5")
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = np.array([b"dense"])
        d = f.create_group("dense")
        d.attrs["weight_names"] = np.array([b"w"])
        d.create_dataset("w", data=np.array([b"abc"]))
    expected["keras-string-weight.h5"] = {"exit_code": 69, "message": "element type is string"}

    with open(os.path.join(OUT, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1, sort_keys=True)
        f.write("\n")
    print(f"wrote {len(expected)} broken files")


if __name__ == "__main__":
    main()
