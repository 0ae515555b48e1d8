extension Manifest.Encoding {
    /// How the factors of a factored tensor make the weight: the manifest's `encoding.method`, for
    /// `kind` `factored` (format 1.2; docs/container-format.md, "Tensor encodings").
    ///
    /// Codable as its manifest spelling. A method this Pith does not know still decodes, so that the
    /// reader can refuse it by name ("factorization method `…` is unknown").
    public struct Method: RawRepresentable, Hashable, Sendable, Codable, CustomStringConvertible {
        /// The manifest spelling.
        public var rawValue: String

        public init(rawValue: String) { self.rawValue = rawValue }

        /// W = A·B, A of `rows` × `rank` and B of `rank` × `columns`. The manifest spelling is
        /// `low-rank`.
        public static let lowRank = Method(rawValue: "low-rank")
        /// A chain of tensor-train cores over `row_factors`, `column_factors` and `ranks`. The manifest
        /// spelling is `tensor-train`.
        public static let tensorTrain = Method(rawValue: "tensor-train")
        /// A square matrix from its first column: W[i][j] = c[(i − j) mod n]. The manifest spelling is
        /// `circulant`.
        public static let circulant = Method(rawValue: "circulant")
        /// A 4-D kernel as `rank` sums of channel, height and width factors per filter. The manifest
        /// spelling is `separable`.
        public static let separable = Method(rawValue: "separable")

        /// Every method this Pith reads, in the order docs/container-format.md lists them.
        public static let known: [Method] = [.lowRank, .tensorTrain, .circulant, .separable]

        public var description: String { rawValue }
    }
}
