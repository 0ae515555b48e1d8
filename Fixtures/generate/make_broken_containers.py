"""A corpus of hostile `.pith` containers, beside Fixtures/broken/ (the broken models): each named after
what is wrong with it, and — except where the name says otherwise — with every checksum valid, so
that the damage reaches the reader's checks of what the bytes mean.

Writes Fixtures/broken-containers/ and its expected.json, which maps every file to the exit code
`pith restore FILE -o OUTPUT` (`output`: restored.onnx, or restored.h5 for Keras containers) must end with and a phrase its message must contain (besides
the file's name); `inspect_ok` marks containers that are consistent in themselves and wrong only
against the model they restore to (inspect lists them; restore refuses them). Built from the golden
containers (Fixtures/golden/, make_golden.py), so needs no Pith; `zstd` for the zstd bomb.
"""
import copy
import json
import os
import shutil
import struct
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
from common import FIXTURES  # noqa: E402
from pith_container import Container, crc32c, manifest_json  # noqa: E402

OUT = os.path.join(FIXTURES, "broken-containers")
GOLDEN = os.path.join(FIXTURES, "golden")
expected = {}


def base(name="v1.2-lenet-mixed"):
    return Container.read(os.path.join(GOLDEN, name + ".pith"))


def write(name, data, code, phrase, inspect_ok=False, output="restored.onnx"):
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(data)
    expected[name] = {"exit_code": code, "message": phrase, "output": output, **({"inspect_ok": True} if inspect_ok else {})}


def tensor(container, name):
    return next(t for t in container.manifest["tensors"] if t["name"] == name)


def edited(edit, source="v1.2-lenet-mixed", fix=True):
    """A golden container with `edit(container)` applied, every checksum recomputed (unless `fix`
    is False: then the streams keep the checksums they had)."""
    c = base(source)
    edit(c)
    return c.encoded(fix_stream_checksums=fix)


def set_stream(index, **fields):
    def edit(c):
        c.manifest["streams"][index].update(fields)
    return edit


def with_header(data, **fields):
    """`data` with header fields replaced (major, minor, flags, manifest_length) and the header CRC fixed."""
    major, minor, flags, offset, length, checksum = struct.unpack_from("<HHIQQI", data, 8)
    values = dict(major=major, minor=minor, flags=flags, manifest_length=length)
    values.update(fields)
    head = data[:8] + struct.pack("<HHIQQI", values["major"], values["minor"], values["flags"], offset, values["manifest_length"], checksum)
    return head + struct.pack("<I", crc32c(head)) + data[40:]


def main():
    shutil.rmtree(OUT, ignore_errors=True)
    os.makedirs(OUT)
    mixed = base()
    streams = mixed.manifest["streams"]
    # In v1.2-lenet-mixed: stream 9 holds fc2's sparse gaps (Huffman, code "122"), 11 fc2's int8 codes
    # (Huffman), 12/13 fc3's float16 planes, 6 fc1's 32 centroids, 14 the zstd skeleton.
    assert streams[9]["coding"] == "huffman" and streams[11]["coding"] == "huffman" and streams[12]["coding"] == "raw"

    # Huffman tables and blocks.
    write("huffman-all-zero-lengths.pith", edited(set_stream(9, code_lengths="000")), 65, "stream 9: invalid coded stream: a bit pattern matches no code")
    write("huffman-single-code.pith", edited(set_stream(9, code_lengths="1")), 65, "stream 9: invalid coded stream: a bit pattern matches no code")
    write("huffman-oversubscribed.pith", edited(set_stream(9, code_lengths="111")), 65, "code lengths oversubscribe the code space")
    write("huffman-bad-length-digit.pith", edited(set_stream(9, code_lengths="12g")), 65, "code lengths contain `g`")
    write("huffman-code-lengths-missing.pith", edited(lambda c: c.manifest["streams"][9].pop("code_lengths")), 65, "without code lengths")

    def substream_length(c):
        s = c.manifest["streams"][9]
        c.data[s["offset"]:s["offset"] + 4] = b"\xff\xff\xff\xff"
    write("huffman-substream-length-ffffffff.pith", edited(substream_length), 65, "stream 1 declares 4294967295 bytes")
    write("huffman-too-many-symbols.pith", edited(set_stream(9, symbols=8 * (streams[9]["length"] - 12) + 1)), 65, "cannot hold")
    write("huffman-stream-ends-early.pith", edited(set_stream(11, length=streams[11]["length"] - 2000)), 65, "ends before its")
    write("huffman-symbol-bits-12.pith", edited(set_stream(9, symbol_bits=12)), 65, "symbol_bits must be 8 or 16")

    # Stream table: lengths past the end, alignment, overlaps, missing streams, raw counts.
    write("stream-past-end.pith", edited(set_stream(12, length=10 ** 6, symbols=10 ** 6)), 65, "stream 12: bytes")
    write("stream-unaligned.pith", edited(set_stream(12, offset=streams[12]["offset"] + 1)), 65, "on a 64-byte boundary")
    write("stream-negative-length.pith", edited(set_stream(12, length=-5, symbols=-5)), 65, "stream 12: bytes")
    write("streams-overlap.pith", edited(set_stream(13, offset=streams[12]["offset"])), 65, "streams 12 and 13 overlap")
    write("stream-index-missing.pith", edited(lambda c: tensor(c, "fc3.weight")["encoding"].update(streams=[12, 999])), 65, "stream 999 does not exist")
    write("raw-symbols-mismatch.pith", edited(set_stream(12, symbols=999)), 65, "declares 999 symbols")
    write("stream-checksum-wrong.pith", edited(set_stream(12, crc32c="00000000"), fix=False), 65, "checksum is 00000000 in the manifest")
    write("stream-offset-huge.pith", edited(set_stream(12, offset=2 ** 63 - 64)), 65, "not inside the data area")

    # Header and manifest.
    good = mixed.encoded()
    manifest_length = struct.unpack_from("<Q", good, 24)[0]
    write("manifest-length-past-end.pith", with_header(good, manifest_length=manifest_length + 4096), 65, "is not inside the")
    write("manifest-not-json.pith", mixed.encoded(manifest_text=b"{\"format\": \"pith\", not json"), 65, "the manifest is not valid JSON")
    write("manifest-nested-deep.pith", mixed.encoded(manifest_text=b"[" * 20000 + b"]" * 20000), 65, "the manifest is not valid JSON")
    bomb = subprocess.run(["zstd", "-19", "-q", "-c"], input=b"\0" * (65 << 20), capture_output=True, check=True).stdout
    write("manifest-zstd-bomb.pith", with_header(mixed.encoded(manifest_text=bomb), flags=1), 65, "not a zstd frame of at most 67108864 bytes")
    write("format-major-2.pith", with_header(good, major=2), 69, "container format 2.2 is not readable by this Pith (reads 1.x): upgrade Pith")
    write("header-flag-unknown.pith", with_header(good, flags=0x10), 69, "header flags 0x10 are not defined")
    write("truncated.pith", good[:len(good) // 2], 65, "is not inside the")
    write("header-only.pith", good[:64], 65, "is not inside the")

    # Encodings that lie about their tensor.
    write("codebook-index-past-table.pith",
          edited(lambda c: tensor(c, "fc1.weight")["encoding"]["values"].update(
              centroids=c.add_stream(c.stream_bytes(6)[:64], coding="raw", symbols=64))), 65, "an index points past its 16-entry table")
    write("sparse-row-starts-short.pith", edited(lambda c: tensor(c, "fc1.weight")["encoding"].update(entries=24611)), 65, "row_starts must rise from 0 to 24611")
    write("sparse-view-mismatch.pith", edited(lambda c: tensor(c, "fc1.weight")["encoding"].update(rows=301)), 65, "sparse view 301×784 does not match")
    write("sparse-index-bits-0.pith", edited(lambda c: tensor(c, "fc1.weight")["encoding"].update(index_bits=0)), 65, "index_bits 0")
    write("quantized-bits-17.pith", edited(lambda c: tensor(c, "fc2.weight")["encoding"]["values"].update(bits=17)), 65, "lacks bits (2…16)")
    write("pool-gap.pith", edited(lambda c: tensor(c, "fc2.bias")["encoding"].update(start=301)), 65, "leave a gap after the tensor before")
    write("pool-overlap.pith", edited(lambda c: tensor(c, "fc2.bias")["encoding"].update(start=299)), 65, "overlap the tensor before")
    write("encoding-unknown.pith", edited(lambda c: tensor(c, "fc3.weight")["encoding"].update(kind="zigzag")), 69, "encoding `zigzag` is not one this Pith knows")
    write("dtype-unknown.pith", edited(lambda c: tensor(c, "fc3.weight").update(dtype="float128")), 69, "dtype `float128` is not one this Pith knows")
    write("coding-unknown.pith", edited(set_stream(12, coding="lz4")), 69, "coding `lz4` is not one this Pith knows")
    write("source-format-unknown.pith", edited(lambda c: c.manifest["source"].update(format="tflite")), 69, "source format `tflite` is not one this Pith knows")
    write("shape-negative.pith", edited(lambda c: tensor(c, "fc3.weight").update(shape=[-10, -100])), 65, "is negative or too large")

    # Shapes whose element counts fit an Int, but whose byte counts or derived counts do not.
    huge = 1 << 62
    write("codebook-huge-channels.pith",
          edited(lambda c: tensor(c, "fc3.weight").update(shape=[huge], encoding={
              "kind": "codebook", "bits": 5, "channels": huge, "axis": 0, "centroids": 6, "indices": 7})), 65, "more than")
    write("sparse-huge-shape.pith",
          edited(lambda c: tensor(c, "fc1.weight").update(shape=[huge, 1])), 65, "fc1.weight")
    write("quantized-huge-shape.pith",
          edited(lambda c: tensor(c, "fc3.weight").update(shape=[huge], encoding={
              "kind": "quantized", "scheme": "linear", "bits": 16, "signed": True, "axis": 0, "scales": 10, "codes": 12})), 65, "fc3.weight")
    write("float16-huge-shape.pith", edited(lambda c: tensor(c, "fc3.weight").update(shape=[huge, 4])), 65, "fc3.weight")
    write("sparse-huge-rows.pith",
          edited(lambda c: (tensor(c, "fc1.weight").update(shape=[huge, 1]), tensor(c, "fc1.weight")["encoding"].update(rows=huge, columns=1))), 65,
          "more than")
    write("quantized-wide-huge.pith",
          edited(lambda c: tensor(c, "fc3.weight").update(shape=[huge], encoding={
              "kind": "quantized", "scheme": "linear", "bits": 16, "signed": True, "axis": 0, "codes": 12,
              "scales": c.add_stream(b"\0\0\x80\x3f", coding="raw", symbols=4)})), 65, "more than")
    write("sparse-all-zero-bomb.pith",
          edited(lambda c: (tensor(c, "fc1.weight").update(shape=[1 << 20, 1 << 20]), tensor(c, "fc1.weight")["encoding"].update(
              rows=1 << 20, columns=1 << 20))), 65, "more than")

    # Factored (format 1.2).
    write("factored-rank-huge.pith",
          edited(lambda c: tensor(c, "fc1.weight")["encoding"].update(rank=1 << 20), source="v1.2-lenet-factored"), 65, "needs a rank of 1…65536")
    write("factored-missing-factor.pith",
          edited(lambda c: tensor(c, "fc1.weight")["encoding"]["factors"].pop(), source="v1.2-lenet-factored"), 65, "needs 2 factors, found 1")
    write("factored-train-lies.pith",
          edited(lambda c: tensor(c, "fc2.weight")["encoding"].update(ranks=[1, 4096, 4096, 1]), source="v1.2-lenet-factored"), 65,
          "stream 12 holds 320 symbols, 327680 expected")

    # Factors stored as codes (format 1.3): fc1's factor A is int7 codes, B a CSR of int4 codes.
    codes = "v1.3-lenet-factored-codes"
    write("factor-codes-short.pith",
          edited(lambda c: tensor(c, "fc1.weight")["encoding"].update(rank=17), source=codes), 65, "expected")
    write("factor-sparse-shape-lies.pith",
          edited(lambda c: tensor(c, "fc1.weight")["encoding"]["factors"][1].update(rows=32), source=codes), 65, "fc1.weight")
    write("factor-nested-factored.pith",
          edited(lambda c: tensor(c, "fc1.weight")["encoding"]["factors"].__setitem__(
              0, copy.deepcopy(tensor(c, "fc1.weight")["encoding"])), source=codes), 65, "fc1.weight")
    write("factor-scales-missing.pith",
          edited(lambda c: tensor(c, "fc1.weight")["encoding"]["factors"][0].update(scales=999), source=codes), 65, "scales do not match")

    # Format 1.4: the STFT basis is one zstd frame (stream `basis`), the six int64 constants slices of one
    # pooled dense stream; coded streams are packed without alignment.
    stft = "v1.4-stft-basis"
    golden14 = base(stft)
    basis = tensor(golden14, "stft.forward_basis")["encoding"]["streams"][0]
    pooled = tensor(golden14, "pads")["encoding"]["streams"][0]
    assert golden14.manifest["streams"][basis]["coding"] == "zstd" and tensor(golden14, "axes")["encoding"]["streams"] == [pooled]
    assert golden14.manifest["streams"][basis]["offset"] % 64 != 0 or golden14.manifest["streams"][pooled]["offset"] % 64 != 0

    # A frame cut short (its checksum fixed: the damage reaches zstd).
    write("zstd-element-frame-short.pith", edited(lambda c: c.manifest["streams"][basis].update(length=c.manifest["streams"][basis]["length"] - 100),
                                                  source=stft), 65, "is not a zstd frame of 264192 bytes")
    bomb_frame = subprocess.run(["zstd", "-19", "-q", "-c"], input=b"\0" * ((1 << 30) + 4), capture_output=True, check=True).stdout

    def zstd_bomb(c):
        tensor(c, "stft.forward_basis").update(shape=[(1 << 28) + 1])
        tensor(c, "stft.forward_basis")["encoding"].update(streams=[c.add_stream(bomb_frame, coding="zstd", symbols=(1 << 30) + 4)])
    write("zstd-element-bomb.pith", edited(zstd_bomb, source=stft), 65, "may decode to at most 1073741824 bytes")
    write("pool-dense-gap.pith", edited(lambda c: tensor(c, "axes")["encoding"].update(start=tensor(c, "axes")["encoding"]["start"] + 1), source=stft),
          65, "leave a gap after the tensor before")
    write("pool-dense-past-end.pith", edited(lambda c: tensor(c, "pads")["encoding"].update(start=1 << 61), source=stft), 65, "pads")
    write("packed-streams-in-1.3.pith", with_header(edited(lambda c: None, source=stft), minor=3), 65, "on a 64-byte boundary")

    # The Keras skeleton as a zstd frame made with the model configuration as its dictionary (1.4).
    keras14 = "v1.4-keras2-cnn"
    primed = base(keras14).manifest["source"]["skeleton"]
    assert base(keras14).manifest["streams"][primed].get("dictionary") == "configuration"
    write("stream-dictionary-unknown.pith", edited(set_stream(primed, dictionary="weights"), source=keras14), 69,
          "dictionary `weights` is not one this Pith knows", output="restored.h5")
    write("stream-dictionary-without-configuration.pith", edited(lambda c: c.manifest["source"].pop("configuration"), source=keras14), 65,
          "the model configuration as its dictionary, and the manifest has none", output="restored.h5")
    raw = next(i for i, s in enumerate(base(keras14).manifest["streams"]) if s["coding"] == "raw")
    write("stream-dictionary-on-raw.pith", edited(set_stream(raw, dictionary="configuration"), source=keras14), 65,
          "has no dictionary", output="restored.h5")
    write("stream-dictionary-other-configuration.pith",
          edited(lambda c: c.manifest["source"].update(configuration=c.manifest["source"]["configuration"].replace("conv", "vnoc")), source=keras14), 65,
          "made with the model configuration as its dictionary", output="restored.h5")

    # Consistent in itself, wrong against the model it restores to (restore checks each manifest
    # tensor against the skeleton slot it fills).
    def swap(c):
        t = c.manifest["tensors"]
        t[0], t[2] = t[2], t[0]
    write("swapped-tensors.pith", edited(swap), 65, "fc1.weight", inspect_ok=True)
    write("transposed-tensor.pith", edited(lambda c: tensor(c, "fc3.weight").update(shape=[100, 10])), 65, "fc3.weight", inspect_ok=True)
    write("retyped-tensor.pith", edited(lambda c: tensor(c, "fc3.weight").update(dtype="int32")), 65, "fc3.weight", inspect_ok=True)
    write("renamed-tensor.pith", edited(lambda c: tensor(c, "fc3.weight").update(name="fc3.weights")), 65, "fc3.weights", inspect_ok=True)
    write("huge-tensor-name.pith", edited(lambda c: tensor(c, "fc3.bias").update(name="n" * 100000)), 65, "nnnn", inspect_ok=True)
    write("tensor-missing.pith", edited(lambda c: c.manifest["tensors"].remove(tensor(c, "fc3.weight"))), 65, "disagree", inspect_ok=True)
    write("skeleton-missing.pith", edited(lambda c: c.manifest["source"].pop("skeleton")), 65, "no ONNX skeleton", inspect_ok=True)
    write("skeleton-index-missing.pith", edited(lambda c: c.manifest["source"].update(skeleton=999)), 65, "stream 999 does not exist")
    write("skeleton-not-onnx.pith",
          edited(lambda c: c.manifest["source"].update(skeleton=c.add_stream(b"\xff" * 100, coding="raw", symbols=100))), 65, "skeleton",
          inspect_ok=True)
    write("source-relabelled-keras.pith", edited(lambda c: c.manifest["source"].update(format="keras2-h5")), 65,
          "no origin: a keras2-h5 container says where each tensor goes")

    # Keras containers: where each tensor goes comes from its origin.
    def origin(value):
        return lambda c: c.manifest["tensors"][1].update(origin=value)
    write("keras-origin-empty.pith", edited(origin(""), source="v1.2-keras2-cnn"), 65, "origin `` is not a `keras:` weight", output="restored.h5")
    write("keras-origin-slash.pith", edited(origin("keras:conv\x1f/\x1f/"), source="v1.2-keras2-cnn"), 65, "is not a plain HDF5 path", output="restored.h5")
    # Keras properties become root attributes on restore: an empty or repeated name (found by the
    # campaign: H5Acreate2 refused it while writing, exit 74 blaming the output).
    write("keras-property-empty.pith",
          edited(lambda c: c.manifest["source"]["properties"][0].update(key=""), source="v1.2-keras2-cnn"), 65,
          "needs a non-empty name of its own", output="restored.h5")
    write("keras-property-duplicate.pith",
          edited(lambda c: c.manifest["source"]["properties"].append(dict(c.manifest["source"]["properties"][0])), source="v1.2-keras2-cnn"), 65,
          "needs a non-empty name of its own", output="restored.h5")
    write("keras-origin-duplicate.pith",
          edited(lambda c: c.manifest["tensors"][1].update(origin=c.manifest["tensors"][0]["origin"]), source="v1.2-keras2-cnn"), 65,
          "is another tensor's", output="restored.h5")

    with open(os.path.join(OUT, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1, sort_keys=True, ensure_ascii=False)
        f.write("\n")
    print(f"wrote {len(expected)} broken containers")


if __name__ == "__main__":
    main()
