public import PithIR

/// Reads `.pith` containers, trusting nothing: every length is checked against the bytes that
/// remain before anything is allocated, streams must lie inside the file without overlapping,
/// checksums are verified, and unknown versions and encodings are refused with what to do.
///
/// The facade for reading a whole container at once; `ContainerFile` opens one and decodes its
/// tensors on demand.
public enum ContainerReader {
    /// Most tensors and streams a manifest may list.
    public static let maximumTensors = 1 << 20
    public static let maximumStreams = 1 << 22
    /// Most bytes a zstd-coded (metadata) stream may decode to.
    public static let maximumMetadataBytes = 1 << 30
    /// Most bytes of dense tensor a container may declare per byte of its file: Huffman-coded
    /// 1-bit codes of float64 values give 64; sparse and factored tensors more, 1,100 as for HDF5
    /// datasets. Tensors up to `freeAllowance` bytes need no justification.
    public static let maximumExpansion = 1100
    public static let freeAllowance = 1 << 30

    /// What a container holds: the model (tensors in their compressed storage), the manifest, the
    /// bytes each tensor's streams occupy, and the source skeleton.
    public struct Contents: Sendable {
        public var model: Model
        public var manifest: Manifest
        /// Stored bytes of each tensor's streams (shared streams counted for each tensor using them).
        public var tensorBytes: [Int]
        public var skeleton: [UInt8]?
        public var fileBytes: Int
        public var manifestBytes: Int
    }

    /// Every tensor of the container at `path`, decoded on every core.
    public static func read(contentsOf path: String) throws -> Contents {
        try ContainerFile(path).contents()
    }

    /// Whether `bytes` start with the container signature.
    public static func hasSignature(_ bytes: [UInt8]) -> Bool { bytes.starts(with: ContainerHeader.magic) }

    /// Every tensor of the container in `bytes`; `file` names it in messages.
    public static func read(bytes: UnsafeRawBufferPointer, file: String) throws -> Contents {
        try ContainerFile(bytes: bytes, file: file, owner: nil).contents()
    }
}
