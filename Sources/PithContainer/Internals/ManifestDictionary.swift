/// Format 1.6's `manifest-1`: the dictionary the manifest's zstd frame is made with (header flag bit 1),
/// and the frame's stored form (see docs/container-format.md, "Manifest frame").
///
/// A small container's manifest is mostly the keys and values every manifest spells out
/// (`"coding":"raw","crc32c":"…`) and, when the skeleton follows the JSON in the frame (flag bit 3),
/// the framing every model file spells out; a zstd frame of a few hundred bytes cannot learn either
/// before it ends. The dictionary is `hdf5-1`, then `onnx-1` (the whole-file form's, unchanged), then
/// the manifest vocabulary that `scripts/make_dictionaries.py` writes from the manifest's schema, as
/// raw content: like the whole-file form's, it is built from what the formats define, never trained
/// on models, and never changes once released (a test pins its size and CRC-32C).
enum ManifestDictionary {
    static let name = "manifest-1"

    /// `hdf5-1`, `onnx-1`, then the manifest vocabulary.
    static let bytes: [UInt8] =
        WholeFileContainer.Dictionary.hdf5v1.bytes + WholeFileContainer.Dictionary.onnx1.bytes + WholeFileContainer.decodeBase64(vocabularyBase64)

    /// The manifest as stored of `content` (the JSON, and with flag bit 3 a 0x00 byte and the
    /// skeleton after it): one zstd frame made with the dictionary, without its magic number (which
    /// readers put back), dictionary ID or checksum (the header's CRC-32C covers it); nil when libzstd
    /// cannot make a context.
    /// Level 19, as for other metadata (levels 20–22 gave the same bytes on the small containers
    /// measured, and would cost seconds on the manifest of a model of many tensors).
    static func frame(_ content: [UInt8]) -> [UInt8]? {
        guard let frame = content.withUnsafeBytes({ Zstd.compress($0, dictionary: bytes, level: Zstd.level, checksum: false, dictionaryID: false) }),
            frame.starts(with: WholeFileContainer.frameMagic)
        else { return nil }
        return Array(frame.dropFirst(WholeFileContainer.frameMagic.count))
    }

    /// What the stored manifest `stored` decodes to: nil unless its frame declares a content size of
    /// at most `limit` bytes (checked before anything is allocated) and decodes to exactly that with
    /// the dictionary.
    static func content(of stored: UnsafeRawBufferPointer, limit: Int) -> [UInt8]? {
        let frame = WholeFileContainer.frameMagic + stored
        return frame.withUnsafeBytes { frame -> [UInt8]? in
            guard let size = Zstd.frameContentSize(frame), size <= limit else { return nil }
            var content = [UInt8](repeating: 0, count: size)
            guard content.withUnsafeMutableBytes({ Zstd.decompress(frame, dictionary: bytes, into: $0) }) else { return nil }
            return content
        }
    }
}
