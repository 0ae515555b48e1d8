"""Containers written by `pith compress -o` follow docs/container-format.md: the manifest validates
against Schemas/container-manifest.schema.json, header checksums hold, and lossless containers are
smaller than `zstd -19` of the model file."""
import json
import os
import shutil
import struct
import subprocess

import jsonschema
import pytest

from conftest import ROOT, run_pith

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
    assert (major, minor, flag_bits) == (1, 2, 1)  # flag 1: the manifest is a zstd frame
    assert header_crc == crc32c(data[:36])
    manifest_bytes = data[offset:offset + length]
    assert offset % 64 == 0 and offset + length == len(data)
    assert manifest_crc == crc32c(manifest_bytes)
    manifest = json.loads(subprocess.run(["zstd", "-d", "-c"], input=manifest_bytes, capture_output=True, check=True).stdout)
    jsonschema.validate(manifest, SCHEMA, cls=jsonschema.Draft202012Validator)
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
