"""Containers written by `pith compress -o` follow docs/container-format.md: the manifest validates
against Schemas/container-manifest.schema.json, header checksums hold, and lossless containers are
smaller than `zstd -19` of the model file."""
import json
import re
import os
import shutil
import struct
import subprocess

import jsonschema
import pytest

from conftest import ROOT, run_pith
from pith_container import FRAME_MAGIC, Container, inflate, manifest_dictionary

SCHEMA = json.load(open(os.path.join(ROOT, "Schemas", "container-manifest.schema.json")))
LENET = os.path.join(ROOT, "Fixtures", "lenet-300-100.onnx")


def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
    return crc ^ 0xFFFFFFFF


def write(tmp_path, *flags, source=LENET):
    out = str(tmp_path / "model.pith")
    result = run_pith("compress", *flags, source, "-o", out, "--force")
    assert result.returncode == 0, result.stderr
    return open(out, "rb").read()


@pytest.mark.skipif(shutil.which("zstd") is None, reason="SKIPPED: the zstd command is needed to read the manifest")
@pytest.mark.parametrize("flags", [[], ["--prune", "0.92", "--cluster", "6", "--index-bits", "5"], ["--quantize", "int8-channel"], ["--quantize", "fp16"],
                                   ["--factorize", "svd", "--rank", "16"], ["--factorize", "tt", "--tt-rank", "4"]])
def test_header_and_manifest_follow_the_spec(pith, tmp_path, flags):
    data = write(tmp_path, *flags)
    assert data[:8] == b"\x89PITH\r\n\x1a"
    major, minor, flag_bits, offset, length, manifest_crc, header_crc = struct.unpack("<HHIQQII", data[8:40])
    # The version the specification states ("Version 1.6 (this document is normative …"); flags 0 and 1:
    # the manifest is a zstd frame made with `manifest-1`, stored without its magic number (1.6).
    spec = re.search(r"^Version (\d+)\.(\d+) ", open(os.path.join(ROOT, "docs", "container-format.md")).read(), re.M)
    assert (major, minor, flag_bits & 3) == (int(spec[1]), int(spec[2]), 3) and flag_bits & ~15 == 0
    assert header_crc == crc32c(data[:36])
    manifest_bytes = data[offset:offset + length]
    assert offset + length == len(data)
    assert manifest_crc == crc32c(manifest_bytes)
    text = inflate(FRAME_MAGIC + manifest_bytes, manifest_dictionary())
    if flag_bits & 8:  # the skeleton after the JSON
        text = text[:text.index(b"\0")]
    manifest = json.loads(text)
    jsonschema.validate(manifest, SCHEMA, cls=jsonschema.Draft202012Validator)
    if flag_bits & 4:
        # Packed (1.6): no offsets; the streams follow each other from byte 64 up to the manifest.
        assert all("offset" not in s for s in manifest["streams"])
        position = 64
        for s in manifest["streams"]:
            s["offset"], position = position, position + s["length"]
        assert position == offset
    else:
        # Raw streams and the manifest on 64-byte boundaries; coded ones packed (format 1.4).
        assert offset % 64 == 0
        assert all(s["offset"] % 64 == 0 for s in manifest["streams"] if s["coding"] == "raw")
    spans = sorted((s["offset"], s["offset"] + s["length"]) for s in manifest["streams"])
    assert all(a_end <= b_start for (_, a_end), (b_start, _) in zip(spans, spans[1:]))
    for s in manifest["streams"]:
        assert f"{crc32c(data[s['offset']:s['offset'] + s['length']]):08x}" == s["crc32c"]


@pytest.mark.skipif(shutil.which("zstd") is None, reason="SKIPPED: zstd is not installed")
def test_lossless_container_is_smaller_than_zstd_19(pith, tmp_path):
    data = write(tmp_path)
    zstd = subprocess.run(["zstd", "-19", "-q", "-c", LENET], capture_output=True, check=True).stdout
    assert len(data) < len(zstd), (len(data), len(zstd))


def test_inspect_of_a_container_adds_up_to_the_file(pith, tmp_path):
    data = write(tmp_path, "--prune", "0.92", "--cluster", "6", "--index-bits", "5")
    result = run_pith("inspect", "--format", "json", str(tmp_path / "model.pith"))
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    jsonschema.validate(report, json.load(open(os.path.join(ROOT, "Schemas", "inspect-report.schema.json"))), cls=jsonschema.Draft202012Validator)
    container = report["container"]
    assert container["file_bytes"] == len(data)
    assert sum(r["bytes"] for r in container["rows"]) + container["overhead_bytes"] == len(data)
    weights = {r["tensor"]: r for r in container["rows"] if r["tensor"].endswith("weight")}
    assert all(r["encoding"] == "csr(5) + codebook(6)" and r["weight_bits_before"] == 6 for r in weights.values())
    assert all(r["weight_bits_after"] < 6 for r in weights.values())  # Huffman gains on the indices


def rewrite_manifest(data, change, folder):
    """The container `data` with its manifest changed by `change` (a function of the parsed manifest),
    written back as plain JSON (`pith_container`) with its header and checksums made valid again: a
    hostile container that passes every CRC."""
    path = os.path.join(folder, "original.pith")
    with open(path, "wb") as f:
        f.write(data)
    container = Container.read(path)
    change(container.manifest)
    return container.encoded()


@pytest.mark.skipif(shutil.which("zstd") is None, reason="SKIPPED: the zstd command is needed to rewrite the manifest")
@pytest.mark.parametrize("lie", ["swapped", "transposed", "retyped"])
def test_restore_refuses_a_manifest_that_disagrees_with_its_skeleton(pith, tmp_path, lie):
    """Restore pairs the manifest's tensors with the skeleton's slots in order: a container whose
    manifest lists two tensors swapped, or declares another shape of the same size, or another type of
    the same width, is refused (exit 65, the tensor named) and nothing is written — for the dense
    restore and for `eval` of the container."""
    data = write(tmp_path, "--quantize", "fp16")

    def change(manifest):
        tensors = manifest["tensors"]
        if lie == "swapped":
            tensors[0], tensors[2] = tensors[2], tensors[0]
        elif lie == "transposed":
            tensors[0]["shape"] = list(reversed(tensors[0]["shape"]))
        else:
            tensors[1]["dtype"] = "int32"
            tensors[1]["encoding"] = {"kind": "raw", "streams": tensors[1]["encoding"]["streams"]} if tensors[1]["encoding"]["kind"] == "raw" else tensors[1]["encoding"]
    hostile = tmp_path / "hostile.pith"
    hostile.write_bytes(rewrite_manifest(data, change, tmp_path))
    restored = tmp_path / "restored.onnx"
    result = run_pith("restore", str(hostile), "-o", str(restored))
    assert result.returncode == 65, (result.returncode, result.stderr)
    expected = {"swapped": "the container's manifest and its ONNX skeleton disagree",
                "transposed": "tensor `fc1.weight`: the container holds float32 [784, 300] but its ONNX skeleton declares float32 [300, 784]",
                "retyped": "tensor `fc1.bias`: the container holds int32"}[lie]
    assert expected in result.stderr, result.stderr
    assert not restored.exists()
    checked = run_pith("check", str(hostile))
    # check decodes every stream first, so a retyped tensor may be refused by its decoder instead.
    assert checked.returncode == 65 and (expected in checked.stderr or "tensor `fc1.bias`" in checked.stderr), checked.stderr
    if lie == "swapped":
        evaluated = run_pith("eval", str(hostile), "--data", os.path.join(ROOT, "Fixtures", "lenet-300-100.onnx"))
        assert evaluated.returncode == 65 and "disagree" in evaluated.stderr, evaluated.stderr


@pytest.mark.parametrize("flags", [[], ["--prune", "0.8", "--cluster", "4"], ["--quantize", "int8-channel"], ["--factorize", "svd", "--rank", "16"]])
def test_check_passes_whole_containers_and_names_the_damaged_stream(pith, tmp_path, flags):
    """`pith check` decodes every stream without writing: exit 0 on a container just written; a flipped
    bit in any stream's bytes is exit 65 naming the tensor and stream; nothing is created."""
    data = write(tmp_path, *flags)
    container = tmp_path / "model.pith"
    ok = run_pith("check", str(container))
    assert ok.returncode == 0 and "every checksum holds and every stream decodes" in ok.stdout, ok.stderr
    _, _, _, offset, _, _, _ = struct.unpack("<HHIQQII", data[8:40])
    damaged = tmp_path / "damaged.pith"
    before = sorted(os.listdir(tmp_path))
    for position in range(64, offset, max(1, (offset - 64) // 7)):
        flipped = bytearray(data)
        flipped[position] ^= 0x04
        damaged.write_bytes(bytes(flipped))
        result = run_pith("check", str(damaged))
        assert result.returncode == 65, (position, result.returncode, result.stdout, result.stderr)
        assert "the file is damaged" in result.stderr, result.stderr
    damaged.unlink()
    assert sorted(os.listdir(tmp_path)) == before


def test_check_refuses_a_model_file_and_writes_nothing(pith, tmp_path):
    result = run_pith("check", LENET)
    assert result.returncode == 65 and "not a .pith container: it looks like an ONNX model" in result.stderr, result.stderr


@pytest.mark.skipif(shutil.which("zstd") is None, reason="SKIPPED: the zstd command is needed to read the manifest")
def test_a_tensor_whose_rows_drift_is_stored_in_blocks(pith, tmp_path):
    """Format 1.6's `blocks`: a 4 MiB MatMul weight whose rows each have their own scale (as an OCR
    classifier's output layer has) is stored a block of rows at a time, each block with its own tables;
    the manifest validates, inspect names the encoding, check decodes every stream, restore gives the
    source back byte for byte, and onnxruntime runs it with the same outputs. (That blocks store it in
    fewer bytes than one encoding of the whole tensor is checked in BlockEncodingTests.)"""
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper, TensorProto
    rng = np.random.default_rng(5)
    rows = 256
    scales = np.logspace(-4, 1, rows, dtype=np.float32)[:, None]
    weight = (rng.standard_normal((rows, 4096)).astype(np.float32) * scales)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])], "drift",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, rows])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4096])],
        [numpy_helper.from_array(weight, "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    source = str(tmp_path / "drift.onnx")
    onnx.save(model, source)
    data = write(tmp_path, source=source)
    flag_bits, offset, length = struct.unpack("<IQQ", data[12:32])
    text = inflate(FRAME_MAGIC + data[offset:offset + length], manifest_dictionary())
    manifest = json.loads(text[:text.index(b"\0")] if flag_bits & 8 else text)
    jsonschema.validate(manifest, SCHEMA, cls=jsonschema.Draft202012Validator)
    encoding = manifest["tensors"][0]["encoding"]
    assert encoding["kind"] == "blocks" and encoding["block_rows"] == 4 and len(encoding["blocks"]) == rows // 4
    # Every block's streams hold that block's symbols only.
    for block in encoding["blocks"]:
        symbols = 4 * 4096 * (4 if block["kind"] == "dense" else 1)
        assert all(manifest["streams"][s]["symbols"] == symbols for s in block["streams"])
    container = str(tmp_path / "model.pith")
    inspected = run_pith("inspect", container)
    assert inspected.returncode == 0, inspected.stderr
    assert re.search(r"blocks float32 \(64 blocks of 4 rows, float-split", inspected.stdout), inspected.stdout
    checked = run_pith("check", container)
    assert checked.returncode == 0, checked.stderr
    restored = str(tmp_path / "back.onnx")
    result = run_pith("restore", container, "-o", restored)
    assert result.returncode == 0, result.stderr
    assert open(restored, "rb").read() == open(source, "rb").read()
    import onnxruntime
    x = rng.standard_normal((1, rows)).astype(np.float32)
    expected = onnxruntime.InferenceSession(source).run(None, {"x": x})[0]
    assert np.array_equal(onnxruntime.InferenceSession(restored).run(None, {"x": x})[0], expected)


def test_check_passes_a_container_of_string_tensors(pith, tmp_path):
    """A string tensor has no dense bytes: `pith check` decodes it whole instead of refusing the
    container (it exited 69, "strings have no dense bytes")."""
    data = write(tmp_path, "--per-tensor", source=os.path.join(ROOT, "Fixtures", "onnx", "dtypes-raw.onnx"))
    assert data[8] != 0x57, "the per-tensor form"
    checked = run_pith("check", str(tmp_path / "model.pith"))
    assert checked.returncode == 0 and "every checksum holds and every stream decodes" in checked.stdout, checked.stderr
