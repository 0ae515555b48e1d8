import PithIR

/// The container's manifest: JSON, described by `Schemas/container-manifest.schema.json` and
/// `docs/container-format.md`. Every number needed to find, check and decode a stream is here.
public struct Manifest: Sendable, Codable, Equatable {
    public var format: String = "pith"
    /// `MAJOR.MINOR` of the container format (mirrors the header).
    public var version: String
    public var source: Source
    public var tensors: [TensorEntry]
    public var streams: [StreamEntry]

    /// Where the model came from and what restore needs besides the tensors.
    public struct Source: Sendable, Codable, Equatable {
        /// `onnx`, `keras2-h5`, `keras3-legacy-h5`, `keras3-weights-h5`, `hdf5`.
        public var format: String
        public var producerName: String
        public var producerVersion: String
        /// Descriptive key/value pairs (ONNX `metadata_props`, Keras root attributes).
        public var properties: [Property]
        /// Keras `model_config` JSON, when the source had one.
        public var configuration: String?
        /// Stream holding the source's own structure without tensor data (ONNX: the `ModelProto`
        /// with every tensor's data fields cleared, in the order of `tensors`).
        public var skeleton: Int?
    }

    public struct Property: Sendable, Codable, Equatable {
        public var key: String
        public var value: String
    }

    public struct TensorEntry: Sendable, Codable, Equatable {
        public var name: String
        public var dtype: String
        public var shape: [Int]
        /// Where the tensor lives in a Keras or HDF5 source (`keras:…`, `dataset:…`); absent for ONNX,
        /// whose tensors are placed by their order in the skeleton.
        public var origin: String?
        public var consumerOp: String?
        public var consumerName: String?
        public var encoding: Encoding
    }

    /// How a tensor's elements are stored. `kind` selects the fields that apply.
    public struct Encoding: Sendable, Codable, Equatable {
        /// Which of the fields below apply.
        public var kind: Kind
        /// `dense`: one stream of the raw little-endian elements. `planes`: one stream per byte of the
        /// element (byte 0 = least significant), each coded on its own. `strings`: lengths + bytes.
        public var streams: [Int]?
        /// `float-split`, and since 1.4 `dense`: the tensor's first element within its streams, which
        /// several small tensors may share (their fields or bytes concatenated in tensor order, coded
        /// as one). Default 0 (for `dense`: absent, the stream is the tensor's own).
        public var start: Int?
        // codebook
        public var bits: Int?
        public var channels: Int?
        public var axis: Int?
        public var zeroReserved: Bool?
        public var centroids: Int?
        public var indices: Int?
        // quantized
        public var scheme: Scheme?
        public var signed: Bool?
        public var scales: Int?
        public var zeroPoints: Int?
        public var codes: Int?
        // sparse
        public var rows: Int?
        public var columns: Int?
        public var indexBits: Int?
        public var fillers: Int?
        public var rowStarts: Int?
        public var gaps: Int?
        /// The entries' values: an elementwise kind, `codebook` or `quantized` over `entries` elements.
        public var values: Box<Encoding>?
        public var entries: Int?
        // factored (1.2)
        public var method: Method?
        public var rank: Int?
        /// Tensor train: the factors of the (padded) row and column counts, and the d + 1 ranks.
        public var rowFactors: [Int]?
        public var columnFactors: [Int]?
        public var ranks: [Int]?
        /// One float32 encoding of an elementwise kind per factor, in order.
        public var factors: [Encoding]?
        // blocks (1.6)
        /// Rows (indices along the first dimension) per block; the last block holds the rest.
        public var blockRows: Int?
        /// One elementwise encoding (`dense`, `planes` or `float-split`, streams of its own) per block
        /// of `block_rows` rows, in order.
        public var blocks: [Encoding]?

        public init(kind: Kind) { self.kind = kind }
    }

    public struct StreamEntry: Sendable, Codable, Equatable {
        /// Byte offset from the start of the file; a multiple of 64 for raw streams (for every stream
        /// before 1.4). A packed container (1.6) leaves it out of the JSON: its streams follow each
        /// other from byte 64 in index order, and the reader places them so.
        public var offset: Int
        /// Bytes stored.
        public var length: Int
        /// How the stored bytes decode.
        public var coding: Coding
        /// Number of symbols (huffman) or bytes (raw) the stream decodes to.
        public var symbols: Int
        /// Bits per decoded symbol: 8 or 16 (huffman only).
        public var symbolBits: Int?
        /// Code length of each symbol 0, 1, 2, … as one hexadecimal digit each (huffman only).
        public var codeLengths: String?
        /// CRC-32C of the stored bytes, 8 lowercase hex digits.
        public var crc32c: String
        /// zstd only (1.4): the frame was made with this text as its dictionary. `configuration`:
        /// the UTF-8 of `source.configuration` (the Keras model's configuration, which the HDF5
        /// skeleton repeats as an attribute).
        public var dictionary: String?
    }
}
