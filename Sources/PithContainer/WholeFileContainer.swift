import Foundation
import PithIR
import PithCoding

/// Format 1.5's whole-file form: the source model file itself, byte for byte, as one zstd frame made
/// with a dictionary Pith carries for its format (see docs/container-format.md, "Whole-file form").
///
/// A model of a few kilobytes is mostly names, attributes and protobuf or HDF5 framing, which the
/// standard form's 64-byte header, JSON manifest and skeleton stream cannot beat a general-purpose
/// compressor on; a dictionary of what the format defines (ONNX operator schemas, the HDF5
/// structures Keras writes) can. A lossless compress writes this form when it is the smaller of the
/// two; restore gives back the very bytes of the source.
///
///     bytes 0–7   magic, as the standard form's
///     byte  8     0x57 ('W'): the whole-file form (the standard form has 0x01, its major version)
///     byte  9     the dictionary: 1 `onnx-1`, 2 `hdf5-1`, 3 `onnx-skeleton-1`
///     bytes 10–13 CRC-32C of the source file's bytes
///     bytes 14…   one zstd frame without its 4-byte magic number (FD 2F B5 28), which declares its
///                 content size, no dictionary ID and no checksum: of the source itself, or with
///                 `onnx-skeleton-1` (format 1.6) of the ONNX source's skeleton followed by its
///                 tensors' data (`ONNXSkeletonPayload`), from which the reader packs the source again
public enum WholeFileContainer {
    /// The dictionaries, by the number byte 9 holds. A released dictionary never changes: a new one
    /// gets a new number.
    public enum Dictionary: UInt8, Sendable, CaseIterable {
        case onnx1 = 1
        case hdf5v1 = 2
        /// `onnx-1`'s bytes, with a frame that holds the ONNX source's skeleton and then its tensors'
        /// data in slot order rather than the source itself (format 1.6).
        case onnxSkeleton1 = 3

        /// `onnx-1`, `hdf5-1`, `onnx-skeleton-1`.
        public var name: String {
            switch self {
            case .onnx1: return "onnx-1"
            case .hdf5v1: return "hdf5-1"
            case .onnxSkeleton1: return "onnx-skeleton-1"
            }
        }

        /// The format of the models it is for.
        public var sourceFormat: SourceFamily {
            switch self {
            case .onnx1, .onnxSkeleton1: return .onnx
            case .hdf5v1: return .hdf5
            }
        }

        /// Whether the frame holds the source's skeleton and tensor data, which the reader packs
        /// into the source again, rather than the source itself.
        public var holdsSkeleton: Bool { self == .onnxSkeleton1 }

        /// The dictionary's bytes (decoded once).
        public var bytes: [UInt8] {
            switch self {
            case .onnx1, .onnxSkeleton1: return Self.onnxBytes
            case .hdf5v1: return Self.hdf5Bytes
            }
        }

        private static let onnxBytes = decodeBase64(Dictionary.onnx1.base64)
        private static let hdf5Bytes = decodeBase64(Dictionary.hdf5v1.base64)
    }

    /// The two kinds of file a whole-file container holds.
    public enum SourceFamily: String, Sendable {
        case onnx
        case hdf5
    }

    public static let formByte: UInt8 = 0x57
    public static let headerBytes = 14
    /// The zstd frame magic number the stored frame leaves out.
    static let frameMagic: [UInt8] = [0x28, 0xB5, 0x2F, 0xFD]
    /// Largest source a writer stores whole: past this the standard form's per-tensor coding wins,
    /// and compressing the whole file at zstd's strongest level would cost seconds.
    public static let maximumWrittenSourceBytes = 1 << 20
    /// Largest source a reader accepts (what the frame declares, checked before allocating).
    public static let maximumSourceBytes = 64 << 20
    /// zstd's strongest level: the inputs are at most `maximumWrittenSourceBytes`.
    static let level: Int32 = 22

    /// Whether `bytes` (the start of a file) are a whole-file container's.
    public static func hasForm(_ bytes: some Collection<UInt8>) -> Bool {
        bytes.count > ContainerHeader.magic.count && bytes.starts(with: ContainerHeader.magic)
            && bytes[bytes.index(bytes.startIndex, offsetBy: ContainerHeader.magic.count)] == formByte
    }

    /// The whole-file container of `source` with `dictionary`; nil when `source` is larger than
    /// `maximumWrittenSourceBytes` or libzstd cannot make a context.
    public static func encode(_ source: UnsafeRawBufferPointer, dictionary: Dictionary) -> [UInt8]? {
        precondition(!dictionary.holdsSkeleton, "a skeleton's frame is made with encode(_:dictionary:sourceChecksum:)")
        return encode(source, dictionary: dictionary, sourceChecksum: CRC32C.checksum(source))
    }

    /// The whole-file container whose frame holds `content` — the source itself, or for a
    /// dictionary that `holdsSkeleton` the source's skeleton and data — and whose header holds
    /// `sourceChecksum`, the CRC-32C of the source file; nil when `content` is larger than
    /// `maximumWrittenSourceBytes` or libzstd cannot make a context.
    public static func encode(_ content: UnsafeRawBufferPointer, dictionary: Dictionary, sourceChecksum: UInt32) -> [UInt8]? {
        guard content.count <= maximumWrittenSourceBytes,
            let frame = Zstd.compress(content, dictionary: dictionary.bytes, level: level, checksum: false, dictionaryID: false),
            frame.starts(with: frameMagic)
        else { return nil }
        var bytes = ContainerHeader.magic + [formByte, dictionary.rawValue]
        withUnsafeBytes(of: sourceChecksum.littleEndian) { bytes.append(contentsOf: $0) }
        bytes += frame.dropFirst(frameMagic.count)
        return bytes
    }

    /// The dictionary and the source file's bytes of the whole-file container `bytes`, checked:
    /// the dictionary must be one this Pith has, the frame must declare a size of at most
    /// `maximumSourceBytes` before anything is allocated, decode to exactly that size, and match
    /// the CRC-32C. A frame that holds a skeleton (`Dictionary.holdsSkeleton`) is handed to
    /// `rebuild`, which gives the source file packed again from it (or throws: the frame is
    /// damaged); the CRC-32C is then that of the file `rebuild` gives. `file` names the container
    /// in messages.
    public static func decode(
        _ bytes: UnsafeRawBufferPointer, file: String, rebuild: ([UInt8]) throws -> [UInt8]
    ) throws -> (dictionary: Dictionary, source: [UInt8]) {
        let (dictionary, content) = try decodedFrame(bytes, file: file)
        let source = dictionary.holdsSkeleton ? try rebuild(content) : content
        let stored = UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: 10, as: UInt32.self))
        let actual = CRC32C.checksum(source)
        guard actual == stored else {
            throw ContainerError(
                .checksum, file: file, "the stored file's CRC-32C is \(hex(stored)), its decoded bytes give \(hex(actual)): the file is damaged")
        }
        return (dictionary, source)
    }

    /// `bytes` with the CRC-32C at bytes 10–13 made to match what the frame decodes to, or nil when
    /// it does not decode: for tools that test readers on damaged files (the fuzz targets), whose
    /// random changes would otherwise always stop at the checksum. `rebuild` as `decode`'s.
    public static func withChecksumFixed(_ bytes: [UInt8], rebuild: ([UInt8]) throws -> [UInt8]) -> [UInt8]? {
        guard let (dictionary, content) = bytes.withUnsafeBytes({ try? decodedFrame($0, file: "") }),
            let source = dictionary.holdsSkeleton ? try? rebuild(content) : content
        else { return nil }
        var fixed = bytes
        withUnsafeBytes(of: CRC32C.checksum(source).littleEndian) { fixed.replaceSubrange(10..<14, with: $0) }
        return fixed
    }

    /// The dictionary and the frame's decoded bytes, every check of `decode` but the CRC-32C.
    static func decodedFrame(_ bytes: UnsafeRawBufferPointer, file: String) throws -> (dictionary: Dictionary, source: [UInt8]) {
        guard bytes.count > headerBytes, hasForm(bytes) else {
            throw ContainerError(
                .malformed, file: file,
                "\(bytes.count) bytes is too short for a whole-file container (a \(headerBytes)-byte header and a zstd frame): truncated")
        }
        guard let dictionary = Dictionary(rawValue: bytes[9]) else {
            let known = Dictionary.allCases.map { "\($0.rawValue) (\($0.name))" }.joined(separator: ", ")
            throw ContainerError(.unsupported, file: file, "byte 9: dictionary \(bytes[9]) is not one this Pith has (\(known)): upgrade Pith")
        }
        let frame = frameMagic + bytes[headerBytes...]
        let source = try frame.withUnsafeBytes { frame -> [UInt8] in
            guard let size = Zstd.frameContentSize(frame) else {
                throw ContainerError(.malformed, file: file, "bytes \(headerBytes)…: not a zstd frame that declares its size: the file is damaged")
            }
            guard size <= maximumSourceBytes else {
                throw ContainerError(
                    .malformed, file: file, "the stored file declares \(size) bytes, more than a whole-file container holds (\(maximumSourceBytes))")
            }
            var source = [UInt8](repeating: 0, count: size)
            guard source.withUnsafeMutableBytes({ Zstd.decompress(frame, dictionary: dictionary.bytes, into: $0) }) else {
                throw ContainerError(
                    .malformed, file: file,
                    "bytes \(headerBytes)…: the zstd frame does not decode to its declared \(size) bytes with dictionary \(dictionary.name): the file is damaged"
                )
            }
            return source
        }
        return (dictionary, source)
    }

    /// The bytes of a dictionary's base64 text (Foundation's decoder).
    static func decodeBase64(_ text: String) -> [UInt8] {
        guard let data = Data(base64Encoded: text) else { preconditionFailure("a built-in dictionary is not base64") }
        return [UInt8](data)
    }
}
