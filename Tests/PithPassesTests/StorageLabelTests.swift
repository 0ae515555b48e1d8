import Testing
import PithIR
@testable import PithPasses

/// The one storage label (`TensorStorage.label(dtype:)`) every report's `encoding` column shows.
@Suite struct StorageLabelTests {
    func quantized(_ scheme: QuantizedStorage.Scheme, scales: [Float] = [1], zeroPoints: [Int32] = [0]) -> QuantizedStorage {
        QuantizedStorage(scheme: scheme, scales: scales, zeroPoints: zeroPoints, codes: [0, 1])
    }

    @Test func everyStorageKindHasItsLabel() {
        let codebook = CodebookStorage(bits: 6, centroids: [0, 1], channels: 1, indices: [0, 1], zeroIsReserved: true)
        let sparse = { (values: SparseStorage.EntryValues) in
            TensorStorage.sparse(SparseStorage(rows: 1, columns: 2, indexBits: 5, rowStarts: [0, 1], gaps: [1], fillers: 0, values: values))
        }
        let cases: [(TensorStorage, DType, String)] = [
            (.dense(TensorBuffer(values: [Float](repeating: 0, count: 2))), .float32, "dense float32"),
            (.dense(TensorBuffer(values: [Float](repeating: 0, count: 2))), .float16, "dense float16"),
            (.codebook(codebook), .float32, "codebook(6)"),
            (.quantized(quantized(.linear(bits: 8, signed: true))), .float32, "int8"),
            (.quantized(quantized(.linear(bits: 4, signed: true), scales: [1, 2], zeroPoints: [0, 0])), .float32, "int4 per-channel"),
            (.quantized(quantized(.linear(bits: 8, signed: true), zeroPoints: [3])), .float32, "int8 affine"),
            (.quantized(quantized(.linear(bits: 8, signed: true), scales: [1, 2], zeroPoints: [0, 3])), .float32, "int8 per-channel affine"),
            (.quantized(quantized(.linear(bits: 8, signed: false))), .float32, "uint8"),
            (.quantized(quantized(.float16, scales: [], zeroPoints: [])), .float32, "float16"),
            (.quantized(quantized(.bfloat16, scales: [], zeroPoints: [])), .float32, "bfloat16"),
            (sparse(.codebook(codebook)), .float32, "csr(5) + codebook(6)"),
            (sparse(.quantized(quantized(.linear(bits: 8, signed: true), scales: [1, 2], zeroPoints: [0, 0]))), .float32, "csr(5) + int8 per-channel"),
            (sparse(.dense(TensorBuffer(values: [Float(1)]))), .float32, "csr(5) + float32"),
            (.factored(FactoredStorage(method: .lowRank(rank: 20), rows: 2, columns: 1, factors: [])), .float32, "svd rank 20"),
            (
                .factored(
                    FactoredStorage(method: .tensorTrain(rowFactors: [2, 2], columnFactors: [2, 2], ranks: [1, 4, 1]), rows: 4, columns: 4, factors: [])),
                .float32, "tt ranks 1-4-1"
            ),
            (.factored(FactoredStorage(method: .circulant, rows: 2, columns: 2, factors: [])), .float32, "circulant"),
            (.factored(FactoredStorage(method: .separable(rank: 2), rows: 2, columns: 9, factors: [])), .float32, "separable rank 2"),
        ]
        for (storage, dtype, label) in cases {
            #expect(storage.label(dtype: dtype) == label)
        }
    }

    /// The compression report's `encoding` is the label of the tensor the run leaves in the model.
    @Test func compressionReportShowsTheTensorsLabel() throws {
        let values = randomWeights(64 * 40, seed: 3)
        var model = Model(
            format: .onnx,
            tensors: [
                floatTensor("a", values, shape: [64, 40]),
                floatTensor("b", values, shape: [40, 64]),
                floatTensor("c", values, shape: [64, 40]),
            ])
        let report = try Compressor.run(
            Recipe(steps: [
                .init(select: TensorSelector(names: ["a", "b"]), prune: PruneOptions(sparsity: 0.9)),
                .init(select: TensorSelector(names: ["a"]), cluster: ClusterOptions(bits: 4)),
                .init(select: TensorSelector(names: ["b"]), quantize: QuantizeOptions(format: .int8, granularity: .channel, mode: .affine)),
                .init(select: TensorSelector(names: ["c"]), factorize: FactorizeOptions(rank: 4)),
            ]), on: &model)
        let encodings = report.tensors.map(\.encoding)
        try #require(encodings.count == 3)
        #expect(encodings[0].hasPrefix("csr(") && encodings[0].hasSuffix(") + codebook(4)"))
        #expect(encodings[1].hasPrefix("csr(") && encodings[1].hasSuffix(") + int8 per-channel affine"))
        #expect(encodings[2] == "svd rank 4")
        for row in report.tensors {
            let tensor = try #require(model.tensors.first { $0.name == row.tensor })
            #expect(row.encoding == tensor.storageLabel)
        }
    }
}
