import Foundation
import Testing
import PithIR
@testable import PithONNX
import PithTestSupport

/// Reading a model file leaves the large `raw_data` of its initializers in the mapped file
/// (`InitializerViews`): the tensors are views, and the model, its skeleton and its errors are
/// exactly those of reading the same bytes from memory (which copies everything), including where
/// the wire format is ambiguous (a field given twice).
@Suite struct ONNXInitializerViewsTests {
    /// Protobuf wire encoding, enough to write small models by hand.
    struct Wire {
        var bytes: [UInt8] = []
        mutating func varint(_ value: UInt64) {
            var v = value
            while v >= 0x80 { bytes.append(UInt8(truncatingIfNeeded: v) | 0x80); v >>= 7 }
            bytes.append(UInt8(v))
        }
        mutating func int(_ field: Int, _ value: UInt64) { varint(UInt64(field << 3)); varint(value) }
        mutating func data(_ field: Int, _ value: [UInt8]) { varint(UInt64(field << 3 | 2)); varint(UInt64(value.count)); bytes += value }
        mutating func text(_ field: Int, _ value: String) { data(field, Array(value.utf8)) }
    }

    /// A float32 initializer `name` of `count` elements; `rawData` as given, each one a field.
    func tensor(_ name: String, count: Int, rawData: [[UInt8]]) -> [UInt8] {
        var t = Wire()
        t.int(1, UInt64(count))  // dims
        t.int(2, 1)  // data_type FLOAT
        for raw in rawData { t.data(9, raw) }
        t.text(8, name)
        return t.bytes
    }

    func floats(_ count: Int, seed: Int) -> [UInt8] {
        (0..<count).map { Float(($0 &* 7919 &+ seed) % 1000) / 1000 - 0.5 }.withUnsafeBytes { Array($0) }
    }

    /// A model of an Identity node over the first initializer; `graphs` are the contents of each
    /// `graph` field (protobuf merges them).
    func model(graphs: [[[UInt8]]]) -> [UInt8] {
        var m = Wire()
        m.int(1, 8)  // ir_version
        var opset = Wire()
        opset.int(2, 13)
        m.data(8, opset.bytes)
        for (k, initializers) in graphs.enumerated() {
            var g = Wire()
            if k == 0 {
                var node = Wire()
                node.text(1, "w0")
                node.text(2, "y")
                node.text(4, "Identity")
                g.data(1, node.bytes)
                g.text(2, "g")
                var output = Wire()
                output.text(1, "y")
                g.data(12, output.bytes)
            }
            for t in initializers { g.data(5, t) }
            m.data(7, g.bytes)
        }
        return m.bytes
    }

    /// Reads `bytes` from a file (views) and from memory (copies) and checks they agree: tensors,
    /// skeleton, or the error. Returns the model read from the file.
    @discardableResult
    func readBothWays(_ bytes: [UInt8]) throws -> Model? {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("pith-views-\(UUID().uuidString).onnx").path
        defer { unlink(path) }
        #expect(FileManager.default.createFile(atPath: path, contents: Data(bytes)))
        let copied: Result<Model, Error> = Result { try bytes.withUnsafeBytes { try ONNXReader.read(bytes: $0, name: path) } }
        let viewed: Result<(model: Model, skeleton: [UInt8]), Error> = Result { try ONNXReader.readWithSkeleton(contentsOf: path) }
        switch (copied, viewed) {
        case (.success(let a), .success(let b)):
            #expect(a.tensors.map(\.name) == b.model.tensors.map(\.name))
            #expect(a.tensors.map(\.shape) == b.model.tensors.map(\.shape))
            for (x, y) in zip(a.tensors, b.model.tensors) {
                guard case .dense(let p) = x.storage, case .dense(let q) = y.storage else {
                    Issue.record("\(x.name): not dense")
                    continue
                }
                #expect(p.bytes == q.bytes, "\(x.name)")
            }
            #expect(try ONNXSkeleton.strip(contentsOf: path) == b.skeleton)
            return b.model
        case (.failure(let a), .failure(let b)):
            #expect("\(a)" == "\(b)")
            return nil
        default:
            Issue.record("read from memory: \(copied); from the file: \(viewed)")
            return nil
        }
    }

    @Test func largeInitializersAreViewsOfTheFile() throws {
        let initializers = [tensor("w0", count: 2048, rawData: [floats(2048, seed: 1)]), tensor("small", count: 8, rawData: [floats(8, seed: 2)])]
        let model = try #require(try readBothWays(model(graphs: [initializers])))
        let views = model.tensors.map { tensor -> Bool in
            guard case .dense(let buffer) = tensor.storage else { return false }
            return buffer.isMappedView
        }
        #expect(views == [true, false])
        let w0 = model.tensors[0]
        guard case .dense(let buffer) = w0.storage else { return }
        let expected = floats(2048, seed: 1).withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        #expect(buffer.withUnsafeBufferPointer(as: Float.self) { Array($0) } == expected)
    }

    @Test func theLenetFixtureReadsTheSameEitherWay() throws {
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: Fixtures.path("lenet-300-100.onnx"))))
        let model = try #require(try readBothWays(bytes))
        #expect(model.tensors.contains { if case .dense(let b) = $0.storage { return b.isMappedView } else { return false } })
    }

    /// `raw_data` given twice: the last wins, as protobuf-c reads it; the tensor stays in the message.
    @Test func aRepeatedRawDataFieldIsLeftToProtobuf() throws {
        try readBothWays(model(graphs: [[tensor("w0", count: 2048, rawData: [floats(2048, seed: 3), floats(2048, seed: 4)])]]))
    }

    /// `graph` given twice: protobuf merges the two (initializers of both); nothing is taken out.
    @Test func aRepeatedGraphFieldIsLeftToProtobuf() throws {
        let model = try #require(
            try readBothWays(
                model(graphs: [[tensor("w0", count: 2048, rawData: [floats(2048, seed: 5)])], [tensor("w1", count: 2048, rawData: [floats(2048, seed: 6)])]])))
        #expect(model.tensors.map(\.name) == ["w0", "w1"])
    }

    /// A raw_data length that does not fit the shape is the same error from a view as from a copy.
    @Test func aWrongRawDataLengthIsTheSameError() throws {
        let bytes = model(graphs: [[tensor("w0", count: 2048, rawData: [floats(2047, seed: 7)])]])
        #expect(try readBothWays(bytes) == nil)
    }
}
