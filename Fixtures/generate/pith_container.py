"""Reading and rewriting `.pith` containers byte by byte, independently of Pith (docs/container-format.md).

Used by make_broken_containers.py (hostile containers whose checksums are all valid) and by
scripts/fuzz_corpus.py (seed containers with a plain-JSON manifest, which a fuzzer can mutate).
A zstd manifest (header flag bit 0) is inflated with the `zstd` command-line tool.
"""
import json
import struct
import subprocess

MAGIC = b"\x89PITH\r\n\x1a"
HEADER_BYTES = 64
ALIGNMENT = 64


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

    def __init__(self, major, minor, flags, data, manifest):
        self.major, self.minor, self.flags = major, minor, flags
        self.data = bytearray(data)
        self.manifest = manifest

    @classmethod
    def read(cls, path):
        with open(path, "rb") as f:
            raw = f.read()
        assert raw[:8] == MAGIC, f"{path}: not a .pith container"
        major, minor, flags, offset, length = struct.unpack_from("<HHIQQ", raw, 8)
        stored = raw[offset:offset + length]
        text = inflate(stored) if flags & 1 else stored
        return cls(major, minor, flags, raw[:offset], json.loads(text))

    def stream_bytes(self, index):
        s = self.manifest["streams"][index]
        return bytes(self.data[s["offset"]:s["offset"] + s["length"]])

    def add_stream(self, payload, **entry):
        """Appends `payload` as a new stream (aligned) and returns its index; `entry` gives its
        manifest fields besides offset, length and crc32c."""
        self.data += b"\0" * padding(len(self.data))
        offset = len(self.data)
        self.data += payload
        self.manifest["streams"].append(dict(entry, offset=offset, length=len(payload), crc32c="%08x" % crc32c(payload)))
        return len(self.manifest["streams"]) - 1

    def encoded(self, fix_stream_checksums=True, manifest_text=None):
        """The container's bytes with a plain-JSON manifest (flag bit 0 cleared), every checksum
        recomputed: each stream's from the bytes its offset and length name (where they lie in the
        data area), the manifest's, the header's. `manifest_text` replaces the manifest's JSON."""
        data = bytearray(self.data)
        data += b"\0" * padding(len(data))
        if fix_stream_checksums:
            for s in self.manifest["streams"]:
                offset, length = s.get("offset"), s.get("length")
                if isinstance(offset, int) and isinstance(length, int) and 0 <= offset and 0 <= length and offset + length <= len(data):
                    s["crc32c"] = "%08x" % crc32c(data[offset:offset + length])
        text = manifest_text if manifest_text is not None else manifest_json(self.manifest)
        flags = self.flags & ~1
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


def inflate(frame):
    return subprocess.run(["zstd", "-d", "-c", "-q"], input=frame, capture_output=True, check=True).stdout


def plain(path_in, path_out):
    """Writes the container at `path_in` to `path_out` with its manifest as plain JSON (flag bit 0
    clear): the same container to a reader, easier for a fuzzer to mutate."""
    container = Container.read(path_in)
    with open(path_out, "wb") as f:
        f.write(container.encoded())
