#!/usr/bin/env python3
"""Top-1 accuracy of an MNIST ONNX model in onnxruntime on the 10,000 test images (pixels / 255),
to check `pith restore` output in the runtime users deploy with.

    scripts/onnxruntime_accuracy.py MODEL.onnx [MNIST_DIR]
"""
import gzip
import os
import sys

import numpy as np
import onnxruntime as ort


def idx(path):
    data = gzip.open(path).read()
    rank = data[3]
    shape = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(rank)]
    return np.frombuffer(data, np.uint8, offset=4 + 4 * rank).reshape(shape)


def main():
    model = sys.argv[1]
    mnist = sys.argv[2] if len(sys.argv) > 2 else os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "mnist")
    x = idx(os.path.join(mnist, "t10k-images.idx3-ubyte.gz")).reshape(-1, 784).astype(np.float32) / 255
    y = idx(os.path.join(mnist, "t10k-labels.idx1-ubyte.gz"))
    session = ort.InferenceSession(model)
    predictions = session.run(None, {session.get_inputs()[0].name: x})[0].argmax(1)
    correct = int((predictions == y).sum())
    print(f"onnxruntime {ort.__version__}: {model}: top-1 accuracy {correct / len(y):.2%} ({correct} of {len(y)})")


if __name__ == "__main__":
    main()
