extension Manifest.Encoding {
    /// How quantized codes map to values: the manifest's `encoding.scheme`, for `kind` `quantized`
    /// (docs/container-format.md, "Tensor encodings").
    ///
    /// Codable as its manifest spelling. A scheme this Pith does not know still decodes, so that the
    /// reader can refuse it by name ("quantization scheme `…` is unknown").
    public struct Scheme: RawRepresentable, Hashable, Sendable, Codable, CustomStringConvertible {
        /// The manifest spelling.
        public var rawValue: String

        public init(rawValue: String) { self.rawValue = rawValue }

        /// Integer codes of `bits` bits with a scale (and zero point) per tensor or per channel:
        /// element = scale · (code − zero_point). The manifest spelling is `linear`.
        public static let linear = Scheme(rawValue: "linear")
        /// IEEE 754 binary16 bit patterns, low and high bytes in two streams. The manifest spelling is
        /// `float16`.
        public static let float16 = Scheme(rawValue: "float16")
        /// bfloat16 bit patterns, low and high bytes in two streams. The manifest spelling is
        /// `bfloat16`.
        public static let bfloat16 = Scheme(rawValue: "bfloat16")

        /// Every scheme this Pith reads, in the order docs/container-format.md lists them.
        public static let known: [Scheme] = [.linear, .float16, .bfloat16]

        public var description: String { rawValue }
    }
}
