import Foundation
import Testing
import PithIR
@testable import PithInspect

@Suite struct StatisticsTests {
    func tensor(_ name: String, _ values: [Float], shape: [Int]? = nil, consumer: Consumer? = nil) -> Tensor {
        Tensor(
            name: name, dtype: .float32, shape: shape ?? [values.count], storage: .dense(TensorBuffer(values: values)),
            origin: .dataset(path: name), consumer: consumer)
    }

    @Test func float32Statistics() {
        let s = TensorStatistics(measuring: tensor("w", [0, -0.0, 1, 2, 3, -2, .nan, .infinity]), distinctCap: 100)
        #expect(s.count == 8)
        #expect(s.nonzero == 6)  // NaN and ∞ are not zero
        #expect(s.sparsity == 0.25)
        #expect(s.distinct == 7)  // 0 (both signs), 1, 2, 3, −2, NaN, ∞
        #expect(!s.distinctCapped)
        #expect(s.nonFinite == 2)
        #expect(s.min == -2 && s.max == 3)
        #expect(s.mean == 4.0 / 6.0)
        let mean = 4.0 / 6.0
        let variance = [0, 0, 1, 2, 3, -2].map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / 6
        #expect(abs(s.std! - variance.squareRoot()) < 1e-12)
        #expect(s.bitsPerWeight == 32 && s.bytes == 32)
    }

    @Test func distinctIsExactUpToTheCapThenALowerBound() {
        let values = (0..<1000).map { Float($0 % 300) }
        let exact = TensorStatistics(measuring: tensor("w", values), distinctCap: 300)
        #expect(exact.distinct == 300)
        let capped = TensorStatistics(measuring: tensor("w", values), distinctCap: 50)
        #expect(capped.distinct == 50 && capped.distinctCapped)
    }

    @Test func otherTypesGoThroughTheDecoder() {
        let int8 = Tensor(
            name: "q", dtype: .int8, shape: [4], storage: .dense(TensorBuffer(bytes: [0, 0xFF, 2, 0x80])),
            origin: .dataset(path: "q"))
        let s = TensorStatistics(measuring: int8, distinctCap: 10)
        #expect(s.min == -128 && s.max == 2 && s.nonzero == 3 && s.distinct == 4 && s.bitsPerWeight == 8)
        let packed = Tensor(
            name: "p", dtype: .uint4, shape: [3], storage: .dense(TensorBuffer(bytes: [0x21, 0x0F])),
            origin: .dataset(path: "p"))
        let p = TensorStatistics(measuring: packed, distinctCap: 10)
        #expect(p.min == 1 && p.max == 15 && p.bytes == 2)
        let strings = Tensor(name: "s", dtype: .string, shape: [3], storage: .strings([[65], [], [65]]), origin: .dataset(path: "s"))
        let t = TensorStatistics(measuring: strings, distinctCap: 10)
        #expect(t.nonzero == 2 && t.distinct == 2 && t.min == nil)
    }

    @Test func reportTotalsLayersSortingAndTop() {
        let fc1 = Consumer(op: "Gemm", name: "fc1")
        let model = Model(
            format: .onnx,
            tensors: [
                tensor("a.weight", Array(repeating: 1, count: 10), consumer: fc1),
                tensor("a.bias", [0, 0], consumer: fc1),
                tensor("b.weight", Array(repeating: 2, count: 30)),
            ])
        let report = Inspector.inspect(model, file: "m.onnx", sort: .size, top: 2)
        #expect(report.tensors.map(\.name) == ["b.weight", "a.weight"])
        #expect(report.totals.tensors == 3 && report.totals.count == 42 && report.totals.nonzero == 40)
        #expect(report.totals.bytes == 168)
        #expect(report.layers.map(\.layer) == ["fc1", ""])
        #expect(report.layers[0].tensors == 2 && report.layers[0].count == 12)
        let byName = Inspector.inspect(model, file: "m.onnx", sort: .name)
        #expect(byName.tensors.map(\.name) == ["a.bias", "a.weight", "b.weight"])
    }

    @Test func jsonUsesTheSchemaKeys() throws {
        let model = Model(format: .onnx, tensors: [tensor("w", [1, 0])])
        let json = Inspector.inspect(model, file: "m.onnx").renderJSON()
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
        #expect(object["file"] as? String == "m.onnx")
        #expect(object["format"] as? String == "onnx")
        let rows = try #require(object["tensors"] as? [[String: Any]])
        #expect(rows.first?["bits_per_weight"] as? Double == 32)
        #expect(rows.first?["nonzero"] as? Int == 1)
        let totals = try #require(object["totals"] as? [String: Any])
        #expect(totals["count"] as? Int == 2)
    }

    @Test func csvQuotesFieldsThatNeedIt() {
        let model = Model(format: .onnx, tensors: [tensor("a,\"b\"", [1])])
        let csv = Inspector.inspect(model, file: "m").renderCSV()
        #expect(csv.contains("\"a,\"\"b\"\"\""))
    }
}
