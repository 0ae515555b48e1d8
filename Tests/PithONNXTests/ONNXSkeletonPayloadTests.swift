import Foundation
import Testing
import PithIR
@testable import PithONNX
import PithTestSupport

/// A skeleton lists its slots with the type and shape the reader gives their tensors, and a model
/// stored as its skeleton followed by its tensors' data (`ONNXSkeletonPayload`, the whole-file
/// form's `onnx-skeleton-1` frame) packs into the very bytes of the file again.
@Suite struct ONNXSkeletonPayloadTests {
    /// Fixtures in onnx's canonical encoding: every slot kind — every dtype and a string tensor,
    /// every typed field and an empty `raw_data`, Constant scalars and lists, sparse tensors with
    /// linear and coordinate indices, subgraphs, a custom operator named Constant.
    static let byteForByte = [
        "onnx/dtypes-raw.onnx", "onnx/typed-fields.onnx", "onnx/constants-sparse.onnx", "onnx/custom-constants.onnx",
        "onnx/subgraphs.onnx", "onnx/stft-frontend.onnx", "lenet-300-100.onnx",
    ]

    static func read(_ fixture: String) throws -> (bytes: [UInt8], model: Model, skeleton: [UInt8]) {
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: Fixtures.path(fixture))))
        let (model, skeleton) = try bytes.withUnsafeBytes { try ONNXReader.readWithSkeleton(bytes: $0, name: fixture) }
        return (bytes, model, skeleton)
    }

    @Test(arguments: byteForByte)
    func slotsListTheReadersTensors(fixture: String) throws {
        let (_, model, skeleton) = try Self.read(fixture)
        let slots = try ONNXSkeleton.slots(of: skeleton, file: fixture)
        #expect(slots.map(\.name) == model.tensors.map(\.name))
        for (slot, tensor) in zip(slots, model.tensors) {
            #expect(slot.dtype == tensor.dtype, "\(tensor.name)")
            if let shape = slot.shape {
                #expect(shape == tensor.shape, "\(tensor.name)")
                if case .dense(let buffer) = tensor.storage { #expect(slot.denseBytes == buffer.count, "\(tensor.name)") }
            } else {
                #expect(tensor.shape.count == 1, "\(tensor.name): only a Constant's list has no shape in the skeleton")
            }
        }
    }

    @Test func constantListsAndStringsHaveNoLengthInTheSkeleton() throws {
        let (_, model, skeleton) = try Self.read("onnx/constants-sparse.onnx")
        let slots = try ONNXSkeleton.slots(of: skeleton, file: "c")
        #expect(slots.contains { $0.shape == nil }, "the fixture has a Constant value_floats or value_ints")
        #expect(slots.filter { $0.shape == nil }.allSatisfy { $0.denseBytes == nil })
        let strings = try ONNXSkeleton.slots(of: try Self.read("onnx/dtypes-raw.onnx").skeleton, file: "d").filter { $0.dtype == .string }
        #expect(!strings.isEmpty && strings.allSatisfy { $0.denseBytes == nil })
        #expect(model.tensors.count == slots.count)
    }

    @Test(arguments: byteForByte)
    func aPayloadPacksIntoTheFileByteForByte(fixture: String) throws {
        let (bytes, model, skeleton) = try Self.read(fixture)
        let payload = try #require(try ONNXSkeletonPayload.encode(skeleton: skeleton, tensors: model.tensors, file: fixture))
        let back = try ONNXSkeletonPayload.modelFile(payload, file: fixture, maximumBytes: 1 << 26)
        #expect(back == bytes)
    }

    @Test func theSkeletonsLengthIsAVarint() throws {
        let (_, model, skeleton) = try Self.read("onnx/dtypes-raw.onnx")
        let payload = try #require(try ONNXSkeletonPayload.encode(skeleton: skeleton, tensors: model.tensors, file: "d"))
        var varint: [UInt8] = []
        ONNXSkeletonPayload.appendVarint(UInt64(skeleton.count), to: &varint)
        #expect(Array(payload.prefix(varint.count)) == varint)
        #expect(Array(payload[varint.count..<varint.count + skeleton.count]) == skeleton)
    }

    @Test func aTensorThatDoesNotFitItsSlotIsNotEncoded() throws {
        let (_, model, skeleton) = try Self.read("onnx/dtypes-raw.onnx")
        var tensors = model.tensors
        let index = try #require(tensors.firstIndex { $0.dtype == .float32 && $0.count > 1 })
        tensors[index].shape = [tensors[index].count * 2]
        #expect(try ONNXSkeletonPayload.encode(skeleton: skeleton, tensors: tensors, file: "d") == nil)
        #expect(try ONNXSkeletonPayload.encode(skeleton: skeleton, tensors: Array(model.tensors.dropLast()), file: "d") == nil)
    }

    /// Damaged payloads are refused by name (malformed: exit 65).
    @Test func damagedPayloadsAreRefusedByName() throws {
        let (_, model, skeleton) = try Self.read("onnx/dtypes-raw.onnx")
        let payload = try #require(try ONNXSkeletonPayload.encode(skeleton: skeleton, tensors: model.tensors, file: "d"))
        func refusal(_ bytes: [UInt8]) throws -> String {
            let error = try #require(throws: ONNXError.self) { try ONNXSkeletonPayload.modelFile(bytes, file: "p.pith", maximumBytes: 1 << 26) }
            #expect(error.exitKind == .data)
            return error.description
        }
        // A skeleton length past the payload.
        var head: [UInt8] = [], long: [UInt8] = []
        ONNXSkeletonPayload.appendVarint(UInt64(skeleton.count), to: &head)
        ONNXSkeletonPayload.appendVarint(UInt64(payload.count), to: &long)
        #expect(try refusal(long + payload.dropFirst(head.count)).contains("the skeleton's length"))
        // Data too short for the slots, and bytes after the last one.
        #expect(try refusal(Array(payload.dropLast(3))).contains("slot "))
        #expect(try refusal(payload + [0, 0]).contains("follow the data of the last"))
        // A varint cut short, and one longer than 64 bits.
        #expect(try refusal([0x80]).contains("cut short"))
        #expect(try refusal([UInt8](repeating: 0xFF, count: 11)).contains("longer than 64 bits"))
    }
}
