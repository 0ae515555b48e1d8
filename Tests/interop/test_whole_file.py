"""The container's whole-file form (format 1.5, docs/container-format.md "Whole-file form"): a lossless
compress of a small model stores the file itself as one zstd frame made with Pith's dictionary for the
format, when that is smaller than the per-tensor container. It must be smaller than `zstd -19` and
`xz -9e` of the file, restore to the very bytes, read as the source does in every command, and refuse
damage by name without writing anything."""
import glob
import os
import random
import shutil
import struct
import subprocess

import pytest

from conftest import ROOT, refused_by_every_reader, run_pith
from pith_container import crc32c

CORPUS = "/usr/share/libonnx-testdata/data"
SMALL_FIXTURES = ["onnx/subgraphs.onnx", "onnx/typed-fields.onnx", "onnx/custom-constants.onnx", "keras/plain.h5",
                  "keras/keras3-nested.h5", "keras/keras2-float16.h5"]


def others(data):
    zstd = len(subprocess.run(["zstd", "-19", "-q", "-c"], input=data, capture_output=True, check=True).stdout)
    xz = len(subprocess.run(["xz", "-9e", "-T1", "-c"], input=data, capture_output=True, check=True).stdout)
    return zstd, xz


def compress(source, out):
    result = run_pith("compress", source, "-o", out, "--force")
    assert result.returncode == 0, result.stderr
    return result.stdout, open(out, "rb").read()


@pytest.mark.skipif(shutil.which("zstd") is None or shutil.which("xz") is None, reason="SKIPPED: zstd and xz are needed")
@pytest.mark.parametrize("fixture", SMALL_FIXTURES)
def test_a_small_model_is_stored_whole_smaller_than_zstd_and_xz_and_restores_byte_for_byte(tmp_path, fixture):
    source = os.path.join(ROOT, "Fixtures", fixture)
    data = open(source, "rb").read()
    out = str(tmp_path / "m.pith")
    text, stored = compress(source, out)
    assert "stored whole:" in text
    # The layout of docs/container-format.md: magic, form byte, dictionary, CRC-32C of the source,
    # then a zstd frame without its magic number, which zstd decodes with the dictionary.
    assert stored[:8] == b"\x89PITH\r\n\x1a" and stored[8] == 0x57
    assert stored[9] == (1 if fixture.endswith(".onnx") else 2)
    assert struct.unpack_from("<I", stored, 10)[0] == crc32c(data)
    zstd, xz = others(data)
    assert len(stored) < zstd and len(stored) < xz, (len(stored), zstd, xz)
    restored = str(tmp_path / ("r" + os.path.splitext(fixture)[1]))
    result = run_pith("restore", out, "-o", restored)
    assert result.returncode == 0, result.stderr
    assert open(restored, "rb").read() == data
    # Every command reads the model it holds as it reads the source.
    check = run_pith("check", out)
    assert check.returncode == 0 and "ok" in check.stdout, check.stderr
    inspected = run_pith("inspect", out)
    assert inspected.returncode == 0 and "stored whole: the source file" in inspected.stdout, inspected.stderr
    source_tensors = run_pith("inspect", source, "--format", "json")
    stored_tensors = run_pith("inspect", out, "--format", "json")
    import json
    a, b = json.loads(source_tensors.stdout), json.loads(stored_tensors.stdout)
    assert [t["name"] for t in a["tensors"]] == [t["name"] for t in b["tensors"]]
    assert a["totals"] == b["totals"]


@pytest.mark.skipif(not os.path.isdir(CORPUS), reason="SKIPPED: the ONNX backend corpus (libonnx-testdata) is not installed")
@pytest.mark.skipif(shutil.which("zstd") is None or shutil.which("xz") is None, reason="SKIPPED: zstd and xz are needed")
def test_backend_corpus_models_are_smaller_than_zstd_and_xz_and_restore_byte_for_byte(tmp_path):
    paths = sorted(glob.glob(os.path.join(CORPUS, "*", "*", "model.onnx")))
    sample = random.Random(15).sample(paths, 40)
    losses = []
    for path in sample:
        data = open(path, "rb").read()
        out = str(tmp_path / "m.pith")
        _, stored = compress(path, out)
        zstd, xz = others(data)
        if not len(stored) < min(zstd, xz):
            losses.append((os.path.relpath(path, CORPUS), len(stored), zstd, xz))
        restored = str(tmp_path / "r.onnx")
        result = run_pith("restore", out, "-o", restored, "--force")
        assert result.returncode == 0, result.stderr
        assert open(restored, "rb").read() == data, path
    assert not losses, losses


def whole(tmp_path):
    out = str(tmp_path / "w.pith")
    compress(os.path.join(ROOT, "Fixtures", "onnx", "subgraphs.onnx"), out)
    return open(out, "rb").read()


@pytest.mark.parametrize("damage, code, words", [
    (lambda b: b[:12], 65, "too short for a whole-file container"),
    (lambda b: b[:30], 65, "does not decode"),
    (lambda b: b[:9] + b"\x09" + b[10:], 69, "dictionary 9 is not one this Pith has"),
    (lambda b: b[:11] + bytes([b[11] ^ 1]) + b[12:], 65, "CRC-32C"),
    (lambda b: b[:40] + bytes([b[40] ^ 0x20]) + b[41:], 65, "damaged"),
])
def test_a_damaged_whole_file_container_is_refused_by_name_and_nothing_is_written(tmp_path, damage, code, words):
    bad = tmp_path / "bad.pith"
    bad.write_bytes(damage(whole(tmp_path)))
    refused_by_every_reader(bad, tmp_path, code, words)


def test_a_model_changed_by_a_pass_or_past_the_size_limit_uses_the_per_tensor_form(tmp_path):
    # Pruned: the model is no longer the file, so the file cannot be stored whole.
    out = str(tmp_path / "p.pith")
    result = run_pith("compress", os.path.join(ROOT, "Fixtures", "keras", "plain.h5"), "--prune", "0.5", "--allow-empty", "-o", out)
    assert result.returncode == 0, result.stderr
    assert open(out, "rb").read()[8] == 0x01
    # LeNet (1,066,936 bytes) is past the 1 MiB the writer stores whole.
    out = str(tmp_path / "l.pith")
    text, stored = compress(os.path.join(ROOT, "Fixtures", "lenet-300-100.onnx"), out)
    assert stored[8] == 0x01 and "stored whole" not in text


def test_restore_of_a_whole_file_container_refuses_what_it_cannot_do(tmp_path):
    out = str(tmp_path / "h.pith")
    compress(os.path.join(ROOT, "Fixtures", "keras", "plain.h5"), out)
    result = run_pith("restore", out, "--compact", "-o", str(tmp_path / "x.onnx"))
    assert result.returncode in (64, 69) and "HDF5" in result.stderr, result.stderr
    result = run_pith("restore", out, "-o", str(tmp_path / "x.onnx"))
    assert result.returncode == 64 and ".h5" in result.stderr, result.stderr
    onnx_container = str(tmp_path / "o.pith")
    compress(os.path.join(ROOT, "Fixtures", "onnx", "subgraphs.onnx"), onnx_container)
    result = run_pith("restore", onnx_container, "--external-data", "weights.bin", "-o", str(tmp_path / "y.onnx"))
    assert result.returncode == 69 and "whole" in result.stderr, result.stderr
    assert not list(tmp_path.glob("x.*")) and not list(tmp_path.glob("y.*"))


def test_a_transposed_tensor_restores_byte_for_byte_and_inspect_names_it(tmp_path):
    source = os.path.join(ROOT, "Fixtures", "onnx", "stft-frontend.onnx")
    out = str(tmp_path / "s.pith")
    compress(source, out)
    assert "transposed float32 (zstd)" in run_pith("inspect", out).stdout
    zstd, xz = others(open(source, "rb").read())
    assert os.path.getsize(out) < min(zstd, xz)
    restored = str(tmp_path / "s.onnx")
    assert run_pith("restore", out, "-o", restored).returncode == 0
    assert open(restored, "rb").read() == open(source, "rb").read()


def test_a_file_pith_cannot_write_back_exactly_is_stored_whole_without_the_note_that_says_so(tmp_path):
    import h5py
    import numpy as np
    source = str(tmp_path / "named.h5")
    with h5py.File(source, "w") as f:
        f["dense/kernel"] = np.arange(12, dtype=np.float32).reshape(3, 4)
        f["float_type"] = np.dtype("<f4")  # a named datatype: the HDF5 skeleton cannot hold it
    per_tensor = run_pith("compress", source, "-o", str(tmp_path / "p.pith"), "--per-tensor")
    assert per_tensor.returncode == 0, per_tensor.stderr
    assert "restore will write the Keras weights and attributes Pith knows" in per_tensor.stdout + per_tensor.stderr
    out = str(tmp_path / "w.pith")
    text, _ = compress(source, out)
    assert "stored whole:" in text and "restore will write" not in text
    restored = str(tmp_path / "r.h5")
    assert run_pith("restore", out, "-o", restored).returncode == 0
    assert open(restored, "rb").read() == open(source, "rb").read()
