private import CZstd

/// The container's LZ codec: zstd frames (from libzstd) for the manifest and the source skeleton,
/// text and protobuf that repeat names and that entropy coding alone shrinks little, and (format 1.4)
/// for tensor element streams whose values repeat in patterns.
/// Every call into `CZstd` is in this file.
enum Zstd {
    /// Level for metadata: small inputs, so the strongest level costs little time.
    static let level: Int32 = 19
    /// Level of the quick look at a large tensor stream that decides whether a full frame is worth making.
    static let probeLevel: Int32 = 3

    static func compress(_ bytes: [UInt8], level: Int32 = level) -> [UInt8] {
        bytes.withUnsafeBytes { compress($0, level: level) }
    }

    static func compress(_ input: UnsafeRawBufferPointer, level: Int32 = level) -> [UInt8] {
        let bound = ZSTD_compressBound(input.count)
        var output = [UInt8](repeating: 0, count: bound)
        let written = output.withUnsafeMutableBytes { out in
            ZSTD_compress(out.baseAddress, bound, input.baseAddress, input.count, level)
        }
        precondition(ZSTD_isError(written) == 0, "ZSTD_compress cannot fail with a bound-sized output")
        output.removeLast(bound - written)
        return output
    }

    /// One frame of `bytes` compressed with `dictionary` as raw content (zstd's dictionary magic
    /// cannot begin UTF-8 text, so a reader's automatic detection takes it as raw content too), with
    /// zstd's content checksum, so that decoding with another dictionary fails instead of giving
    /// other bytes; nil if libzstd cannot make a context.
    static func compress(_ bytes: [UInt8], dictionary: [UInt8], level: Int32 = level) -> [UInt8]? {
        bytes.withUnsafeBytes { compress($0, dictionary: dictionary, level: level, checksum: true, dictionaryID: true) }
    }

    /// As above, with zstd's content checksum and the frame's dictionary ID each optional (the
    /// whole-file form checks its own CRC-32C and names its dictionary in its header).
    static func compress(_ input: UnsafeRawBufferPointer, dictionary: [UInt8], level: Int32, checksum: Bool, dictionaryID: Bool) -> [UInt8]? {
        guard let context = ZSTD_createCCtx() else { return nil }
        defer { ZSTD_freeCCtx(context) }
        guard ZSTD_isError(ZSTD_CCtx_setParameter(context, ZSTD_c_compressionLevel, level)) == 0,
            ZSTD_isError(ZSTD_CCtx_setParameter(context, ZSTD_c_checksumFlag, checksum ? 1 : 0)) == 0,
            ZSTD_isError(ZSTD_CCtx_setParameter(context, ZSTD_c_dictIDFlag, dictionaryID ? 1 : 0)) == 0,
            ZSTD_isError(dictionary.withUnsafeBytes { ZSTD_CCtx_loadDictionary(context, $0.baseAddress, $0.count) }) == 0
        else { return nil }
        let bound = ZSTD_compressBound(input.count)
        var output = [UInt8](repeating: 0, count: bound)
        let written = output.withUnsafeMutableBytes { out in
            ZSTD_compress2(context, out.baseAddress, bound, input.baseAddress, input.count)
        }
        guard ZSTD_isError(written) == 0 else { return nil }
        output.removeLast(bound - written)
        return output
    }

    /// Decompresses one frame made with `dictionary` that must decode to exactly `output.count`
    /// bytes into `output`; false otherwise.
    static func decompress(_ frame: UnsafeRawBufferPointer, dictionary: [UInt8], into output: UnsafeMutableRawBufferPointer) -> Bool {
        guard frame.count > 0 else { return output.isEmpty }
        let size = ZSTD_getFrameContentSize(frame.baseAddress, frame.count)
        guard size != czstd_content_size_unknown(), size != czstd_content_size_error(), size == UInt64(output.count),
            let context = ZSTD_createDCtx()
        else { return false }
        defer { ZSTD_freeDCtx(context) }
        let written = dictionary.withUnsafeBytes { dict in
            ZSTD_decompress_usingDict(context, output.baseAddress, output.count, frame.baseAddress, frame.count, dict.baseAddress, dict.count)
        }
        return ZSTD_isError(written) == 0 && written == output.count
    }

    /// The decompressed size a frame declares; nil when it declares none or is not a frame.
    static func frameContentSize(_ frame: UnsafeRawBufferPointer) -> Int? {
        guard frame.count > 0 else { return nil }
        let size = ZSTD_getFrameContentSize(frame.baseAddress, frame.count)
        guard size != czstd_content_size_unknown(), size != czstd_content_size_error(), size <= UInt64(Int.max) else { return nil }
        return Int(size)
    }

    /// Decompresses one frame that must decode to exactly `expected` bytes; nil otherwise
    /// (a corrupt frame, another size, or a frame that does not say its size).
    static func decompress(_ frame: UnsafeRawBufferPointer, expected: Int) -> [UInt8]? {
        // The frame must declare the size before that much memory is allocated.
        guard expected == 0 || frameContentSize(frame) == expected else { return nil }
        var output = [UInt8](repeating: 0, count: expected)
        let ok = output.withUnsafeMutableBytes { decompress(frame, into: $0) }
        return ok ? output : nil
    }

    /// Decompresses one frame that must decode to exactly `output.count` bytes into `output`;
    /// false otherwise.
    static func decompress(_ frame: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer) -> Bool {
        guard frame.count > 0 else { return output.isEmpty }
        let size = ZSTD_getFrameContentSize(frame.baseAddress, frame.count)
        guard size != czstd_content_size_unknown(), size != czstd_content_size_error(), size == UInt64(output.count) else { return false }
        let written = ZSTD_decompress(output.baseAddress, output.count, frame.baseAddress, frame.count)
        return ZSTD_isError(written) == 0 && written == output.count
    }
}
