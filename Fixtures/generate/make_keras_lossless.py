"""Keras / HDF5 files for the whole-file round trip (`Tests/interop/test_hdf5_lossless.py`), written with
h5py as Keras writes them (Keras and TensorFlow are not needed):

- `keras3_weights_with_optimizer`: Keras 3 `model.save_weights("x.weights.h5")` of a functional model
  (`saving_lib` / `H5IOStore`): `layers/<layer>/vars/<i>`, each `vars` group with its layer's `name` as a
  variable-length UTF-8 string, empty `vars` groups for layers without weights, the model's own `vars`,
  and the optimizer's variables in `optimizer/vars` (`iteration` int64 and `learning_rate` float32
  scalars, then one momentum and one velocity per weight).
- `keras3_weights_subclassed`: the same from a subclassed model: its layers are tracked attributes at the
  root (`dense1/vars`, `dropout/vars`, …), with no top-level `layers` group.
- `keras2_with_optimizer`: tf.keras 2 `model.save("x.h5")`: root `keras_version`, `backend`,
  `model_config`, `training_config`; `model_weights` with `layer_names`, each layer's `weight_names`
  (`dense/kernel:0`) and its datasets one group deeper, `top_level_model_weights`, and
  `optimizer_weights` with its own `weight_names` (`iteration:0`, `Adam/m/dense/kernel:0`, …). Strings as
  tf.keras 2.13+ writes them with h5py 3 (variable-length UTF-8) or, with `fixed=True`, as Keras 2.0-era
  files (fixed-length NUL-padded byte strings, ASCII).
- `hdf5_exact_types`: what the Keras writers do not use but HDF5 files hold: groups and objects that
  track creation order, soft and second hard links, strings padded every way, ASCII and UTF-8,
  fixed and variable length, scalar and array, empty (`h5py.Empty`) and big-endian attributes, a string
  dataset, an empty dataset.
"""
import json

import h5py
import numpy as np


def _vlen(value):
    return value  # h5py stores a Python str as a variable-length UTF-8 scalar


def keras3_weights_with_optimizer(path, seed=0):
    rng = np.random.default_rng(seed)
    shapes = {"dense": ("fc", [(6, 4), (4,)]), "dense_1": ("out", [(4, 2), (2,)]), "input_layer": ("input_layer", [])}
    with h5py.File(path, "w") as f:
        layers = f.create_group("layers")
        weights = []
        for key, (name, variables) in shapes.items():
            group = layers.create_group(key).create_group("vars")
            group.attrs["name"] = _vlen(name)
            for i, shape in enumerate(variables):
                value = rng.normal(size=shape).astype(np.float32)
                group.create_dataset(str(i), data=value)
                weights.append(value)
        f.create_group("vars").attrs["name"] = _vlen("functional")
        vars_ = f.create_group("optimizer").create_group("vars")
        vars_.attrs["name"] = _vlen("adam")
        vars_.create_dataset("0", data=np.int64(7))
        vars_.create_dataset("1", data=np.float32(0.001))
        i = 2
        for value in weights:
            for _ in ("momentum", "velocity"):
                vars_.create_dataset(str(i), data=rng.normal(size=value.shape).astype(np.float32) * 1e-3)
                i += 1


def keras3_weights_subclassed(path, seed=1):
    rng = np.random.default_rng(seed)
    with h5py.File(path, "w") as f:
        for key, name, variables in [("dense1", "dense", [(8, 5), (5,)]), ("dense2", "dense_1", [(5, 3), (3,)]), ("dropout", "dropout", [])]:
            group = f.create_group(key).create_group("vars")
            group.attrs["name"] = _vlen(name)
            for i, shape in enumerate(variables):
                group.create_dataset(str(i), data=rng.normal(size=shape).astype(np.float32))
        f.create_group("vars").attrs["name"] = _vlen("my_model")
        # A tracked object with no variables of its own: an empty group.
        f.create_group("seed_generator")
        vars_ = f.create_group("optimizer").create_group("vars")
        vars_.attrs["name"] = _vlen("sgd")
        vars_.create_dataset("0", data=np.int64(3))
        vars_.create_dataset("1", data=np.float32(0.01))
        for i, shape in enumerate([(8, 5), (5,), (5, 3), (3,)]):
            vars_.create_dataset(str(i + 2), data=rng.normal(size=shape).astype(np.float32))


def keras2_with_optimizer(path, fixed=False, seed=2):
    rng = np.random.default_rng(seed)

    def strings(values):
        if fixed:
            return np.array([v.encode() for v in values], dtype=f"S{max(1, max((len(v) for v in values), default=1))}")
        return np.array(values, dtype=h5py.string_dtype())

    def scalar(value):
        return np.bytes_(value.encode()) if fixed else value

    config = {"class_name": "Sequential", "config": {"name": "seq", "layers": [
        {"class_name": "InputLayer", "config": {"name": "input_1", "batch_input_shape": [None, 6]}},
        {"class_name": "Dense", "config": {"name": "dense", "units": 4}},
        {"class_name": "Dropout", "config": {"name": "dropout", "rate": 0.5}},
        {"class_name": "Dense", "config": {"name": "dense_1", "units": 2}}]}}
    training = {"loss": "mse", "optimizer_config": {"class_name": "Adam", "config": {"learning_rate": 0.001}}}
    layers = {"input_1": [], "dense": [("kernel:0", (6, 4)), ("bias:0", (4,))], "dropout": [], "dense_1": [("kernel:0", (4, 2)), ("bias:0", (2,))]}
    with h5py.File(path, "w") as f:
        f.attrs["keras_version"] = scalar("2.15.0")
        f.attrs["backend"] = scalar("tensorflow")
        f.attrs["model_config"] = scalar(json.dumps(config))
        f.attrs["training_config"] = scalar(json.dumps(training))
        g = f.create_group("model_weights")
        g.attrs["layer_names"] = strings(list(layers) + ["top_level_model_weights"])
        g.attrs["backend"] = scalar("tensorflow")
        g.attrs["keras_version"] = scalar("2.15.0")
        names = []
        for layer, variables in layers.items():
            group = g.create_group(layer)
            weight_names = [f"{layer}/{w}" for w, _ in variables]
            group.attrs["weight_names"] = strings(weight_names) if weight_names else np.array([], dtype=np.float64)
            for (w, shape), full in zip(variables, weight_names):
                group.create_dataset(full, data=rng.normal(size=shape).astype(np.float32))
                names.append((full, shape))
        g.create_group("top_level_model_weights").attrs["weight_names"] = np.array([], dtype=np.float64)
        o = f.create_group("optimizer_weights")
        optimizer_names = ["iteration:0"] + [f"Adam/{slot}/{n}" for slot in ("m", "v") for n, _ in names]
        o.attrs["weight_names"] = strings(optimizer_names)
        o.create_dataset("iteration:0", data=np.int64(12))
        for slot in ("m", "v"):
            for n, shape in names:
                o.create_dataset(f"Adam/{slot}/{n}", data=rng.normal(size=shape).astype(np.float32) * 1e-3)


def hdf5_exact_types(path, seed=3):
    rng = np.random.default_rng(seed)
    with h5py.File(path, "w", track_order=True) as f:
        f.attrs["zeta"] = "first in creation order"
        f.attrs["alpha"] = np.array(["a", "bc"], dtype=h5py.string_dtype("ascii"))
        g = f.create_group("z_tracked", track_order=True)
        g.create_dataset("w2", data=rng.normal(size=(3, 2)).astype(np.float32))
        g.create_dataset("w1", data=rng.normal(size=(2,)).astype(np.float64))
        g.create_group("empty")
        d = g["w2"]
        d.attrs["fixed_nullpad"] = np.bytes_(b"abc")
        d.attrs["fixed_array"] = np.array([b"x", b"yz"], dtype="S3")
        f.create_group("a_plain")
        a = f["a_plain"]
        a.attrs["empty"] = h5py.Empty("f4")
        a.attrs["big_endian"] = np.array([1, 2, 3], dtype=">i4")
        a.attrs["vector"] = np.arange(4, dtype=np.uint16)
        a.attrs["scalar_float"] = np.float64(2.5)
        a.attrs["one_element"] = np.array([7], dtype=np.int8)
        a.attrs["flag"] = np.bool_(True)
        for pad, name in [(h5py.h5t.STR_NULLTERM, "nullterm"), (h5py.h5t.STR_SPACEPAD, "spacepad")]:
            t = h5py.h5t.C_S1.copy()
            t.set_size(6)
            t.set_strpad(pad)
            t.set_cset(h5py.h5t.CSET_UTF8)
            space = h5py.h5s.create(h5py.h5s.SCALAR)
            attr = h5py.h5a.create(a.id, name.encode(), t, space)
            attr.write(np.array(b"hi", dtype="S6"), mtype=t)
        a.create_dataset("names", data=np.array(["é", "ab"], dtype=h5py.string_dtype()))
        a.create_dataset("nothing", data=np.zeros((0, 3), np.float32))
        a.create_dataset("ints", data=rng.integers(-9, 9, size=(2, 3)).astype(np.int16))
        f["a_plain/soft"] = h5py.SoftLink("/z_tracked/w2")
        f["a_plain/again"] = f["z_tracked/w1"]
