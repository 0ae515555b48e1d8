"""Format 1.6's small containers (docs/container-format.md, "Manifest frame" and "Packed streams"): the
manifest's frame made with `manifest-1` and stored without its magic number (header flag bit 1), streams
packed without alignment or offsets (bit 2), the skeleton after the manifest's JSON (bit 3). Read here
independently of Pith (`pith_container`, which takes `manifest-1` from Pith's source and inflates with the
`zstd` tool); the models that lost to `zstd -19`, `xz -9e` or ZipNN because of the container's fixed cost
now win, restore byte for byte, and damage is refused by name."""
import os
import shutil
import struct
import subprocess
import tempfile

import pytest

from conftest import ROOT, refused_by_every_reader, run_pith
from pith_container import Container, crc32c, FRAME_MAGIC, manifest_dictionary, inflate

CONV = "/usr/share/libonnx-testdata/data/pytorch-operator/test_operator_conv/model.onnx"
EXTERNAL = os.path.join(ROOT, "Fixtures", "onnx", "external-data.onnx")


def others(data):
    zstd = len(subprocess.run(["zstd", "-19", "-q", "-c"], input=data, capture_output=True, check=True).stdout)
    xz = len(subprocess.run(["xz", "-9e", "-T1", "-c"], input=data, capture_output=True, check=True).stdout)
    try:
        import zipnn
    except ImportError:
        return [zstd, xz]
    padded = data + b"\0" * (-len(data) % 4)
    return [zstd, xz, len(zipnn.ZipNN(input_format="byte", bytearray_dtype="float32").compress(padded))]


def source_bytes(path):
    data = open(path, "rb").read()
    for name in ("external-data.bin", "external-data-2.bin") if path == EXTERNAL else ():
        data += open(os.path.join(os.path.dirname(path), name), "rb").read()
    return data


def compress(source, out, *flags):
    result = run_pith("compress", source, "-o", out, "--force", *flags)
    assert result.returncode == 0, result.stderr
    return open(out, "rb").read()


@pytest.mark.skipif(shutil.which("zstd") is None or shutil.which("xz") is None, reason="SKIPPED: zstd and xz are needed")
@pytest.mark.parametrize("source", [EXTERNAL, CONV], ids=["external-data", "test_operator_conv"])
def test_a_small_model_wins_in_the_packed_form_and_restores_byte_for_byte(tmp_path, source):
    if not os.path.exists(source):
        pytest.skip("SKIPPED: the ONNX backend corpus (libonnx-testdata) is not installed")
    out = str(tmp_path / "m.pith")
    stored = compress(source, out)
    major, minor, flags, offset, length = struct.unpack_from("<HHIQQ", stored, 8)
    assert (major, minor, flags) == (1, 6, 1 | 2 | 4 | 8)
    assert len(stored) < min(others(source_bytes(source))), (len(stored), others(source_bytes(source)))
    # Read without Pith: the streams tile bytes 64 .. the manifest, every checksum holds, the
    # skeleton follows the JSON, which has no offsets.
    container = Container.read(out)
    ends = [64] + [s["offset"] + s["length"] for s in container.manifest["streams"]]
    assert ends[-1] == offset and offset + length == len(stored)
    for index, s in enumerate(container.manifest["streams"]):
        assert s["offset"] == ends[index]
        assert "%08x" % crc32c(container.stream_bytes(index)) == s["crc32c"]
    assert "skeleton" not in container.manifest["source"] and container.skeleton
    text = inflate(FRAME_MAGIC + stored[offset:], manifest_dictionary())
    assert b'"offset"' not in text[:text.index(b"\0")]
    # Restore gives the source back, external data files too.
    restored = str(tmp_path / "r" / "model.onnx")
    os.makedirs(os.path.dirname(restored))
    result = run_pith("restore", out, "-o", restored)
    assert result.returncode == 0, result.stderr
    assert open(restored, "rb").read() == open(source, "rb").read()
    if source == EXTERNAL:
        for name in ("external-data.bin", "external-data-2.bin"):
            assert open(os.path.join(os.path.dirname(restored), name), "rb").read() == \
                open(os.path.join(os.path.dirname(EXTERNAL), name), "rb").read()
    # The same container with a plain-JSON manifest (flag bits 0, 1 cleared) reads the same.
    plain = tmp_path / "plain.pith"
    plain.write_bytes(container.encoded())
    check = run_pith("check", str(plain))
    assert check.returncode == 0 and "ok" in check.stdout, check.stderr


def small(tmp_path):
    out = str(tmp_path / "s.pith")
    return compress(EXTERNAL, out)


def with_manifest(data, stored, flags=None):
    """`data` with its stored manifest replaced by `stored` (and flags), every header field made to match."""
    major, minor, old_flags, offset = struct.unpack_from("<HHIQ", data, 8)
    head = b"\x89PITH\r\n\x1a" + struct.pack("<HHIQQI", major, minor, old_flags if flags is None else flags, offset, len(stored), crc32c(stored))
    head += struct.pack("<I", crc32c(head))
    return head + b"\0" * 24 + data[64:offset] + stored


def frame(content):
    """`content` as a stored manifest: a zstd frame made with `manifest-1`, without its magic number."""
    with tempfile.NamedTemporaryFile(suffix=".dict") as f, tempfile.NamedTemporaryFile(suffix=".json") as text:
        f.write(manifest_dictionary())
        f.flush()
        text.write(content)  # from a file, so that the frame declares its size
        text.flush()
        made = subprocess.run(["zstd", "-19", "-q", "-c", "--no-check", "-D", f.name, text.name], capture_output=True, check=True).stdout
    assert made.startswith(FRAME_MAGIC)
    return made[4:]


@pytest.mark.skipif(shutil.which("zstd") is None, reason="SKIPPED: zstd is needed")
@pytest.mark.parametrize("damage, code, words", [
    # A damaged frame under a valid CRC.
    (lambda d, m: with_manifest(d, m[:20] + bytes([m[20] ^ 0x5A]) + m[21:]), 65, "made with the `manifest-1` dictionary"),
    # A flag no Pith defines yet: a newer format.
    (lambda d, m: with_manifest(d, m, flags=1 | 2 | 4 | 8 | 16), 69, "upgrade Pith"),
    # The frame as a plain zstd frame (no dictionary flag): without its magic number it is none.
    (lambda d, m: with_manifest(d, m, flags=1 | 4 | 8), 65, "not a zstd frame"),
    # A packed container whose manifest gives an offset.
    (lambda d, m: with_manifest(d, frame(inflate(FRAME_MAGIC + m, manifest_dictionary()).replace(b'"length"', b'"offset":64,"length"', 1))),
     65, "gives an `offset`"),
    # The skeleton flag without a skeleton after the JSON.
    (lambda d, m: with_manifest(d, frame(inflate(FRAME_MAGIC + m, manifest_dictionary()).split(b"\0")[0])), 65, "and the manifest has none"),
])
def test_a_damaged_small_container_is_refused_by_name_and_nothing_is_written(tmp_path, damage, code, words):
    data = small(tmp_path)
    offset = struct.unpack_from("<Q", data, 16)[0]
    bad = tmp_path / "bad.pith"
    bad.write_bytes(damage(data, data[offset:]))
    refused_by_every_reader(bad, tmp_path, code, words)


def test_a_model_past_the_packing_limit_keeps_its_alignment(tmp_path):
    # LeNet-300-100 (1 MB of weights): raw streams and the manifest on 64-byte boundaries, with offsets.
    out = str(tmp_path / "l.pith")
    stored = compress(os.path.join(ROOT, "Fixtures", "lenet-300-100.onnx"), out)
    flags, offset = struct.unpack_from("<IQ", stored, 12)
    assert flags & 4 == 0 and offset % 64 == 0 and flags & 2
    container = Container.read(out)
    assert all(s["offset"] % 64 == 0 for s in container.manifest["streams"] if s["coding"] == "raw")
