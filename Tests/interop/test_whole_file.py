"""The container's whole-file form (format 1.5, docs/container-format.md "Whole-file form"): a lossless
compress of a small model stores the file itself as one zstd frame made with Pith's dictionary for the
format, when that is smaller than the per-tensor container. It must be smaller than `zstd -19` and
`xz -9e` of the file, restore to the very bytes, read as the source does in every command, and refuse
damage by name without writing anything. For ONNX the frame may hold the model's skeleton and then its
tensors' data (dictionary 3, `onnx-skeleton-1`, format 1.6), from which the reader packs the file again."""
import glob
import os
import random
import shutil
import struct
import subprocess

import pytest

from conftest import ROOT, refused_by_every_reader, run_pith
from pith_container import crc32c, onnx_dictionary

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
    assert stored[9] in ((1, 3) if fixture.endswith(".onnx") else (2,))
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


def onnx1_dictionary(tmp_path):
    """`onnx-1` (and `onnx-skeleton-1`) written to a file for `zstd -D`."""
    path = tmp_path / "onnx-1.dict"
    path.write_bytes(onnx_dictionary())
    return str(path)


def frame_content(stored, dictionary):
    """The content of a whole-file container's frame: its magic number put back, decoded by zstd."""
    return subprocess.run(["zstd", "-d", "-q", "-c", "-D", dictionary], input=b"\x28\xb5\x2f\xfd" + stored[14:],
                          capture_output=True, check=True).stdout


def with_frame(stored, content, dictionary, tmp_path):
    """`stored` with its frame replaced by one of `content` (made by zstd with the dictionary, its magic number dropped)."""
    path = tmp_path / "content.bin"
    path.write_bytes(content)
    frame = subprocess.run(["zstd", "-19", "-q", "-c", "--no-check", "--no-dictID", "-D", dictionary, str(path)],
                           capture_output=True, check=True).stdout
    assert frame[:4] == b"\x28\xb5\x2f\xfd"
    return stored[:14] + frame[4:]


def varint(data, at=0):
    value, shift = 0, 0
    while True:
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, at


def encode_varint(value):
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


@pytest.mark.skipif(shutil.which("zstd") is None or shutil.which("xz") is None, reason="SKIPPED: zstd and xz are needed")
def test_dtypes_raw_is_stored_as_its_skeleton_and_data_smaller_than_xz_and_restores_byte_for_byte(tmp_path):
    source = os.path.join(ROOT, "Fixtures", "onnx", "dtypes-raw.onnx")
    data = open(source, "rb").read()
    out = str(tmp_path / "d.pith")
    text, stored = compress(source, out)
    assert "stored whole:" in text and "its ONNX skeleton followed by its tensors' data" in text
    assert stored[8] == 0x57 and stored[9] == 3
    assert struct.unpack_from("<I", stored, 10)[0] == crc32c(data)
    zstd, xz = others(data)
    assert len(stored) < min(zstd, xz, 1576), (len(stored), zstd, xz)
    # The frame holds a varint, the skeleton (a ModelProto that onnx parses, without the data), then
    # the data of the 30 slots: less than the file.
    content = frame_content(stored, onnx1_dictionary(tmp_path))
    length, at = varint(content)
    import onnx
    skeleton = onnx.ModelProto()
    skeleton.ParseFromString(content[at:at + length])
    assert len(skeleton.graph.initializer) == 30
    assert all(len(t.raw_data) <= 1 for t in skeleton.graph.initializer)
    assert len(content) < len(data)
    restored = str(tmp_path / "r.onnx")
    result = run_pith("restore", out, "-o", restored)
    assert result.returncode == 0, result.stderr
    assert open(restored, "rb").read() == data
    check = run_pith("check", out)
    assert check.returncode == 0 and "ok" in check.stdout, check.stderr
    for command in (["inspect", out], ["inspect", out, "--format", "json"]):
        result = run_pith(*command)
        assert result.returncode == 0, (command, result.stderr)


@pytest.mark.parametrize("fixture", ["onnx/constants-sparse.onnx", "onnx/subgraphs.onnx", "onnx/custom-constants.onnx",
                                     "onnx/typed-fields.onnx", "onnx/unpacked-fields.onnx"])
def test_constants_sparse_tensors_strings_and_subgraphs_restore_byte_for_byte_in_whichever_form(tmp_path, fixture):
    source = os.path.join(ROOT, "Fixtures", fixture)
    data = open(source, "rb").read()
    out = str(tmp_path / "m.pith")
    _, stored = compress(source, out)
    assert stored[8] == 0x01 or stored[9] in (1, 3)
    restored = str(tmp_path / "r.onnx")
    result = run_pith("restore", out, "-o", restored)
    assert result.returncode == 0, result.stderr
    assert open(restored, "rb").read() == data
    assert run_pith("check", out).returncode == 0


def skeleton_container(tmp_path):
    out = str(tmp_path / "d.pith")
    _, stored = compress(os.path.join(ROOT, "Fixtures", "onnx", "dtypes-raw.onnx"), out)
    assert stored[9] == 3
    dictionary = onnx1_dictionary(tmp_path)
    return stored, frame_content(stored, dictionary), dictionary


def skeleton_past_the_frame(content):
    length, at = varint(content)
    return encode_varint(len(content)) + content[at:]


@pytest.mark.skipif(shutil.which("zstd") is None, reason="SKIPPED: zstd is needed")
@pytest.mark.parametrize("damage, words", [
    (skeleton_past_the_frame, "the skeleton's length"),
    (lambda c: c[:-5], "slot "),
    (lambda c: c + b"\x00\x00\x00", "follow the data of the last of the 30 slots"),
    (lambda c: c[:1], "cut short"),
    (lambda c: c[:-1] + bytes([c[-1] ^ 0x01]), "CRC-32C"),
])
def test_a_damaged_skeleton_frame_is_refused_by_name_and_nothing_is_written(tmp_path, damage, words):
    stored, content, dictionary = skeleton_container(tmp_path)
    # The frame itself is re-made by zstd, so the damage is in what it holds: the reader gets past
    # the frame and must refuse the content.
    assert frame_content(with_frame(stored, content, dictionary, tmp_path), dictionary) == content
    bad = tmp_path / "bad.pith"
    bad.write_bytes(with_frame(stored, damage(content), dictionary, tmp_path))
    refused_by_every_reader(bad, tmp_path, 65, words)
