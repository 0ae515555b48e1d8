#!/usr/bin/env bash
# Regenerates Sources/CONNXProto from Schemas/onnx.proto with protoc-c.
# Needs Debian's protobuf-c-compiler (make deps installs it). The output is
# committed, so builds never need protoc-c.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v protoc-c >/dev/null || { echo "protoc-c not found: apt-get install protobuf-c-compiler" >&2; exit 1; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
protoc-c --proto_path=Schemas --c_out="$tmp" Schemas/onnx.proto
mkdir -p Sources/CONNXProto/include
mv "$tmp/onnx.pb-c.h" Sources/CONNXProto/include/onnx.pb-c.h
mv "$tmp/onnx.pb-c.c" Sources/CONNXProto/onnx.pb-c.c
echo "regenerated Sources/CONNXProto from Schemas/onnx.proto ($(protoc-c --version | head -1))"
