extension Manifest.StreamEntry {
    /// The `dictionary` of a zstd stream made with the UTF-8 of `source.configuration` (1.4).
    public static let configurationDictionary = "configuration"
    /// Every dictionary this Pith reads.
    public static let knownDictionaries = [configurationDictionary]

    /// How a stream's stored bytes decode: the manifest's `coding` (docs/container-format.md,
    /// "Streams").
    ///
    /// Codable as its manifest spelling. A coding this Pith does not know still decodes, so that the
    /// reader can refuse it by name ("coding `…` is not one this Pith knows").
    public struct Coding: RawRepresentable, Hashable, Sendable, Codable, CustomStringConvertible {
        /// The manifest spelling.
        public var rawValue: String

        public init(rawValue: String) { self.rawValue = rawValue }

        /// The decoded bytes themselves. The manifest spelling is `raw`.
        public static let raw = Coding(rawValue: "raw")
        /// A 4-stream canonical Huffman block of `symbols` symbols of `symbol_bits` bits, coded with
        /// `code_lengths`. The manifest spelling is `huffman`.
        public static let huffman = Coding(rawValue: "huffman")
        /// One zstd frame declaring its content size; for metadata such as the source skeleton;
        /// format 1.1. The manifest spelling is `zstd`.
        public static let zstd = Coding(rawValue: "zstd")

        /// Every coding this Pith reads, in the order docs/container-format.md lists them.
        public static let known: [Coding] = [.raw, .huffman, .zstd]

        public var description: String { rawValue }
    }
}
