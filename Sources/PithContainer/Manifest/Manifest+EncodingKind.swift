extension Manifest.Encoding {
    /// How a tensor's elements are stored: the manifest's `encoding.kind`, which selects the fields of
    /// the encoding that apply (docs/container-format.md, "Tensor encodings").
    ///
    /// Codable as its manifest spelling. A kind this Pith does not know still decodes, so that the
    /// reader can refuse it by name ("encoding `…` is not one this Pith knows").
    public struct Kind: RawRepresentable, Hashable, Sendable, Codable, CustomStringConvertible {
        /// The manifest spelling.
        public var rawValue: String

        public init(rawValue: String) { self.rawValue = rawValue }

        /// One stream of the elements in their dtype's storage convention. The manifest spelling is
        /// `dense`.
        public static let dense = Kind(rawValue: "dense")
        /// One stream per byte of the element, byte 0 the least significant. The manifest spelling is
        /// `planes`.
        public static let planes = Kind(rawValue: "planes")
        /// float32 or bfloat16 split into exponent and sign-mantissa streams, which small tensors may
        /// share (`start`). The manifest spelling is `float-split`.
        public static let floatSplit = Kind(rawValue: "float-split")
        /// Per element a UInt32 length and that many bytes. The manifest spelling is `strings`.
        public static let strings = Kind(rawValue: "strings")
        /// k-means weight sharing: centroid tables and one index per element. The manifest spelling is
        /// `codebook`.
        public static let codebook = Kind(rawValue: "codebook")
        /// Quantized codes of one `Scheme`. The manifest spelling is `quantized`.
        public static let quantized = Kind(rawValue: "quantized")
        /// Compressed sparse rows: row starts, column gaps and an encoding of the entries' values. The
        /// manifest spelling is `sparse`.
        public static let sparse = Kind(rawValue: "sparse")
        /// Factors whose product (`Method`) is the weight; format 1.2. The manifest spelling is
        /// `factored`.
        public static let factored = Kind(rawValue: "factored")

        /// One stream of the elements of the tensor viewed as `rows` × `columns` (its first dimension
        /// by the rest), column by column: values that repeat down the columns (a windowed DFT basis)
        /// come together for an LZ coder; format 1.5. The manifest spelling is `transposed`.
        public static let transposed = Kind(rawValue: "transposed")

        /// The tensor as blocks of `block_rows` rows (along its first dimension), each stored by an
        /// elementwise encoding of its own, so that each block's streams get Huffman tables fitted to
        /// it: a classifier over 18,710 characters whose rows each have their own scale; format 1.6.
        /// The manifest spelling is `blocks`.
        public static let blocks = Kind(rawValue: "blocks")

        /// Every kind this Pith reads, in the order docs/container-format.md lists them.
        public static let known: [Kind] = [.dense, .planes, .floatSplit, .strings, .codebook, .quantized, .sparse, .factored, .transposed, .blocks]

        /// The kinds that hold plain elements, lossless (`dense`, `planes`, `float-split`): the
        /// encodings of sparse values and of factors.
        public static let elementwise: [Kind] = [.dense, .planes, .floatSplit]

        /// The kinds a factor of a `factored` encoding may have: elementwise float32, and since 1.3
        /// `codebook`, `quantized` or `sparse` (a factor quantized on its own).
        public static let factorKinds: [Kind] = elementwise + [.codebook, .quantized, .sparse]

        public var description: String { rawValue }
    }
}
