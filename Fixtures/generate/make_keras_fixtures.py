"""Small Keras and HDF5 files covering every path of Pith's HDF5 importer.

Writes into Fixtures/keras/ and manifests into Fixtures/expected/keras/. Real Keras
writes the first four files (tf_keras for Keras 2, keras 3 for the others); h5py writes
the layouts older or other writers produce (fixed-length and split attributes, empty
weight_names stored as float64, gzip-chunked and integer datasets, plain HDF5).
Manifest values are read back with h5py, independently of Pith.
Needs: numpy, h5py, tensorflow + tf_keras, keras 3.
"""
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import h5py  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(__file__))
from common import FIXTURES, stats_entry, write_manifest  # noqa: E402

OUT = os.path.join(FIXTURES, "keras")
rng = np.random.default_rng(3)


def decode(value):
    return value.decode() if isinstance(value, bytes) else str(value)


def legacy_manifest(name, fmt):
    """Follows layer_names / weight_names with h5py, as Keras' own loader does."""
    entries, optimizer = [], []
    with h5py.File(os.path.join(OUT, name), "r") as f:
        group = f["model_weights"] if "model_weights" in f else f
        prefix = "model_weights/" if "model_weights" in f else ""

        def strings(obj, key):
            if key in obj.attrs:
                values = obj.attrs[key]
            else:
                values, i = [], 0
                while f"{key}{i}" in obj.attrs:
                    values = list(values) + list(obj.attrs[f"{key}{i}"])
                    i += 1
            return [decode(v) for v in np.atleast_1d(values)] if np.size(values) else []

        for layer in strings(group, "layer_names"):
            for weight in strings(group[layer], "weight_names"):
                d = group[layer][weight]
                entries.append(stats_entry(prefix + layer + "/" + weight, str(d.dtype), d.shape, d[()]))
        if "optimizer_weights" in f:
            f["optimizer_weights"].visititems(lambda n, o: optimizer.append(n) if isinstance(o, h5py.Dataset) else None)
    write_manifest("keras/" + name, entries, format=fmt, optimizer_state_tensors=len(optimizer))


def weights_h5_manifest(name):
    entries, optimizer = [], []
    with h5py.File(os.path.join(OUT, name), "r") as f:
        def visit(path, obj):
            if isinstance(obj, h5py.Group) and path.endswith("/vars") and path.startswith("layers/"):
                for key in sorted(obj.keys(), key=int):
                    d = obj[key]
                    entries.append(stats_entry(path + "/" + key, str(d.dtype), d.shape, d[()]))
        f.visititems(visit)
        if "optimizer" in f:
            f["optimizer"].visititems(lambda n, o: optimizer.append(n) if isinstance(o, h5py.Dataset) else None)
    # Pith walks groups in name order, depth first; h5py's visititems does the same.
    write_manifest("keras/" + name, entries, format="keras3-weights-h5", optimizer_state_tensors=len(optimizer))


def keras2_files():
    import tf_keras as k
    inputs = k.Input((8, 8, 3))
    x = k.layers.Conv2D(4, 3, activation="relu", name="conv")(inputs)
    x = k.layers.BatchNormalization(name="bn")(x)
    x = k.layers.DepthwiseConv2D(3, name="dw")(x)
    x = k.layers.Flatten(name="flat")(x)
    outputs = k.layers.Dense(5, name="head")(x)
    model = k.Model(inputs, outputs, name="small_cnn")
    model.compile(optimizer="adam", loss="mse")
    model.fit(rng.normal(size=(8, 8, 8, 3)), rng.normal(size=(8, 5)), verbose=0, epochs=1)
    model.save(os.path.join(OUT, "keras2-cnn.h5"), save_format="h5")
    legacy_manifest("keras2-cnn.h5", "keras2-h5")
    model.save_weights(os.path.join(OUT, "keras2-cnn.weights-only.h5"))
    legacy_manifest("keras2-cnn.weights-only.h5", "keras2-h5")
    k.mixed_precision.set_global_policy("float16")
    half = k.Sequential([k.layers.Dense(6, name="h1", input_shape=(4,), dtype="float16"),
                         k.layers.Dense(2, name="h2", dtype="float16")], name="half")
    half.save(os.path.join(OUT, "keras2-float16.h5"), save_format="h5")
    k.mixed_precision.set_global_policy("float32")
    legacy_manifest("keras2-float16.h5", "keras2-h5")


def keras3_files():
    import keras
    inner = keras.Sequential([keras.Input((6,)), keras.layers.Dense(4, name="inner_fc")], name="inner")
    inputs = keras.Input((6,))
    x = inner(inputs)
    x = keras.layers.Dense(3, activation="relu", name="fc")(x)
    outputs = keras.layers.Dense(2, name="out")(x)
    model = keras.Model(inputs, outputs, name="nested")
    model.compile(optimizer="adam", loss="mse")
    model.fit(rng.normal(size=(4, 6)), rng.normal(size=(4, 2)), verbose=0)
    model.save(os.path.join(OUT, "keras3-nested.h5"))
    legacy_manifest("keras3-nested.h5", "keras3-legacy-h5")
    model.save_weights(os.path.join(OUT, "keras3-nested.weights.h5"))
    weights_h5_manifest("keras3-nested.weights.h5")


def h5py_files():
    """Layouts written by h5py directly, as older Keras versions and other tools write them."""
    # Keras 2.0-era file: fixed-length byte-string attributes, layer_names split in two parts,
    # an empty weight_names stored as an empty float64 array, a gzip-chunked kernel, an int dataset.
    path = os.path.join(OUT, "legacy-fixed-strings.h5")
    with h5py.File(path, "w") as f:
        f.attrs["keras_version"] = np.bytes_("2.0.5")
        f.attrs["backend"] = np.bytes_("tensorflow")
        g = f.create_group("model_weights")
        layers = ["input_1", "conv2d_1", "dense_1", "dense_2"]
        g.attrs["layer_names0"] = np.array([s.encode() for s in layers[:2]], dtype="S8")
        g.attrs["layer_names1"] = np.array([s.encode() for s in layers[2:]], dtype="S8")
        g.create_group("input_1").attrs["weight_names"] = np.array([], dtype=np.float64)
        conv = g.create_group("conv2d_1")
        conv.attrs["weight_names"] = np.array([b"conv2d_1_1/kernel:0", b"conv2d_1_1/bias:0"], dtype="S19")
        conv.create_dataset("conv2d_1_1/kernel:0", data=rng.normal(size=(3, 3, 1, 8)).astype(np.float32),
                            chunks=(3, 3, 1, 4), compression="gzip", compression_opts=9)
        conv.create_dataset("conv2d_1_1/bias:0", data=np.zeros(8, np.float32))
        d1 = g.create_group("dense_1")
        d1.attrs["weight_names"] = np.array([b"dense_1/kernel:0", b"dense_1/bias:0"], dtype="S16")
        k = rng.normal(size=(72, 10)).astype(np.float64)
        k[np.abs(k) < 0.5] = 0
        d1.create_dataset("dense_1/kernel:0", data=k)
        d1.create_dataset("dense_1/bias:0", data=rng.normal(size=10).astype(np.float16))
        d2 = g.create_group("dense_2")
        d2.attrs["weight_names"] = np.array([b"dense_2/embedding_ids:0"], dtype="S23")
        d2.create_dataset("dense_2/embedding_ids:0", data=rng.integers(-50, 50, size=(4, 5)).astype(np.int16))
    legacy_manifest("legacy-fixed-strings.h5", "keras2-h5")

    # Not Keras at all: nested groups of numeric datasets, plus a string dataset that is not a tensor.
    path = os.path.join(OUT, "plain.h5")
    with h5py.File(path, "w") as f:
        f.create_dataset("a/b/weights", data=rng.normal(size=(5, 4)).astype(np.float32), compression="gzip")
        f.create_dataset("a/counts", data=np.arange(10, dtype=np.uint32))
        f.create_dataset("a/flags", data=np.array([True, False, True]))
        f.create_dataset("z", data=np.float64(2.5))
        f.create_dataset("names", data=np.array([b"x", b"y"]))
        f["a/b/again"] = f["a/b/weights"]  # a second hard link to one dataset: one tensor
        f["a/b/loop"] = f["a"]  # a hard-link cycle: walks must end
    entries = []
    with h5py.File(path, "r") as f:
        def visit(name, obj):
            if isinstance(obj, h5py.Dataset) and obj.dtype.kind in "fiub":
                entries.append(stats_entry(name, {"b": "bool"}.get(obj.dtype.kind, str(obj.dtype)), obj.shape, obj[()]))
        f.visititems(visit)
    write_manifest("keras/plain.h5", entries, format="hdf5", optimizer_state_tensors=0)


def main():
    os.makedirs(OUT, exist_ok=True)
    keras2_files()
    keras3_files()
    h5py_files()
    print("wrote", sorted(os.listdir(OUT)))


if __name__ == "__main__":
    main()
