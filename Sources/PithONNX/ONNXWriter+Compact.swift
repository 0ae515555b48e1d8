import Foundation
public import PithIR
internal import CONNXProto

extension ONNXWriter {
    /// Writes the model with its compressed tensors kept compressed (see `CompactGraphRewriter` and
    /// `CompactTensor`): quantized weights as integer initializers with `DequantizeLinear`, codebooks
    /// as a small table and indices with `Gather`, float16 / bfloat16 as such with a `Cast`, pruned
    /// tensors as sparse `Constant`s where that is smaller, factored weights as their factors (as
    /// `write(…, factored: true)`). `tensors` are in the skeleton's slot order, in their compressed
    /// storage. Tensors that cannot stay compressed are written dense, and the report says why.
    ///
    /// The file is laid out as `write(skeleton:source:file:to:)` lays it out; the size the dense
    /// model would have is measured on the way (`CompactWriteReport.denseBytes`) without writing it.
    public static func writeCompact(skeleton: [UInt8], tensors: [Tensor], file: String, to path: String) throws -> (bytes: Int, report: CompactWriteReport) {
        let source = TensorArray(tensors)
        let reserved = max(1, tensors.count)
        let placeholders = mmap(nil, reserved, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0)
        guard let placeholders, placeholders != MAP_FAILED else {
            throw ONNXError(.io, file: path, "cannot reserve address space (\(String(cString: strerror(errno))))")
        }
        defer { munmap(placeholders, reserved) }
        let filler = Filler(source: source, file: file, placeholders: UnsafeRawPointer(placeholders))
        var report = CompactWriteReport()
        let bytes = try skeleton.withUnsafeBytes { raw in
            try ProtobufCalls.withUnpackedModel(raw) { model -> Int in
                defer { filler.restoreAll() }
                var slots: [(slot: TensorSlots.Slot, place: TensorSlots.Place)] = []
                try TensorSlots.forEach(in: model, file: file) { slots.append(($0, $1)) }
                guard slots.count == tensors.count else {
                    throw ONNXError(.invalidTensor, file: file, "the skeleton holds \(slots.count) tensors, the container \(tensors.count)")
                }
                for (slot, place) in slots { try filler.fill(slot, at: place) }
                report.denseBytes = ProtobufCalls.packedSize(model)
                let names = NameAllocator(model)

                // Factored weights, as `write(…, factored: true)` writes them.
                var candidates: [String: Tensor] = [:], factoredIndex: [String: Int] = [:], skip = Set<Int>()
                for (i, tensor) in tensors.enumerated() {
                    guard case .factored(let storage) = tensor.storage else { continue }
                    skip.insert(i)
                    switch storage.method {
                    case .lowRank, .tensorTrain:
                        if case .initializer(let graph) = tensor.origin, graph == .main, tensor.dtype == .float32 {
                            candidates[tensor.name] = tensor
                            factoredIndex[tensor.name] = i
                        } else {
                            report.densified.append((tensor.name, "only float32 weights of the main graph are written factored"))
                        }
                    case .circulant, .separable: report.densified.append((tensor.name, "circulant and separable weights are written dense"))
                    }
                }
                let factored = FactoredGraphRewriter()
                factored.names = names
                let rewritten = factored.rewrite(model, factored: candidates)
                defer { factored.restore() }
                report.factored = factored.report.rewritten
                report.densified += factored.report.densified

                let compactor = CompactGraphRewriter(names: names)
                var removed = compactor.rewrite(model, slots: slots, tensors: tensors, skip: skip)
                defer { compactor.restore() }
                for name in rewritten { if let index = factoredIndex[name] { removed.insert(index) } }
                report.compact = compactor.report.compact
                report.densified += compactor.report.densified
                report.opset = compactor.report.opset
                report.irVersion = compactor.report.irVersion
                if report.irVersion == (0, 0) { report.irVersion = (Int(model.pointee.ir_version), Int(model.pointee.ir_version)) }

                return try withOutput(path) { descriptor in
                    let (size, offsets) = try packLeavingHoles(model, to: descriptor, path: path, placeholders: placeholders, tensorCount: tensors.count)
                    try fill(filler.slots.filter { !removed.contains($0.index) }, offsets: offsets, source: source, descriptor: descriptor, path: path)
                    return size
                }
            }
        }
        guard let bytes else { throw ONNXError(.malformed, file: file, "the container's ONNX skeleton does not parse") }
        return (bytes, report)
    }
}
