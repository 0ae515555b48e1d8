import Foundation
import Testing
import PithIR
@testable import PithONNX
import PithTestSupport

/// The skeleton and the writer visit the tensor slots the reader lists, in the same order
/// (`TensorSlots`): reading a file, stripping it and writing the skeleton back with the tensors
/// read gives the file again.
@Suite struct ONNXSkeletonTests {
    static let fixtures: [String] =
        (try? Fixtures.manifests())?
        .filter { $0.manifest.format == "onnx" }.map(\.fixture) ?? []

    /// Files in onnx's canonical encoding (onnx serialises what it reads of them to the same bytes),
    /// with no external data: for them the round trip is byte for byte, whichever field holds each
    /// tensor (`typed-fields`: every typed field; `dtypes-raw`: an empty `raw_data`) and whichever
    /// indices a sparse tensor has (`constants-sparse`: linear and coordinates).
    static let byteForByte = [
        "onnx/custom-constants.onnx", "lenet-300-100.onnx", "onnx/subgraphs.onnx", "onnx/typed-fields.onnx", "onnx/constants-sparse.onnx",
        "onnx/dtypes-raw.onnx", "onnx/stft-frontend.onnx",
    ]

    func temporaryFolder() throws -> URL {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("pith-onnx-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        return folder
    }

    /// Writes the skeleton of `fixture` back with the tensors read from it; returns the new file.
    func roundTrip(_ fixture: String, in folder: URL) throws -> (source: Model, restored: String) {
        let path = Fixtures.path(fixture)
        let model = try ONNXReader.read(contentsOf: path)
        let skeleton = try ONNXSkeleton.strip(contentsOf: path)
        let output = folder.appendingPathComponent("back.onnx").path
        let written = try ONNXWriter.write(skeleton: skeleton, tensors: model.tensors, file: path, to: output)
        #expect(written == (try FileManager.default.attributesOfItem(atPath: output)[.size] as? Int))
        return (model, output)
    }

    @Test(arguments: byteForByte)
    func writingTheSkeletonBackGivesTheFileByteForByte(fixture: String) throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let (_, restored) = try roundTrip(fixture, in: folder)
        let original = try Data(contentsOf: URL(fileURLWithPath: Fixtures.path(fixture)))
        #expect(try Data(contentsOf: URL(fileURLWithPath: restored)) == original)
    }

    @Test(arguments: fixtures + ["lenet-300-100.onnx"])
    func writingTheSkeletonBackGivesEveryTensor(fixture: String) throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let (source, restored) = try roundTrip(fixture, in: folder)
        let back = try ONNXReader.read(contentsOf: restored)
        #expect(back.tensors.map(\.name) == source.tensors.map(\.name))
        for (a, b) in zip(source.tensors, back.tensors) {
            #expect(a.dtype == b.dtype && a.shape == b.shape, "\(a.name)")
            #expect(a.storage == b.storage, "\(a.name)")
            #expect(a.origin == b.origin && a.consumer == b.consumer, "\(a.name)")
        }
    }

    /// A `Constant` of a custom domain is not ONNX's Constant: its `value_floats` and `value_ints`
    /// are ordinary attributes, kept in the skeleton; only its TENSOR attribute is a tensor.
    @Test func aCustomDomainConstantKeepsItsNumbersInTheSkeleton() throws {
        let path = Fixtures.path("onnx/custom-constants.onnx")
        let model = try ONNXReader.read(contentsOf: path)
        #expect(model.tensors.map(\.name) == ["w", "c_onnx", "custom/value", "gate/else_branch/e_onnx", "gate/then_branch/b_onnx"])
        let skeleton = try ONNXSkeleton.strip(contentsOf: path)
        let stripped = try ONNXReader.read(skeleton: skeleton, tensors: model.tensors, file: "skeleton")
        let custom = try #require(stripped.graph?.nodes.first { $0.domain == "pith.custom" })
        guard case .floats(let floats)? = custom.attribute("value_floats"), case .ints(let ints)? = custom.attribute("value_ints"),
            case .float(let scalar)? = custom.attribute("value_float")
        else {
            Issue.record("the custom Constant's attributes changed kind: \(custom.attributes)"); return
        }
        #expect(floats == [1.5, -2.0, 0.25, 8.0])
        #expect(ints == [4, -5])
        #expect(scalar == 0.75)
        // The numbers of ONNX's own Constants (c_onnx: 0.5, -1.25, 3; b_onnx: 2, 0, -0.5) are not in the
        // skeleton; the custom Constant's are.
        func appears(_ value: Float) -> Bool {
            let pattern = withUnsafeBytes(of: value.bitPattern.littleEndian) { Array($0) }
            return (0...(skeleton.count - 4)).contains { Array(skeleton[$0..<$0 + 4]) == pattern }
        }
        #expect(![Float(-1.25), 3, -0.5].contains(where: appears))
        #expect([Float(1.5), -2, 0.25, 8].allSatisfy(appears))
    }

    /// One parse gives what the two calls give.
    @Test(arguments: fixtures + ["lenet-300-100.onnx"])
    func readWithSkeletonEqualsReadAndStrip(fixture: String) throws {
        let path = Fixtures.path(fixture)
        let (model, skeleton) = try ONNXReader.readWithSkeleton(contentsOf: path)
        #expect(skeleton == (try ONNXSkeleton.strip(contentsOf: path)))
        let alone = try ONNXReader.read(contentsOf: path)
        #expect(model.tensors.map(\.name) == alone.tensors.map(\.name))
        for (a, b) in zip(model.tensors, alone.tensors) {
            #expect(a.dtype == b.dtype && a.shape == b.shape && a.storage == b.storage, "\(a.name)")
            #expect(a.origin == b.origin && a.consumer == b.consumer, "\(a.name)")
        }
        // Graph and functions are not Equatable: their full descriptions are compared.
        #expect(String(describing: model.graph) == String(describing: alone.graph))
        #expect(String(describing: model.functions) == String(describing: alone.functions))
        #expect(model.metadata == alone.metadata)
    }

    /// The tag of every tensor slot of a skeleton (`TensorDataField`), by tensor name: nil where it
    /// has none (the data goes into `raw_data`).
    static func tags(_ skeleton: [UInt8]) throws -> [String: UInt8?] {
        try skeleton.withUnsafeBytes { bytes in
            try #require(
                try ProtobufCalls.withUnpackedModel(bytes) { model -> [String: UInt8?] in
                    var tags: [String: UInt8?] = [:]
                    try TensorSlots.forEach(in: model, file: "skeleton") { slot, place in
                        guard case .tensor(let t) = slot else { return }
                        let raw = repeated(t.pointee.has_raw_data == 0 ? 0 : t.pointee.raw_data.len, t.pointee.raw_data.data)
                        #expect(raw.count <= 1, "\(TensorSlots.tensorName(slot, at: place))")
                        tags[TensorSlots.tensorName(slot, at: place)] = raw.first
                    }
                    return tags
                })
        }
    }

    /// A tensor whose data is in its type's typed field is tagged with the field's number; a tensor
    /// in `raw_data` (and a string tensor) is not.
    @Test func theSkeletonTagsEachTensorWithTheTypedFieldItsDataWasIn() throws {
        let tags = try Self.tags(ONNXSkeleton.strip(contentsOf: Fixtures.path("onnx/typed-fields.onnx")))
        let expected: [String: UInt8?] = [
            "f_float_data": 4, "f_double_data": 10, "f_int64_data": 7, "f_int32": 5, "f_int16": 5, "f_int8": 5, "f_uint16": 5,
            "f_uint8": 5, "f_bool": 5, "f_float16": 5, "f_bfloat16": 5, "f_float8e4m3fn": 5, "f_float8e5m2": 5, "f_int4": 5,
            "f_uint2": 5, "f_float6e2m3": 5, "f_uint32": 11, "f_uint64": 11, "f_complex64": 4,
        ]
        #expect(tags == expected)
        let raw = try Self.tags(ONNXSkeleton.strip(contentsOf: Fixtures.path("onnx/dtypes-raw.onnx")))
        #expect(raw.count == 30 && raw.values.allSatisfy { $0 == nil })
    }

    /// A skeleton without tags — every skeleton written before them — restores every tensor into
    /// `raw_data`, as Pith always did, with the same values.
    @Test func aSkeletonWithoutTagsRestoresEveryTensorIntoRawData() throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = Fixtures.path("onnx/typed-fields.onnx")
        let source = try ONNXReader.read(contentsOf: path)
        let untagged = try ONNXSkeleton.strip(contentsOf: path).withUnsafeBytes { bytes in
            try #require(
                try ProtobufCalls.withUnpackedModel(bytes) { model -> [UInt8] in
                    try TensorSlots.forEach(in: model, file: "skeleton") { slot, _ in
                        if case .tensor(let t) = slot { t.pointee.has_raw_data = 0 }
                    }
                    return ProtobufCalls.pack(model)
                })
        }
        #expect(try Self.tags(untagged).values.allSatisfy { $0 == nil })
        let output = folder.appendingPathComponent("untagged.onnx").path
        _ = try ONNXWriter.write(skeleton: untagged, tensors: source.tensors, file: path, to: output)
        let written = try Array(Data(contentsOf: URL(fileURLWithPath: output)))
        try written.withUnsafeBytes { bytes in
            _ = try #require(
                try ProtobufCalls.withUnpackedModel(bytes) { model in
                    try TensorSlots.forEach(in: model, file: output) { slot, place in
                        guard case .tensor(let t) = slot else { return }
                        let p = t.pointee
                        let typed = p.n_float_data + p.n_int32_data + p.n_int64_data + p.n_double_data + p.n_uint64_data
                        #expect(p.has_raw_data == 1 && typed == 0, "\(TensorSlots.tensorName(slot, at: place))")
                    }
                })
        }
        let back = try ONNXReader.read(contentsOf: output)
        #expect(back.tensors.map(\.name) == source.tensors.map(\.name))
        for (a, b) in zip(source.tensors, back.tensors) { #expect(a.dtype == b.dtype && a.shape == b.shape && a.storage == b.storage, "\(a.name)") }
    }

    /// A skeleton holds no data: a `raw_data` longer than one byte, or a tag that names a field the
    /// tensor's type does not use, is refused, naming the tensor.
    @Test(arguments: [
        ([UInt8]([7]), "tensor `fc1.weight`: its ONNX skeleton tags its data as field 7, which does not hold float32"),
        ([UInt8]([0, 0, 0]), "tensor `fc1.weight`: its ONNX skeleton holds 3 bytes of raw_data"),
    ])
    func aSkeletonThatHoldsDataOrAWrongTagIsRefused(raw: [UInt8], message: String) throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = Fixtures.path("lenet-300-100.onnx")
        let source = try ONNXReader.read(contentsOf: path)
        let damaged = try ONNXSkeleton.strip(contentsOf: path).withUnsafeBytes { bytes in
            try #require(
                raw.withUnsafeBufferPointer { tag in
                    ProtobufCalls.withUnpackedModel(bytes) { model -> [UInt8] in
                        let fc1 = messages(model.pointee.graph!.pointee.n_initializer, model.pointee.graph!.pointee.initializer)[0]
                        let saved = (fc1.pointee.has_raw_data, fc1.pointee.raw_data)
                        defer { (fc1.pointee.has_raw_data, fc1.pointee.raw_data) = saved }
                        fc1.pointee.has_raw_data = 1
                        fc1.pointee.raw_data.len = raw.count
                        fc1.pointee.raw_data.data = UnsafeMutablePointer(mutating: tag.baseAddress)
                        return ProtobufCalls.pack(model)
                    }
                })
        }
        let output = folder.appendingPathComponent("refused.onnx").path
        let error = try #require(throws: ONNXError.self) { try ONNXWriter.write(skeleton: damaged, tensors: source.tensors, file: "c.pith", to: output) }
        #expect(error.kind == .malformed && error.message.hasPrefix(message), "\(error)")
        // `pith check` reads the skeleton with stand-ins: the same refusal.
        #expect(throws: ONNXError.self) { try ONNXReader.read(skeleton: damaged, tensors: source.tensors, file: "c.pith") }
    }
}
