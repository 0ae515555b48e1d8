"""Reading and rewriting `.pith` containers byte by byte, independently of Pith (docs/container-format.md).

Used by make_broken_containers.py (hostile containers whose checksums are all valid) and by
scripts/fuzz_corpus.py (seed containers with a plain-JSON manifest, which a fuzzer can mutate).
A zstd manifest (header flag bit 0) is inflated with the `zstd` command-line tool; one made with
`manifest-1` (flag bit 1, format 1.6) with that dictionary, whose parts this module reads from Pith's
source (`manifest_dictionary`). Format 1.6's packed streams (flag bit 2) are given their offsets, and a
skeleton that follows the manifest's JSON (flag bit 3) is kept in `skeleton`.
"""
import base64
import json
import os
import re
import struct
import subprocess
import tempfile

MAGIC = b"\x89PITH\r\n\x1a"
HEADER_BYTES = 64
ALIGNMENT = 64
FRAME_MAGIC = b"\x28\xb5\x2f\xfd"
MANIFEST_ZSTD, MANIFEST_DICTIONARY, PACKED, SKELETON_IN_MANIFEST = 1, 2, 4, 8
DICTIONARIES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "Sources", "PithContainer", "Internals",
                            "WholeFileDictionaries.swift")


def _base64_literal(source, opening):
    start = source.index(opening) + len(opening)
    text = source[start:source.index('"""', start)]
    return base64.b64decode(re.sub(r"[\s\\]", "", text))


# `onnx-1`'s case in the generated source, which also gives dictionary 3 (`onnx-skeleton-1`) its bytes.
ONNX_CASE = 'case .onnx1, .onnxSkeleton1:\n            return """'


def onnx_dictionary():
    """`onnx-1`, the bytes of whole-file dictionaries 1 and 3 (`onnx-skeleton-1`), as Pith's source holds them."""
    with open(DICTIONARIES) as f:
        return _base64_literal(f.read(), ONNX_CASE)


def manifest_dictionary():
    """`manifest-1` (format 1.6): `hdf5-1`, `onnx-1`, then the manifest vocabulary, as Pith's source holds them."""
    with open(DICTIONARIES) as f:
        source = f.read()
    return (_base64_literal(source, 'case .hdf5v1:\n            return """') + _base64_literal(source, ONNX_CASE)
            + _base64_literal(source, 'static let vocabularyBase64 = """'))


def _crc32c_table():
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_TABLE = _crc32c_table()


def crc32c(data):
    """CRC-32C (Castagnoli): reflected polynomial 0x82F63B78, initial value and final XOR 0xFFFFFFFF."""
    crc = 0xFFFFFFFF
    table = _TABLE
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


assert crc32c(b"123456789") == 0xE3069283


class Container:
    """A container split into its parts: header fields, the data area (bytes 0 up to the manifest,
    header included) and the manifest as a dict."""

    def __init__(self, major, minor, flags, data, manifest, skeleton=None):
        self.major, self.minor, self.flags = major, minor, flags
        self.data = bytearray(data)
        self.manifest = manifest
        self.skeleton = skeleton  # the skeleton that follows the manifest's JSON (flag bit 3), if any

    @property
    def packed(self):
        return bool(self.flags & PACKED)

    @classmethod
    def read(cls, path):
        with open(path, "rb") as f:
            raw = f.read()
        assert raw[:8] == MAGIC, f"{path}: not a .pith container"
        major, minor, flags, offset, length = struct.unpack_from("<HHIQQ", raw, 8)
        stored = raw[offset:offset + length]
        if flags & MANIFEST_DICTIONARY:
            text = inflate(FRAME_MAGIC + stored, manifest_dictionary())
        else:
            text = inflate(stored) if flags & MANIFEST_ZSTD else stored
        skeleton = None
        if flags & SKELETON_IN_MANIFEST:
            text, skeleton = text[:text.index(b"\0")], text[text.index(b"\0") + 1:]
        manifest = json.loads(text)
        if flags & PACKED:
            position = HEADER_BYTES
            for s in manifest["streams"]:
                s["offset"] = position
                position += s["length"]
        return cls(major, minor, flags, raw[:offset], manifest, skeleton)

    def stream_bytes(self, index):
        s = self.manifest["streams"][index]
        return bytes(self.data[s["offset"]:s["offset"] + s["length"]])

    def add_stream(self, payload, **entry):
        """Appends `payload` as a new stream (aligned, unless the container is packed) and returns its
        index; `entry` gives its manifest fields besides offset, length and crc32c."""
        if not self.packed:
            self.data += b"\0" * padding(len(self.data))
        offset = len(self.data)
        self.data += payload
        self.manifest["streams"].append(dict(entry, offset=offset, length=len(payload), crc32c="%08x" % crc32c(payload)))
        return len(self.manifest["streams"]) - 1

    def encoded(self, fix_stream_checksums=True, manifest_text=None):
        """The container's bytes with a plain-JSON manifest (flag bits 0 and 1 cleared), every checksum
        recomputed: each stream's from the bytes its offset and length name (where they lie in the
        data area), the manifest's, the header's. `manifest_text` replaces the manifest's JSON. A
        packed container's manifest is written without the streams' offsets (the reader places them),
        and an inline skeleton after it."""
        data = bytearray(self.data)
        if not self.packed:
            data += b"\0" * padding(len(data))
        if fix_stream_checksums:
            for s in self.manifest["streams"]:
                offset, length = s.get("offset"), s.get("length")
                if isinstance(offset, int) and isinstance(length, int) and 0 <= offset and 0 <= length and offset + length <= len(data):
                    s["crc32c"] = "%08x" % crc32c(data[offset:offset + length])
        if manifest_text is not None:
            text = manifest_text
        elif self.packed:
            text = manifest_json(dict(self.manifest, streams=[{k: v for k, v in s.items() if k != "offset"} for s in self.manifest["streams"]]))
        else:
            text = manifest_json(self.manifest)
        flags = self.flags & ~(MANIFEST_ZSTD | MANIFEST_DICTIONARY | SKELETON_IN_MANIFEST)
        if self.skeleton is not None:
            text += b"\0" + self.skeleton
            flags |= SKELETON_IN_MANIFEST
        head = MAGIC + struct.pack("<HHIQQI", self.major, self.minor, flags, len(data), len(text), crc32c(text))
        head += struct.pack("<I", crc32c(head))
        head += b"\0" * (HEADER_BYTES - len(head))
        data[:HEADER_BYTES] = head
        return bytes(data) + text


def manifest_json(manifest):
    """The manifest as Pith's writer lays it out: keys sorted, no insignificant whitespace, UTF-8."""
    return json.dumps(manifest, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def padding(count):
    return (ALIGNMENT - count % ALIGNMENT) % ALIGNMENT


def inflate(frame, dictionary=None):
    if dictionary is None:
        return subprocess.run(["zstd", "-d", "-c", "-q"], input=frame, capture_output=True, check=True).stdout
    with tempfile.NamedTemporaryFile(suffix=".dict") as f:
        f.write(dictionary)
        f.flush()
        return subprocess.run(["zstd", "-d", "-c", "-q", "-D", f.name], input=frame, capture_output=True, check=True).stdout


def plain(path_in, path_out):
    """Writes the container at `path_in` to `path_out` with its manifest as plain JSON (flag bit 0
    clear): the same container to a reader, easier for a fuzzer to mutate."""
    container = Container.read(path_in)
    with open(path_out, "wb") as f:
        f.write(container.encoded())
