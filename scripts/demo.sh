#!/usr/bin/env bash
# The README's demo: the bundled LeNet-300-100 (trained on MNIST) through everything Pith does —
# inspect the model, compress it losslessly and with the Deep Compression recipe, test and restore
# the containers, evaluate on the MNIST test set, verify a compressed model against the original,
# compress with calibration data (GPTQ, OBS, bias correction) and under an accuracy budget
# (`--auto`), export a compact ONNX that onnxruntime runs, dump tensors for numpy — each step
# announced in a sentence, and a summary table at the end.
#
# The MNIST steps need ../shared/data/mnist beside the checkout; without it they are skipped, and
# the demo says so.
set -euo pipefail
cd "$(dirname "$0")/.."
pith=${1:-.build/release/pith}
out=${TMPDIR:-/tmp}/pith-demo
mkdir -p "$out"
model=Fixtures/lenet-300-100.onnx
mnist=../shared/data/mnist
images=$mnist/t10k-images.idx3-ubyte.gz
labels=$mnist/t10k-labels.idx1-ubyte.gz
have_mnist=0
[ -f "$images" ] && [ -f "$labels" ] && [ -f "$mnist/train-images.idx3-ubyte.gz" ] && have_mnist=1

say() { printf '\n\033[1m%s\033[0m\n' "$*"; }
run() { printf '\033[2m$ %s\033[0m\n' "$*"; "$@"; }
rows=()
# The test accuracy of the model FILE is or restores to, as `pith eval` computes it.
accuracy_of() {
    "$pith" eval "$1" --data "$images" --labels "$labels" --format json --quiet |
        python3 -c 'import json, sys; print("%.2f%%" % (100 * json.load(sys.stdin)["accuracy"]))'
}
# row LABEL FILE: the file's size, its ratio to the ONNX model, and (with MNIST) the test accuracy
# of the model it restores to, as `pith eval` computes it.
row() {
    local bytes accuracy="-"
    bytes=$(stat -c %s "$2")
    [ "$have_mnist" = 1 ] && accuracy=$(accuracy_of "$2")
    rows+=("$(printf '%-44s %10s %8s %9s' "$1" "$bytes" "$(python3 -c "print('%.1fx' % ($(stat -c %s "$model") / $bytes))")" "$accuracy")")
}

say "1. What is in the model: its inputs and outputs, operators, and where the bytes are."
run "$pith" inspect "$model"

say "2. Lossless compression: every tensor Huffman-coded by byte planes; the container restores bit for bit."
run "$pith" compress "$model" -o "$out/lossless.pith" --force
run "$pith" verify --require-exact "$model" "$out/lossless.pith"
row "lossless container" "$out/lossless.pith"

say "3. The Deep Compression recipe (Han et al.): pruning, k-means weight sharing, CSR and Huffman coding."
run "$pith" compress --recipe Fixtures/recipes/deep-compression-lenet.yaml "$model" -o "$out/deep-compression.pith" --force
run "$pith" inspect "$out/deep-compression.pith"
row "Deep Compression recipe (no retraining)" "$out/deep-compression.pith"

say "4. A container can be tested without writing anything, and restored to an ONNX model any runtime reads."
run "$pith" check "$out/deep-compression.pith"
run "$pith" restore "$out/deep-compression.pith" -o "$out/deep-compression.onnx" --force

say "5. Pruning 70% and 5-bit weight sharing, without data."
run "$pith" compress "$model" --prune 0.7 --cluster 5 -o "$out/prune70-k5.pith" --force
row "prune 70% + 5-bit k-means" "$out/prune70-k5.pith"

if [ "$have_mnist" = 1 ]; then
    say "6. The original model on the 10,000 MNIST test images, with the reference evaluator."
    run "$pith" eval "$model" --data "$images" --labels "$labels"

    say "7. Does the compressed model still do its job? Per-output agreement, SNR and accuracy, with a gate."
    run "$pith" verify "$model" "$out/prune70-k5.pith" --data "$images" --labels "$labels" --min-agreement 0.98

    say "8. With calibration data (1,000 unlabeled training images): OBS pruning, GPTQ rounding, bias correction."
    run "$pith" compress "$model" --prune 0.8 --obs --prune-mask saliency --cluster 3 --gptq --bias-correction \
        --calibration "$mnist/train-images.idx3-ubyte.gz" --calibration-samples 1000 -o "$out/data-aware.pith" --force
    row "prune 80% + 3-bit k-means, data-aware" "$out/data-aware.pith"

    say "9. The smallest model within an accuracy budget: a setting per layer, searched with --auto."
    run "$pith" compress "$model" --auto --max-accuracy-drop 0.3 --calibration "$mnist/train-images.idx3-ubyte.gz" \
        --data "$images" --labels "$labels" -o "$out/auto.pith" --force
    row "--auto, at most 0.3 points lost" "$out/auto.pith"

    say "10. The restored model in onnxruntime gives the same accuracy."
    run "$pith" restore "$out/prune70-k5.pith" -o "$out/prune70-k5.onnx" --force
    run python3 scripts/onnxruntime_accuracy.py "$out/prune70-k5.onnx" "$mnist"
else
    say "Steps 6-10 (evaluation, verification, data-aware compression, --auto) need MNIST in $mnist: skipped."
fi

say "11. A compact ONNX: 4-bit codes decoded by the graph itself, a file onnxruntime runs as it is."
run "$pith" compress "$model" --quantize int4-channel -o "$out/int4.pith" --export "$out/int4-compact.onnx" --force
row "int4 per channel, compact ONNX" "$out/int4-compact.onnx"

say "12. Every tensor for numpy or PyTorch, as stored: codebook and indices of the k-means weights."
run "$pith" dump "$out/prune70-k5.pith" --stored -o "$out/prune70-k5-stored.npz" --force
run "$pith" dump "$model" --tensor fc3.weight

say "Summary: LeNet-300-100, $(stat -c %s "$model") bytes as ONNX$([ "$have_mnist" = 1 ] && echo ", test accuracy as Pith's evaluator measures it").  Files in $out."
printf '%-44s %10s %8s %9s\n' "model" "bytes" "ratio" "accuracy"
printf '%-44s %10s %8s %9s\n' "ONNX (fp32)" "$(stat -c %s "$model")" "1.0x" "$([ "$have_mnist" = 1 ] && accuracy_of "$model" || echo -)"
for r in "${rows[@]}"; do echo "$r"; done
