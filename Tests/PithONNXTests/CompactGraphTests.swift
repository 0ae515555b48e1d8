import Foundation
import Testing
import PithIR
@testable import PithONNX
import PithTestSupport

/// `ONNXWriter.writeCompact`: compressed tensors written as stored codes with the nodes that decode
/// them. Each written file is read back and its decoders run by `GraphDecoder` below, which must give
/// exactly the values of the dense restore.
@Suite struct CompactGraphTests {
    func temporaryFolder() throws -> URL {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("pith-compact-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        return folder
    }

    // MARK: Compressed storage built by hand (the passes live in another module)

    /// Symmetric linear codes of `bits` bits, one scale per index along axis 0 (or one in all).
    static func quantized(_ tensor: Tensor, bits: Int, perChannel: Bool) -> QuantizedStorage {
        let values = tensor.decodedFloats()
        let channels = perChannel ? tensor.shape[0] : 1, size = values.count / channels
        let qmax = Float((1 << (bits - 1)) - 1)
        var scales: [Float] = [], codes: [Int32] = []
        for c in 0..<channels {
            let slice = values[(c * size)..<((c + 1) * size)]
            let scale = max(slice.map(abs).max() ?? 0, 1e-8) / qmax
            scales.append(scale)
            codes += slice.map { Int32(($0 / scale).rounded(.toNearestOrEven)) }
        }
        return QuantizedStorage(
            scheme: .linear(bits: bits, signed: true), scales: scales, zeroPoints: [Int32](repeating: 0, count: channels), axis: 0, codes: codes)
    }

    /// A codebook of `entries` values spread over the tensor's range, each element its nearest entry.
    static func codebook(_ tensor: Tensor, entries: Int, zeroReserved: Bool = false) -> CodebookStorage {
        let values = tensor.decodedFloats()
        let low = values.min() ?? 0, high = values.max() ?? 0
        var table = (0..<entries).map { low + (high - low) * Float($0) / Float(max(1, entries - 1)) }
        if zeroReserved { table[0] = 0 }
        var indices = [UInt8](repeating: 0, count: values.count)
        for (i, v) in values.enumerated() {
            var best = 0
            for k in 1..<entries where abs(table[k] - v) < abs(table[best] - v) { best = k }
            indices[i] = UInt8(best)
        }
        return CodebookStorage(bits: 8, centroids: table, channels: 1, indices: indices, zeroIsReserved: zeroReserved)
    }

    static func with(_ tensor: Tensor, _ storage: TensorStorage) -> Tensor {
        var copy = tensor
        copy.storage = storage
        return copy
    }

    /// Writes `tensors` compact and dense; returns the report, the compact file read back, and the
    /// dense file's size.
    func writeBoth(skeleton: [UInt8], tensors: [Tensor], in folder: URL) throws -> (report: CompactWriteReport, model: Model, bytes: Int, dense: Int) {
        let compactPath = folder.appendingPathComponent("compact.onnx").path
        let densePath = folder.appendingPathComponent("dense.onnx").path
        let (bytes, report) = try ONNXWriter.writeCompact(skeleton: skeleton, tensors: tensors, file: "test", to: compactPath)
        let dense = try ONNXWriter.write(skeleton: skeleton, tensors: tensors.map { $0.densified() }, file: "test", to: densePath)
        #expect(bytes == (try FileManager.default.attributesOfItem(atPath: compactPath)[.size] as? Int))
        return (report, try ONNXReader.read(contentsOf: compactPath), bytes, dense)
    }

    // MARK: Codes

    @Test func codesAreLaidOutAsONNXRawDataIs() {
        // int4: two to a byte, the first in the low nibble, two's complement.
        #expect(CompactTensor.pack([1, -2, 3], as: .int4) == [0xE1, 0x03])
        #expect(CompactTensor.pack([15, 0, 7], as: .uint4) == [0x0F, 0x07])
        #expect(CompactTensor.pack([-1, 200], as: .int8) == [0xFF, 0xC8])
        #expect(CompactTensor.pack([-2, 0x1234], as: .int16) == [0xFE, 0xFF, 0x34, 0x12])
        #expect(CompactTensor.pack([0, 5, 0, 9], as: .uint8, positions: [1, 3]) == [5, 9])
    }

    @Test func theSmallestFormComesFirstAndLowerOpsetsFallBack() throws {
        let tensor = Tensor(
            name: "w", dtype: .float32, shape: [4, 8], storage: .dense(TensorBuffer(values: (0..<32).map { Float($0 - 16) / 7 })),
            origin: .initializer(graph: .main))
        let codes = try CompactTensor(Self.with(tensor, .quantized(Self.quantized(tensor, bits: 4, perChannel: true))))
        let choices = codes.choices(dtype: .float32, count: 32, rank: 2)
        // int4 with DequantizeLinear (opset 21), int4 with Cast/Mul (also 21: Cast from int4), int8 with
        // each, int4 packed two per byte (16 bytes, 16 of Reshape's shape and two more nodes: 160),
        // then int8 as sparse Constants (31 nonzero codes: 279 bytes), never 4-bit sparse.
        #expect(choices.map(\.element) == [.int4, .int4, .int8, .int8, .uint8, .int8, .int8])
        #expect(choices.map(\.sparse) == [false, false, false, false, false, true, true])
        #expect(choices.map(\.packed) == [false, false, false, false, true, false, false])
        #expect(choices[0].dequantize && choices[0].opset == 21 && choices[0].bytes == 16)
        #expect(choices[4].opset == 7 && choices[4].bytes == 16 + 16 + 2 * CompactTensor.packedNodeBytes)
        let underThirteen = try #require(choices.first { $0.opset <= 13 })
        #expect(underThirteen.element == .int8 && underThirteen.dequantize && underThirteen.bytes == 32)
        let underTwelve = try #require(choices.first { $0.opset <= 12 })
        #expect(underTwelve.element == .int8 && !underTwelve.dequantize && underTwelve.opset == 7)
        // Symmetric codes: code 0 is 0, so a sparse Constant could hold them (it is larger here).
        #expect(codes.zeroIsCodeZero && choices.contains { $0.sparse })
    }

    @Test func pairTablesHoldWhatEachNibbleDecodesTo() throws {
        let tensor = Tensor(
            name: "w", dtype: .float32, shape: [2, 3], storage: .dense(TensorBuffer(values: [Float](repeating: 0, count: 6))),
            origin: .initializer(graph: .main))
        // Signed codes: nibbles 8…15 are −8…−1, two's complement as `pack` writes them.
        let signed = QuantizedStorage(scheme: .linear(bits: 4, signed: true), scales: [0.5, 2], zeroPoints: [], codes: [-8, -1, 0, 7, 3, -3])
        let table = try #require(try CompactTensor(Self.with(tensor, .quantized(signed))).pairTable())
        #expect(table.element == .float32 && table.bytes == 2048)
        let rows = table.elements
        #expect(rows.count == 512 && rows[2 * 0x8F] == -1 && rows[2 * 0x8F + 1] == -8 && rows[2 * 0x70] == 0 && rows[2 * 0x70 + 1] == 7)
        let packed = CompactTensor.pack(Array(signed.codes), as: .uint4)
        let unpacked = packed.flatMap { [rows[2 * Int($0)], rows[2 * Int($0) + 1]] }
        #expect(unpacked == signed.codes.map(Float.init))
        // Unsigned codes with one zero point for every channel: the table holds code − zero point.
        let unsigned = QuantizedStorage(scheme: .linear(bits: 4, signed: false), scales: [0.5, 2], zeroPoints: [3, 3], codes: [0, 1, 2, 15, 3, 4])
        #expect(try CompactTensor(Self.with(tensor, .quantized(unsigned))).pairTable()?.elements.prefix(4) == [-3, -3, -2, -3])
        // Codebook indices, one codebook or one per channel: the nibbles as int32, the same table for
        // every codebook; more than 16 entries: none.
        let codebook = CodebookStorage(bits: 4, centroids: (0..<16).map { Float($0) / 3 }, channels: 1, indices: [0, 15, 2, 3, 4, 5], zeroIsReserved: false)
        let codebookTable = try #require(try CompactTensor(Self.with(tensor, .codebook(codebook))).pairTable())
        #expect(codebookTable.element == .int32 && codebookTable.bytes == 2048 && codebookTable.elements[2 * 0xF0 + 1] == 15)
        let perChannel = CodebookStorage(bits: 4, centroids: (0..<32).map(Float.init), channels: 2, indices: [0, 1, 2, 3, 4, 5], zeroIsReserved: false)
        #expect(try CompactTensor(Self.with(tensor, .codebook(perChannel))).pairTable() == codebookTable)
        #expect(codebookTable.rawData.count == 2048 && codebookTable.rawData[8 * 0xF0 + 4] == 15)
        let wide = CodebookStorage(bits: 5, centroids: (0..<32).map(Float.init), channels: 1, indices: [0, 1, 2, 3, 4, 31], zeroIsReserved: false)
        #expect(try CompactTensor(Self.with(tensor, .codebook(wide))).pairTable() == nil)
    }

    @Test func aSparseCodebookGivesPrunedElementsTheIndexOfZero() throws {
        // 2 × 4, entries at (0, 1), (1, 0), (1, 3); the codebook has no zero: one is appended.
        let sparse = SparseStorage(
            rows: 2, columns: 4, indexBits: 4, rowStarts: [0, 1, 3], gaps: [1, 0, 2], fillers: 0,
            values: .codebook(CodebookStorage(bits: 2, centroids: [-1, 0.5, 2], channels: 1, indices: [2, 0, 1], zeroIsReserved: false)))
        let tensor = Tensor(name: "w", dtype: .float32, shape: [2, 4], storage: .sparse(sparse), origin: .initializer(graph: .main))
        let codes = try CompactTensor(tensor)
        guard case .lookup(let table, let channels, _) = codes.decoder else {
            Issue.record("not a lookup: \(codes.decoder)")
            return
        }
        #expect(table == [-1, 0.5, 2, 0] && channels == 1)
        #expect(codes.values == [3, 2, 3, 3, 0, 3, 3, 1])
        #expect(!codes.zeroIsCodeZero)
        #expect(codes.values.map { table[Int($0)] } == tensor.decodedFloats())
        // With a reserved zero, pruned elements are code 0 and the sparse form is possible.
        let reserved = SparseStorage(
            rows: 2, columns: 4, indexBits: 4, rowStarts: [0, 1, 3], gaps: [1, 0, 2], fillers: 0,
            values: .codebook(CodebookStorage(bits: 2, centroids: [0, -1, 0.5, 2], channels: 1, indices: [3, 1, 2], zeroIsReserved: true)))
        let zeroCodes = try CompactTensor(Self.with(tensor, .sparse(reserved)))
        #expect(zeroCodes.values == [0, 3, 0, 0, 1, 0, 0, 2] && zeroCodes.zeroIsCodeZero && zeroCodes.nonzero == 3)
    }

    @Test func storageThatDoesNotFitItsBitsIsRefused() {
        let tensor = Tensor(name: "w", dtype: .float32, shape: [2], storage: .dense(TensorBuffer(values: [Float(0), 1])), origin: .initializer(graph: .main))
        let bad = QuantizedStorage(scheme: .linear(bits: 4, signed: true), scales: [1], zeroPoints: [], codes: [3, 9])
        #expect(throws: CompactTensor.Refusal.self) { try CompactTensor(Self.with(tensor, .quantized(bad))) }
        #expect(throws: CompactTensor.Refusal.self) { try CompactTensor(tensor) }
    }

    // MARK: Whole models

    /// LeNet with fc1 as int4 codes per row, fc2 as 16 codebook entries, fc3 as float16: every weight
    /// decodes to its dense restore; 4-bit types raise the opset 17 → 21 and the IR version to 10.
    @Test func lenetStaysCompressedAndDecodesToTheDenseRestore() throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = Fixtures.path("lenet-300-100.onnx")
        var tensors = try ONNXReader.read(contentsOf: path).tensors
        let skeleton = try ONNXSkeleton.strip(contentsOf: path)
        let index = Dictionary(uniqueKeysWithValues: tensors.enumerated().map { ($1.name, $0) })
        tensors[index["fc1.weight"]!] = Self.with(
            tensors[index["fc1.weight"]!], .quantized(Self.quantized(tensors[index["fc1.weight"]!], bits: 4, perChannel: true)))
        tensors[index["fc2.weight"]!] = Self.with(tensors[index["fc2.weight"]!], .codebook(Self.codebook(tensors[index["fc2.weight"]!], entries: 16)))
        let fc3 = tensors[index["fc3.weight"]!]
        tensors[index["fc3.weight"]!] = Self.with(
            fc3,
            .quantized(QuantizedStorage(scheme: .float16, scales: [], zeroPoints: [], codes: fc3.decodedFloats().map { Int32(FloatRounding.float16Bits($0)) })))

        let (report, model, bytes, dense) = try writeBoth(skeleton: skeleton, tensors: tensors, in: folder)
        #expect(report.compact.map(\.tensor) == ["fc1.weight", "fc2.weight", "fc3.weight"])
        #expect(report.densified.isEmpty)
        #expect(report.opset! == (17, 21) && report.irVersion == (8, 10))
        #expect(report.denseBytes == dense)
        #expect(Double(bytes) < 0.2 * Double(dense))
        #expect(model.metadata.opsets.first { $0.domain.isEmpty }?.version == 21 && model.metadata.irVersion == 10)
        let stored = Dictionary(uniqueKeysWithValues: model.tensors.map { ($0.name, $0.dtype) })
        #expect(stored["fc1.weight_quantized"] == .int4 && stored["fc2.weight_indices"] == .uint4 && stored["fc3.weight_float16"] == .float16)
        #expect(stored["fc1.weight"] == nil && stored["fc2.weight"] == nil && stored["fc3.weight"] == nil)
        let graph = try #require(model.graph)
        #expect(graph.nodes.prefix(5).map(\.opType) == ["DequantizeLinear", "Cast", "Gather", "Cast", "Gemm"])
        let decoder = GraphDecoder(model: model)
        for name in ["fc1.weight", "fc2.weight", "fc3.weight"] {
            let decoded = try decoder.value(name, in: [graph])
            #expect(decoded == tensors[index[name]!].densified().decodedFloats(), "\(name)")
        }
        try Self.expectUniqueNames(model)
    }

    /// Initializers of If / Loop / Scan bodies and Constants of branches are decoded in their own graph;
    /// a Constant inside a model-local function stays dense, with the reason.
    @Test func weightsInSubgraphsAreDecodedInTheirGraphs() throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = Fixtures.path("onnx/subgraphs.onnx")
        let source = try ONNXReader.read(contentsOf: path)
        let skeleton = try ONNXSkeleton.strip(contentsOf: path)
        let tensors = source.tensors.map { t in t.dtype == .float32 ? Self.with(t, .quantized(Self.quantized(t, bits: 8, perChannel: false))) : t }
        let (report, model, _, _) = try writeBoth(skeleton: skeleton, tensors: tensors, in: folder)
        #expect(
            Set(report.compact.map(\.tensor))
                == ["outer_w", "gate/else_branch/else_c", "gate/then_branch/then_w", "loop/body/body_w", "loop/body/If#1/then_branch/k", "scan/body/scan_w"])
        #expect(report.densified.map(\.tensor) == ["function:pith.test.AddBias/fbias"])
        #expect(report.densified.first?.reason.contains("model-local function `AddBias`") == true)
        #expect(report.opset! == (17, 17))  // per-tensor int8: DequantizeLinear of opset 10 is enough
        let decoder = GraphDecoder(model: model)
        let main = try #require(model.graph)
        func subgraph(_ graph: Graph, node: String, _ attribute: String) throws -> Graph {
            let holder = try #require(graph.nodes.first { $0.name == node || (node == "If" && $0.opType == "If") })
            guard case .graph(let g)? = holder.attributes.first(where: { $0.name == attribute })?.value else { throw DecodeError("no \(attribute)") }
            return g
        }
        let body = try subgraph(main, node: "loop", "body")
        let innerThen = try subgraph(body, node: "If", "then_branch")
        let cases: [(String, String, [Graph])] = [
            ("outer_w", "outer_w", [main]),
            ("gate/else_branch/else_c", "else_c", [main, try subgraph(main, node: "gate", "else_branch")]),
            ("gate/then_branch/then_w", "then_w", [main, try subgraph(main, node: "gate", "then_branch")]),
            ("loop/body/body_w", "body_w", [main, body]),
            ("loop/body/If#1/then_branch/k", "k", [main, body, innerThen]),
            ("scan/body/scan_w", "scan_w", [main, try subgraph(main, node: "scan", "body")]),
        ]
        for (name, local, scopes) in cases {
            let original = try #require(tensors.first { $0.name == name })
            #expect(try decoder.value(local, in: scopes) == original.densified().decodedFloats(), "\(name)")
            // Decoded in the graph that held it: its decoder is a node of that graph.
            #expect(scopes.last!.nodes.contains { $0.outputs == [local] && $0.opType == "DequantizeLinear" }, "\(name)")
        }
        #expect(model.tensors.first { $0.name == "function:pith.test.AddBias/fbias" }?.dtype == .float32)
        try Self.expectUniqueNames(model)
    }

    /// LeNet's skeleton at `opset` with a Softmax (redefined at 13) in place of the last Relu, so that
    /// the opset cannot be raised to 13 or beyond.
    static func skeletonKeptBelowThirteen(opset: Int32 = 12) throws -> [UInt8] {
        try ONNXSkeleton.strip(contentsOf: Fixtures.path("lenet-300-100.onnx")).withUnsafeBytes { bytes in
            try #require(
                ProtobufCalls.withUnpackedModel(bytes) { model -> [UInt8] in
                    let arena = Arena()
                    model.pointee.opset_import[0]!.pointee.version = Int64(opset)
                    let relu = messages(model.pointee.graph!.pointee.n_node, model.pointee.graph!.pointee.node).last { string($0.pointee.op_type) == "Relu" }!
                    let saved = relu.pointee.op_type
                    relu.pointee.op_type = arena.cString("Softmax")
                    defer { relu.pointee.op_type = saved }
                    return ProtobufCalls.pack(model)
                })
        }
    }

    /// A model whose nodes would change at the opset the best form needs keeps its opset: int4 codes
    /// are packed two per byte and decoded by Cast, Gather from a table of pairs and Reshape; the
    /// signed int4 table is shared by fc1 and fc3, fc2's 16-entry codebook is indexed from a table of nibbles.
    @Test func anOpsetThatCannotBeRaisedPacksFourBitCodes() throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        var tensors = try ONNXReader.read(contentsOf: Fixtures.path("lenet-300-100.onnx")).tensors
        let index = Dictionary(uniqueKeysWithValues: tensors.enumerated().map { ($1.name, $0) })
        for name in ["fc1.weight", "fc3.weight"] {
            tensors[index[name]!] = Self.with(tensors[index[name]!], .quantized(Self.quantized(tensors[index[name]!], bits: 4, perChannel: true)))
        }
        tensors[index["fc2.weight"]!] = Self.with(tensors[index["fc2.weight"]!], .codebook(Self.codebook(tensors[index["fc2.weight"]!], entries: 16)))
        let (report, model, bytes, dense) = try writeBoth(skeleton: try Self.skeletonKeptBelowThirteen(), tensors: tensors, in: folder)
        #expect(report.opset! == (12, 12) && report.densified.isEmpty)
        let forms = Dictionary(uniqueKeysWithValues: report.compact.map { ($0.tensor, $0.form) })
        let fc1 = try #require(forms["fc1.weight"])
        #expect(
            fc1.hasPrefix(
                "int4 codes packed two per byte, 300 scales along axis 0 → Cast, Gather, Reshape, Mul (int4 codes with DequantizeLinear would need opset 21"))
        #expect(fc1.contains("would change node `relu2` (Softmax is redefined at opset 13)"), "\(fc1)")
        #expect(forms["fc2.weight"]?.hasPrefix("uint4 indices packed two per byte into a codebook of 16 float32 → Cast, Gather, Reshape, Gather (") == true)
        #expect(forms["fc3.weight"]?.hasPrefix("int4 codes packed two per byte, 10 scales along axis 0 → Cast, Gather, Reshape, Mul (") == true)
        let stored = Dictionary(uniqueKeysWithValues: model.tensors.map { ($0.name, $0) })
        #expect(stored["fc1.weight_quantized"]?.dtype == .uint8 && stored["fc1.weight_quantized"]?.shape == [300 * 784 / 2])
        #expect(stored["fc2.weight_indices"]?.shape == [100 * 300 / 2])
        // One signed int4 table for fc1 and fc3, one of nibbles for fc2.
        #expect(model.tensors.filter { $0.shape == [256, 2] }.map(\.name).sorted() == ["int4_pairs", "nibble_pairs"])
        #expect(Double(bytes) < 0.2 * Double(dense))
        let decoder = GraphDecoder(model: model)
        for name in ["fc1.weight", "fc2.weight", "fc3.weight"] {
            #expect(try decoder.value(name, in: [model.graph!]) == tensors[index[name]!].densified().decodedFloats(), "\(name)")
        }
        try Self.expectUniqueNames(model)
    }

    /// Packed codes that save fewer bytes than their pair table takes stay one code per byte, and
    /// the report says so.
    @Test func aPairTableMustRepayItsBytes() throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        var tensors = try ONNXReader.read(contentsOf: Fixtures.path("lenet-300-100.onnx")).tensors
        let i = tensors.firstIndex { $0.name == "fc3.weight" }!
        tensors[i] = Self.with(tensors[i], .quantized(Self.quantized(tensors[i], bits: 4, perChannel: true)))
        let (report, model, _, _) = try writeBoth(skeleton: try Self.skeletonKeptBelowThirteen(), tensors: tensors, in: folder)
        let form = try #require(report.compact.first?.form)
        // 1,000 codes: 500 bytes packed, 16 of shape and two more nodes (644) against 1,000 bytes of int8.
        #expect(form.hasPrefix("int8 codes, 10 scales along axis 0 → Cast, Mul (int4 codes with DequantizeLinear would need opset 21"), "\(form)")
        #expect(form.hasSuffix("; packed two per byte they would save 356 bytes, less than their 2048-byte pair table)"), "\(form)")
        #expect(model.tensors.first { $0.name == "fc3.weight_quantized" }?.dtype == .int8)
        #expect(try GraphDecoder(model: model).value("fc3.weight", in: [model.graph!]) == tensors[i].densified().decodedFloats())
    }

    /// Per-channel codebooks of 16 entries: packed indices looked up as int32 nibbles, offset by
    /// the channel's table and gathered from the codebooks.
    @Test func packedIndicesIntoPerChannelCodebooks() throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        var tensors = try ONNXReader.read(contentsOf: Fixtures.path("lenet-300-100.onnx")).tensors
        let i = tensors.firstIndex { $0.name == "fc1.weight" }!
        let values = tensors[i].decodedFloats()
        var centroids: [Float] = [], indices: [UInt8] = []
        for row in 0..<300 {
            let slice = values[(row * 784)..<((row + 1) * 784)]
            let low = slice.min()!, high = slice.max()!
            let table = (0..<16).map { low + (high - low) * Float($0) / 15 }
            centroids += table
            indices += slice.map { v in UInt8((0..<16).min { abs(table[$0] - v) < abs(table[$1] - v) }!) }
        }
        tensors[i] = Self.with(
            tensors[i], .codebook(CodebookStorage(bits: 4, centroids: centroids, channels: 300, axis: 0, indices: indices, zeroIsReserved: false)))
        let (report, model, _, _) = try writeBoth(skeleton: try Self.skeletonKeptBelowThirteen(), tensors: tensors, in: folder)
        let form = try #require(report.compact.first?.form)
        #expect(
            form.hasPrefix("uint4 indices packed two per byte into 300 codebooks of 16 float32 along axis 0 → Cast, Gather, Reshape, Add, Gather ("), "\(form)")
        #expect(model.tensors.first { $0.name == "nibble_pairs" }?.dtype == .int32)
        #expect(try GraphDecoder(model: model).value("fc1.weight", in: [model.graph!]) == tensors[i].densified().decodedFloats())
    }

    @Test func freshNamesSkipEveryNameInUse() {
        let names = NameAllocator(taken: ["w_scale", "w_scale_1"])
        #expect(names.fresh("w_scale") == "w_scale_2")
        #expect(names.fresh("w_scale") == "w_scale_3")
        #expect(names.fresh("w_codes") == "w_codes")
        #expect(names.isTaken("w_codes"))
    }

    /// Every node output and every initializer is named once in the whole model, and so is every node.
    static func expectUniqueNames(_ model: Model) throws {
        var values: [String] = [], nodes: [String] = []
        func walk(_ graph: Graph) {
            values += graph.inputs.map(\.name)
            values += graph.initializers.map { id in localName(model.tensors[id]) }
            for node in graph.nodes {
                values += node.outputs.filter { !$0.isEmpty }
                if !node.name.isEmpty { nodes.append(node.name) }
                for attribute in node.attributes {
                    if case .graph(let g) = attribute.value { walk(g) }
                    if case .graphs(let gs) = attribute.value { gs.forEach(walk) }
                }
            }
        }
        walk(try #require(model.graph))
        #expect(Set(values).count == values.count, "repeated values: \(Dictionary(grouping: values) { $0 }.filter { $1.count > 1 }.keys.sorted())")
        #expect(Set(nodes).count == nodes.count, "repeated nodes: \(Dictionary(grouping: nodes) { $0 }.filter { $1.count > 1 }.keys.sorted())")
    }

    static func localName(_ tensor: Tensor) -> String {
        if case .initializer(let graph) = tensor.origin { return String(tensor.name.dropFirst(graph.description.count)) }
        return tensor.name
    }
}

struct DecodeError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// Runs the nodes that produce a value from constants, for the operators compact writing emits
/// (Constant, DequantizeLinear, Cast, Gather, Reshape, Slice, Add, Sub, Mul) in float32, as ONNX
/// defines them.
struct GraphDecoder {
    let model: Model

    struct Value {
        var shape: [Int]
        var values: [Float]
    }

    /// The value `name` as seen from the innermost of `scopes` (graphs from the main graph inward).
    func value(_ name: String, in scopes: [Graph]) throws -> [Float] { try evaluate(name, scopes).values }

    private func evaluate(_ name: String, _ scopes: [Graph]) throws -> Value {
        for depth in stride(from: scopes.count - 1, through: 0, by: -1) {
            let graph = scopes[depth], visible = Array(scopes[...depth])
            for id in graph.initializers where CompactGraphTests.localName(model.tensors[id]) == name {
                return Value(shape: model.tensors[id].shape, values: model.tensors[id].decodedFloats())
            }
            guard let node = graph.nodes.first(where: { $0.outputs.first == name }) else { continue }
            let inputs = try node.inputs.map { try evaluate($0, visible) }
            func int(_ attribute: String, _ fallback: Int64) -> Int64 {
                if case .int(let v)? = node.attributes.first(where: { $0.name == attribute })?.value { return v }
                return fallback
            }
            switch node.opType {
            case "Constant":
                for attribute in node.attributes {
                    if case .tensor(let id) = attribute.value { return Value(shape: model.tensors[id].shape, values: model.tensors[id].decodedFloats()) }
                    if case .sparseTensor(let id) = attribute.value { return Value(shape: model.tensors[id].shape, values: model.tensors[id].decodedFloats()) }
                }
                throw DecodeError("Constant `\(name)` without a tensor")
            case "DequantizeLinear":
                let x = inputs[0], scale = inputs[1]
                let zero = inputs.count > 2 ? inputs[2] : Value(shape: scale.shape, values: [Float](repeating: 0, count: scale.values.count))
                let axis = Int(int("axis", 1))
                let inner = x.shape.count > axis ? x.shape[(axis + 1)...].reduce(1, *) : 1
                return Value(
                    shape: x.shape,
                    values: x.values.indices.map { i in
                        let c = scale.values.count == 1 ? 0 : (i / inner) % x.shape[axis]
                        return (x.values[i] - zero.values[c]) * scale.values[c]
                    })
            case "Cast":
                let to = ONNXDataType(rawValue: Int32(int("to", 1))).dtype ?? .float32
                let rounded: [Float] =
                    switch to {
                    case .float16: inputs[0].values.map(FloatRounding.float16)
                    case .bfloat16: inputs[0].values.map(FloatRounding.bfloat16)
                    default: inputs[0].values
                    }
                return Value(shape: inputs[0].shape, values: rounded)
            case "Gather":
                // Axis 0: one row of the data per index.
                let data = inputs[0], row = data.shape.dropFirst().reduce(1, *)
                return Value(
                    shape: inputs[1].shape + data.shape.dropFirst(),
                    values: inputs[1].values.flatMap { data.values[(Int($0) * row)..<((Int($0) + 1) * row)] })
            case "Reshape":
                let shape = inputs[1].values.map { Int($0) }
                guard shape.reduce(1, *) == inputs[0].values.count else { throw DecodeError("cannot reshape \(inputs[0].shape) to \(shape)") }
                return Value(shape: shape, values: inputs[0].values)
            case "Slice":
                // One axis: before opset 10 its bounds are attributes, from 10 inputs.
                var bounds: [Int] = []
                for attribute in ["starts", "ends"] {
                    if case .ints(let v)? = node.attributes.first(where: { $0.name == attribute })?.value { bounds.append(Int(v[0])) }
                }
                if bounds.isEmpty { bounds = [Int(inputs[1].values[0]), Int(inputs[2].values[0])] }
                guard inputs[0].shape.count == 1 else { throw DecodeError("Slice of rank \(inputs[0].shape.count)") }
                return Value(shape: [bounds[1] - bounds[0]], values: Array(inputs[0].values[bounds[0]..<bounds[1]]))
            case "Add", "Sub", "Mul":
                return try broadcast(inputs[0], inputs[1]) { a, b in node.opType == "Add" ? a + b : node.opType == "Sub" ? a - b : a * b }
            default:
                throw DecodeError("`\(name)` comes from \(node.opType), which the decoder does not run")
            }
        }
        throw DecodeError("no value `\(name)`")
    }

    private func broadcast(_ a: Value, _ b: Value, _ op: (Float, Float) -> Float) throws -> Value {
        let rank = max(a.shape.count, b.shape.count)
        let sa = [Int](repeating: 1, count: rank - a.shape.count) + a.shape, sb = [Int](repeating: 1, count: rank - b.shape.count) + b.shape
        let shape = try zip(sa, sb).map { x, y in
            guard x == y || x == 1 || y == 1 else { throw DecodeError("shapes \(a.shape) and \(b.shape) do not broadcast") }
            return max(x, y)
        }
        func strides(_ s: [Int]) -> [Int] {
            var result = [Int](repeating: 0, count: rank), step = 1
            for k in stride(from: rank - 1, through: 0, by: -1) {
                result[k] = s[k] == 1 ? 0 : step
                step *= s[k]
            }
            return result
        }
        let ta = strides(sa), tb = strides(sb)
        var out = [Float](repeating: 0, count: shape.reduce(1, *))
        for i in out.indices {
            var rest = i, ia = 0, ib = 0
            for k in stride(from: rank - 1, through: 0, by: -1) {
                let digit = rest % shape[k]
                rest /= shape[k]
                ia += digit * ta[k]
                ib += digit * tb[k]
            }
            out[i] = op(a.values[ia], b.values[ib])
        }
        return Value(shape: shape, values: out)
    }
}
