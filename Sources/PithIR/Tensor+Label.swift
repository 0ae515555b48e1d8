extension TensorStorage {
    /// How this storage holds a tensor of `dtype`, as one short label — the `encoding` column of
    /// every report (the compression report, a container's summary):
    ///
    /// | storage | label |
    /// |---|---|
    /// | dense (or strings) | `dense float32` |
    /// | codebook | `codebook(6)` (bits per index) |
    /// | quantized | `int8`, `int4 per-channel`, `int8 affine`, `int8 per-channel affine`, `uint8`, `float16`, `bfloat16` |
    /// | sparse | `csr(5) + ` and the label of its entries: `csr(5) + codebook(6)`, `csr(4) + int8 per-channel`, `csr(5) + float32` |
    /// | factored | `svd rank 20`, `tt ranks 1-4-4-1`, `circulant`, `separable rank 2`; with stored factors `svd rank 64 (csr(8) + int8; int8)` |
    ///
    /// "per-channel" means more than one scale; "affine" a nonzero zero point.
    public func label(dtype: DType) -> String {
        switch self {
        case .dense, .strings: return "dense \(dtype.rawValue)"
        case .codebook(let codebook): return Self.label(codebook)
        case .quantized(let quantized): return Self.label(quantized)
        case .factored(let factored): return Self.label(factored)
        case .sparse(let sparse):
            let entries: String
            switch sparse.values {
            case .dense: entries = dtype.rawValue
            case .codebook(let codebook): entries = Self.label(codebook)
            case .quantized(let quantized): entries = Self.label(quantized)
            }
            return "csr(\(sparse.indexBits)) + \(entries)"
        }
    }

    static func label(_ codebook: CodebookStorage) -> String { "codebook(\(codebook.bits))" }

    static func label(_ quantized: QuantizedStorage) -> String {
        switch quantized.scheme {
        case .float16: return "float16"
        case .bfloat16: return "bfloat16"
        case .linear(let bits, let signed):
            return "\(signed ? "int" : "uint")\(bits)\(quantized.scales.count > 1 ? " per-channel" : "")\(quantized.isSymmetric ? "" : " affine")"
        }
    }

    static func label(_ factored: FactoredStorage) -> String {
        let method: String
        switch factored.method {
        case .lowRank(let rank): method = "svd rank \(rank)"
        case .tensorTrain(_, _, let ranks): method = "tt ranks \(ranks.map(String.init).joined(separator: "-"))"
        case .circulant: method = "circulant"
        case .separable(let rank): method = "separable rank \(rank)"
        }
        guard let encodings = factored.encodings else { return method }
        return method + " (" + encodings.map { $0.label(dtype: .float32) }.joined(separator: "; ") + ")"
    }
}

extension Tensor {
    /// How the tensor is stored, as one short label (`dense float32`, `csr(5) + codebook(6)`, …);
    /// see `TensorStorage.label(dtype:)`.
    public var storageLabel: String { storage.label(dtype: dtype) }
}
