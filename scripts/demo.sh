#!/usr/bin/env bash
# The README's demo: the bundled LeNet-300-100, trained on MNIST, through every
# stage Pith has so far: inspection of the ONNX and the Keras 2 file, then the compression
# passes, the .pith container (written, inspected, restored to ONNX), then evaluation on the
# MNIST test set, verification of the compressed model against the original, and a low-rank
# split of fc1 restored as two Gemm nodes that onnxruntime runs.
set -euo pipefail
cd "$(dirname "$0")/.."
pith=${1:-.build/release/pith}

step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; "$@"; }

step "$pith" inspect Fixtures/lenet-300-100.onnx
step "$pith" inspect --sort size --top 3 Fixtures/lenet-300-100.h5
step "$pith" inspect --format csv --top 2 Fixtures/lenet-300-100.onnx
step "$pith" compress --dry-run --recipe Fixtures/recipes/deep-compression-lenet.yaml Fixtures/lenet-300-100.onnx
step "$pith" compress --dry-run --prune 0.7 --quantize int8-channel Fixtures/lenet-300-100.h5
step "$pith" compress --recipe Fixtures/recipes/deep-compression-lenet.yaml Fixtures/lenet-300-100.onnx -o "${TMPDIR:-/tmp}/lenet-dc.pith" --force
step "$pith" inspect --sort size --top 3 "${TMPDIR:-/tmp}/lenet-dc.pith"
step "$pith" restore "${TMPDIR:-/tmp}/lenet-dc.pith" -o "${TMPDIR:-/tmp}/lenet-dc.onnx" --force
step "$pith" compress Fixtures/lenet-300-100.onnx -o "${TMPDIR:-/tmp}/lenet-lossless.pith" --force
mnist=../shared/data/mnist
step "$pith" eval Fixtures/lenet-300-100.onnx --data "$mnist/t10k-images.idx3-ubyte.gz" --labels "$mnist/t10k-labels.idx1-ubyte.gz"
step "$pith" compress Fixtures/lenet-300-100.onnx --prune 0.7 --cluster 5 -o "${TMPDIR:-/tmp}/lenet-70-5.pith" --force
step "$pith" verify Fixtures/lenet-300-100.onnx "${TMPDIR:-/tmp}/lenet-70-5.pith" --data "$mnist/t10k-images.idx3-ubyte.gz" --labels "$mnist/t10k-labels.idx1-ubyte.gz" --min-agreement 0.98
step "$pith" verify --require-exact Fixtures/lenet-300-100.onnx "${TMPDIR:-/tmp}/lenet-lossless.pith"
step "$pith" restore "${TMPDIR:-/tmp}/lenet-70-5.pith" -o "${TMPDIR:-/tmp}/lenet-70-5.onnx" --force
step python3 scripts/onnxruntime_accuracy.py "${TMPDIR:-/tmp}/lenet-70-5.onnx" "$mnist"
step "$pith" compress Fixtures/lenet-300-100.onnx --factorize svd --rank 64 --only fc1.weight -o "${TMPDIR:-/tmp}/lenet-svd.pith" --force
step "$pith" restore "${TMPDIR:-/tmp}/lenet-svd.pith" -o "${TMPDIR:-/tmp}/lenet-svd.onnx" --factored --force
step "$pith" eval "${TMPDIR:-/tmp}/lenet-svd.onnx" --data "$mnist/t10k-images.idx3-ubyte.gz" --labels "$mnist/t10k-labels.idx1-ubyte.gz"
step python3 scripts/onnxruntime_accuracy.py "${TMPDIR:-/tmp}/lenet-svd.onnx" "$mnist"
