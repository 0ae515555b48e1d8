#!/usr/bin/env bash
# Installs what Pith needs and is missing: Debian packages (C libraries, the ONNX
# test corpus, chromium for the browser test of `pith report`) and the Python packages
# the interop tests and fixture scripts use.
# Safe to run repeatedly: it only installs what is not there.
#
#   scripts/install-deps.sh          build + test dependencies
#   scripts/install-deps.sh --build  only what building needs
set -euo pipefail

debian_build=(libhdf5-dev libprotobuf-c-dev libopenblas-dev liblapacke-dev libzstd-dev zlib1g-dev pkg-config)
debian_test=(libonnx-testdata zstd xz-utils chromium)
# module[:pip name] when the two differ.
python_test=(numpy onnx onnxruntime h5py ml_dtypes jsonschema pytest PIL:pillow safetensors)

mode=${1:-all}
packages=("${debian_build[@]}")
[ "$mode" = "--build" ] || packages+=("${debian_test[@]}")

missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "installing Debian packages: ${missing[*]}"
    sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

[ "$mode" = "--build" ] && exit 0

py_missing=()
for p in "${python_test[@]}"; do
    python3 -c "import ${p%%:*}" 2>/dev/null || py_missing+=("${p##*:}")
done
if [ ${#py_missing[@]} -gt 0 ]; then
    echo "installing Python packages: ${py_missing[*]}"
    python3 -m pip install -q --disable-pip-version-check "${py_missing[@]}"
fi
