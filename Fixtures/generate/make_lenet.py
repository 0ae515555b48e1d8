"""Trains LeNet-300-100 on MNIST with numpy and writes it as ONNX and as a Keras 2 .h5.

Outputs (in Fixtures/): lenet-300-100.onnx, lenet-300-100.h5, and their manifests in
Fixtures/expected/. Deterministic for a given numpy version: seed 1510 (the paper's arXiv id).
MNIST is read from ../shared/data/mnist (raw IDX, gzip) relative to the repository.
Needs: numpy, onnx, onnxruntime (to record its accuracy), tf_keras + tensorflow (for the .h5).
"""
import gzip
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from common import FIXTURES, stats_entry, write_manifest  # noqa: E402

MNIST = os.path.normpath(os.path.join(FIXTURES, "..", "..", "shared", "data", "mnist"))


def idx(name):
    with gzip.open(os.path.join(MNIST, name)) as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def train():
    rng = np.random.default_rng(1510)
    x = idx("train-images.idx3-ubyte.gz").reshape(-1, 784).astype(np.float32) / 255
    y = idx("train-labels.idx1-ubyte.gz").astype(np.int64)
    sizes = [784, 300, 100, 10]
    W = [rng.normal(0, np.sqrt(2 / a), (b, a)).astype(np.float32) for a, b in zip(sizes, sizes[1:])]
    B = [np.zeros(b, np.float32) for b in sizes[1:]]
    vW = [np.zeros_like(w) for w in W]
    vB = [np.zeros_like(b) for b in B]
    epochs, batch = 12, 128
    for epoch in range(epochs):
        lr = 0.05 * (0.5 ** (epoch // 4))
        order = rng.permutation(len(x))
        for start in range(0, len(x), batch):
            idxs = order[start:start + batch]
            a = [x[idxs]]
            for i in range(3):
                z = a[-1] @ W[i].T + B[i]
                a.append(np.maximum(z, 0) if i < 2 else z)
            logits = a[-1]
            p = np.exp(logits - logits.max(1, keepdims=True))
            p /= p.sum(1, keepdims=True)
            g = p
            g[np.arange(len(idxs)), y[idxs]] -= 1
            g /= len(idxs)
            for i in (2, 1, 0):
                gW = g.T @ a[i] + 1e-4 * W[i]
                gB = g.sum(0)
                if i > 0:
                    g = (g @ W[i]) * (a[i] > 0)
                vW[i] = 0.9 * vW[i] - lr * gW
                vB[i] = 0.9 * vB[i] - lr * gB
                W[i] += vW[i]
                B[i] += vB[i]
        print(f"epoch {epoch + 1}: test error {100 * (1 - accuracy(W, B)):.2f}%", flush=True)
    return W, B


def forward(W, B, x):
    a = x
    for i in range(3):
        a = a @ W[i].T + B[i]
        if i < 2:
            a = np.maximum(a, 0)
    return a


def accuracy(W, B):
    x = idx("t10k-images.idx3-ubyte.gz").reshape(-1, 784).astype(np.float32) / 255
    y = idx("t10k-labels.idx1-ubyte.gz")
    return float((forward(W, B, x).argmax(1) == y).mean())


def write_onnx(W, B, path):
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    nodes, inits, prev = [], [], "input"
    for i in range(3):
        name = f"fc{i + 1}"
        inits += [numpy_helper.from_array(W[i], f"{name}.weight"), numpy_helper.from_array(B[i], f"{name}.bias")]
        out = "logits" if i == 2 else f"{name}_out"
        nodes.append(helper.make_node("Gemm", [prev, f"{name}.weight", f"{name}.bias"], [out], name=name, transB=1))
        if i < 2:
            nodes.append(helper.make_node("Relu", [out], [f"relu{i + 1}"], name=f"relu{i + 1}"))
            prev = f"relu{i + 1}"
    graph = helper.make_graph(
        nodes, "lenet_300_100",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 784])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 10])], inits)
    model = helper.make_model(graph, producer_name="pith-fixtures", producer_version="1",
                              opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, path)


def write_keras2(W, B, path):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tf_keras

    model = tf_keras.Sequential([
        tf_keras.layers.Dense(300, activation="relu", name="fc1", input_shape=(784,)),
        tf_keras.layers.Dense(100, activation="relu", name="fc2"),
        tf_keras.layers.Dense(10, name="fc3"),
    ], name="lenet_300_100")
    model.set_weights([W[0].T, B[0], W[1].T, B[1], W[2].T, B[2]])
    model.save(path, save_format="h5")


def main():
    W, B = train()
    acc = accuracy(W, B)
    onnx_path = os.path.join(FIXTURES, "lenet-300-100.onnx")
    h5_path = os.path.join(FIXTURES, "lenet-300-100.h5")
    write_onnx(W, B, onnx_path)
    write_keras2(W, B, h5_path)
    import onnxruntime as ort
    x = idx("t10k-images.idx3-ubyte.gz").reshape(-1, 784).astype(np.float32) / 255
    y = idx("t10k-labels.idx1-ubyte.gz")
    ort_pred = ort.InferenceSession(onnx_path).run(None, {"input": x})[0].argmax(1)
    ort_acc = float((ort_pred == y).mean())
    onnx_entries, keras_entries = [], []
    for i in range(3):
        n = f"fc{i + 1}"
        onnx_entries += [stats_entry(f"{n}.weight", "float32", W[i].shape, W[i]),
                         stats_entry(f"{n}.bias", "float32", B[i].shape, B[i])]
        keras_entries += [stats_entry(f"model_weights/{n}/{n}/kernel:0", "float32", W[i].T.shape, W[i].T),
                          stats_entry(f"model_weights/{n}/{n}/bias:0", "float32", B[i].shape, B[i])]
    info = {"mnist_test_accuracy_numpy": acc, "mnist_test_accuracy_onnxruntime": ort_acc}
    write_manifest("lenet-300-100.onnx", onnx_entries, format="onnx", **info)
    write_manifest("lenet-300-100.h5", keras_entries, format="keras2-h5", **info)
    print(f"test accuracy: numpy {acc:.4f}, onnxruntime {ort_acc:.4f}")


if __name__ == "__main__":
    main()
