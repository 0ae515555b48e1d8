import Foundation
public import PithIR
internal import CONNXProto
internal import CProtobufC

/// Writes ONNX files from a skeleton (`ONNXSkeleton`) and the model's tensors.
///
/// The skeleton keeps the source's graph, attributes, metadata and unknown fields byte for byte;
/// the writer puts each tensor's data back, in the order `ONNXReader` lists tensors, in the field
/// the source used (`raw_data` unless the skeleton's tag names the typed field or none; see
/// `TensorDataField`; external data references become inline data unless `externalData` says
/// otherwise). `Constant` nodes get their `value_float(s)` / `value_int(s)` / `value_string(s)`
/// back, sparse initializers their nonzero values and indices (linear, or coordinates where the
/// source's were). Tensors must be dense: densify compressed storage first.
public enum ONNXWriter {
    /// Packs the model straight into the file at `path` (created or truncated), tensor data written
    /// from the tensors' own memory, and returns the number of bytes written. `file` names the
    /// container in messages.
    public static func write(skeleton: [UInt8], tensors: [Tensor], file: String, to path: String) throws -> Int {
        try write(skeleton: skeleton, source: TensorArray(tensors), file: file, to: path)
    }

    /// The model file of `skeleton` with `tensors` in its slots, packed in memory, as `write` would
    /// write it; a model that would be larger than `maximumBytes` is refused (malformed) before
    /// anything is packed. `file` names the container in messages.
    public static func bytes(skeleton: [UInt8], tensors: [Tensor], file: String, maximumBytes: Int) throws -> [UInt8] {
        let filler = Filler(source: TensorArray(tensors), file: file, placeholders: nil)
        return try withFilledModel(skeleton: skeleton, filler: filler, file: file) { model in
            let size = ProtobufCalls.packedSize(model)
            guard size <= maximumBytes else {
                throw ONNXError(.malformed, file: file, "the model would be \(size) bytes, more than the \(maximumBytes) it may have")
            }
            return ProtobufCalls.pack(model)
        }
    }

    /// Tensors of at least this many bytes are written in place once the rest of the file is out.
    public static let inPlaceBytes = 1 << 16

    /// Writes the model with its tensors from `source`: the file is laid out and written from the
    /// skeleton and each tensor's type and shape, leaving room for the data of every tensor of at
    /// least `inPlaceBytes`; those are then produced and written straight into their places on every
    /// core, so no copy of the model's data is held. Returns the number of bytes of the file.
    ///
    /// With `externalData`, tensors go to data files beside the model as it says (see
    /// `ExternalDataOptions`), written the same way; without, every tensor is inline (the skeleton's
    /// external data references are dropped). A model that would pass protobuf's 2 GiB limit is
    /// refused (unsupported) rather than written as a file no ONNX reader opens.
    public static func write<Source: TensorSource>(
        skeleton: [UInt8], source: Source, file: String, to path: String, externalData: ExternalDataOptions? = nil
    ) throws -> Int {
        // Address space without access: each tensor's placeholder data pointer (`ProtobufCalls.Holes`).
        let reserved = max(1, source.tensorCount)
        let placeholders = mmap(nil, reserved, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0)
        guard let placeholders, placeholders != MAP_FAILED else {
            throw ONNXError(.io, file: path, "cannot reserve address space (\(String(cString: strerror(errno))))")
        }
        defer { munmap(placeholders, reserved) }
        var layout: ExternalDataPlan.Layout? = externalData.map {
            switch $0.layout {
            case .source: return .source(overflow: nil)
            case .oneFile(let location): return .oneFile(location)
            }
        }
        while true {
            let plan = layout.map { ExternalDataPlan(layout: $0, modelName: externalData?.modelName ?? "", file: file) }
            let filler = Filler(source: source, file: file, placeholders: UnsafeRawPointer(placeholders), external: plan)
            let written = try withFilledModel(skeleton: skeleton, filler: filler, file: file) { model -> Int? in
                let size = ProtobufCalls.packedSize(model)
                if size > protobufLimit {
                    if case .source(overflow: nil) = layout, externalData != nil {
                        return nil  // again, with the large inline tensors in a data file
                    }
                    throw ONNXError(
                        .unsupported, file: file,
                        "the restored model would be \(size) bytes, over protobuf's limit of \(protobufLimit) bytes (2 GiB): "
                            + (externalData == nil
                                ? "write its tensors to a data file beside it (pith restore --external-data FILE)"
                                : "too much of it stays inline (tensors under \(externalThreshold) bytes, the graph)"))
                }
                let dataFiles = try createDataFiles(plan, options: externalData)
                return try withOutput(path) { descriptor in
                    let (size, offsets) = try packLeavingHoles(model, to: descriptor, path: path, placeholders: placeholders, tensorCount: source.tensorCount)
                    try fill(filler.slots, offsets: offsets, source: source, descriptor: descriptor, path: path, dataFiles: dataFiles)
                    return size
                }
            }
            if let written { return written }
            layout = .source(overflow: externalData?.overflowLocation)
        }
    }

    /// Creates every data file of `plan` (through `options.createFile`) at its full size, its holes
    /// reading as zeros as ONNX's own padding does, and returns their paths. The files are closed
    /// again: a tensor's writer opens its file, so a model with a file per tensor (thousands, as
    /// some exporters write) never holds more descriptors than there are cores.
    private static func createDataFiles(_ plan: ExternalDataPlan?, options: ExternalDataOptions?) throws -> [String] {
        guard let plan, let options else { return [] }
        let sizes = try plan.finish()
        var paths: [String] = []
        for (location, size) in zip(plan.locations, sizes) {
            let path = try options.createFile(location)
            let descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
            guard descriptor >= 0 else {
                throw ONNXError(.io, file: path, "cannot create the data file `\(location)` (\(String(cString: strerror(errno))))")
            }
            defer { close(descriptor) }
            guard ftruncate(descriptor, off_t(size)) == 0 else {
                throw ONNXError(.io, file: path, "cannot extend the data file `\(location)` to \(size) bytes (\(String(cString: strerror(errno))))")
            }
            paths.append(path)
        }
        return paths
    }

    static func withOutput<R>(_ path: String, _ body: (Int32) throws -> R) throws -> R {
        let descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw ONNXError(.io, file: path, "cannot create the file (\(String(cString: strerror(errno))))") }
        defer { close(descriptor) }
        return try body(descriptor)
    }

    /// Packs `model` into `descriptor`, written straight to it with `holes` skipped, and returns
    /// the packed size.
    static func pack(
        _ model: UnsafeMutablePointer<Onnx__ModelProto>, to descriptor: Int32, path: String,
        holes: ProtobufCalls.Holes? = nil
    ) throws -> Int {
        do {
            return try ProtobufCalls.pack(model, to: descriptor, holes: holes)
        } catch {
            throw ONNXError(.io, file: path, "write failed after \(error.written) of \(error.size) bytes (\(FileIO.describe(errorNumber: error.errorNumber)))")
        }
    }

    /// Packs `model` into `descriptor` with every tensor's data left as a hole (its placeholder in
    /// `placeholders`), extends the file to its full size, and returns the size and where the packer
    /// placed each of the `tensorCount` tensors (-1: not in the file), for `fill`.
    static func packLeavingHoles(
        _ model: UnsafeMutablePointer<Onnx__ModelProto>, to descriptor: Int32, path: String, placeholders: UnsafeMutableRawPointer, tensorCount: Int
    ) throws -> (size: Int, offsets: [Int]) {
        // -1 (SIZE_MAX to C) until the packer places the tensor.
        var offsets = [Int](repeating: -1, count: tensorCount)
        let size = try offsets.withUnsafeMutableBufferPointer { offsets in
            try pack(model, to: descriptor, path: path, holes: ProtobufCalls.Holes(base: UnsafeRawPointer(placeholders), offsets: offsets))
        }
        // The file has its full size even while its last bytes are still to be written.
        guard ftruncate(descriptor, off_t(size)) == 0 else {
            throw ONNXError(.io, file: path, "cannot extend the file to \(size) bytes (\(String(cString: strerror(errno))))")
        }
        return (size, offsets)
    }

    /// Writes the data of every slot: into the model file (`descriptor`) at the offset the packer
    /// gave it, or into its data file (`dataFiles`, paths) at the offset the plan gave it.
    static func fill<Source: TensorSource>(
        _ slots: [FillerSlot], offsets: [Int], source: Source, descriptor: Int32, path: String, dataFiles: [String] = []
    ) throws {
        for slot in slots where slot.file == nil && offsets[slot.index] < 0 {
            throw ONNXError(.invalidTensor, file: path, "tensor `\(source.header(slot.index).name)` was not placed in the file")
        }
        let targets = slots.map { slot -> (descriptor: Int32?, offset: Int, path: String) in
            slot.file.map { (nil, $0.offset, dataFiles[$0.file]) } ?? (descriptor, offsets[slot.index], path)
        }
        try fill(slots.map { ($0.index, $0.bytes) }, targets: targets, source: source)
    }

    /// Writes the data of every slot at its target (an open file descriptor, or nil to open `path`
    /// for this tensor; the offset; the path for messages), largest tensors first, on every core.
    /// The error thrown is that of the largest failing tensor (the first in the order they are written).
    static func fill<Source: TensorSource>(
        _ slots: [(index: Int, bytes: Int)], targets: [(descriptor: Int32?, offset: Int, path: String)], source: Source
    ) throws {
        let order = slots.indices.sorted { (slots[$0].bytes, slots[$1].index) > (slots[$1].bytes, slots[$0].index) }
        _ = try Parallel.map(count: order.count, makeWorker: { source.makeWorker() }) { (worker: inout Source.Worker, k: Int) throws in
            let target = targets[order[k]]
            if let descriptor = target.descriptor {
                try write(slots[order[k]], at: target.offset, source: source, worker: &worker, descriptor: descriptor, path: target.path)
                return
            }
            let descriptor = open(target.path, O_WRONLY | O_CLOEXEC)
            guard descriptor >= 0 else {
                throw ONNXError(.io, file: target.path, "cannot open the data file (\(String(cString: strerror(errno))))")
            }
            defer { close(descriptor) }
            try write(slots[order[k]], at: target.offset, source: source, worker: &worker, descriptor: descriptor, path: target.path)
        }
    }

    private static func write<Source: TensorSource>(
        _ slot: (index: Int, bytes: Int), at offset: Int, source: Source, worker: inout Source.Worker,
        descriptor: Int32, path: String
    ) throws {
        var written = 0
        let name = source.header(slot.index).name
        try source.denseBytes(slot.index, worker: &worker) { start, piece in
            guard start >= 0, piece.count <= slot.bytes - start else {
                throw ONNXError(
                    .invalidTensor, file: path, "tensor `\(name)`: a piece of \(piece.count) bytes at \(start) lies outside its \(slot.bytes) bytes")
            }
            do throws(FileIO.IOFailure) {
                try FileIO.write(descriptor, UnsafeRawBufferPointer(piece), at: offset + start)
            } catch {
                throw ONNXError(.io, file: path, "write failed at byte \(offset + start + error.done) (\(FileIO.describe(errorNumber: error.errorNumber)))")
            }
            written += piece.count
        }
        guard written == slot.bytes else { throw ONNXError(.invalidTensor, file: path, "tensor `\(name)` gave \(written) of its \(slot.bytes) bytes") }
    }

    /// As `write(skeleton:tensors:file:to:)`; with `factored`, every main-graph weight stored as a
    /// low-rank split or tensor train that one Gemm, MatMul or 1×1 Conv reads is written as its
    /// factors with the nodes that multiply by them (see `FactoredGraphRewriter`); every other
    /// compressed tensor is written dense. Returns the bytes written and what was rewritten.
    public static func write(
        skeleton: [UInt8], tensors: [Tensor], file: String, to path: String, factored: Bool
    ) throws -> (bytes: Int, report: FactoredWriteReport) {
        var candidates: [String: Tensor] = [:]
        var filled = tensors
        if factored {
            for (i, tensor) in tensors.enumerated() {
                guard case .factored(let storage) = tensor.storage else { continue }
                switch storage.method {
                case .lowRank, .tensorTrain:
                    if case .initializer(let graph) = tensor.origin, graph == .main, tensor.dtype == .float32 {
                        candidates[tensor.name] = tensor
                        // A stand-in until the rewriter knows whether it can drop the initializer.
                        filled[i] = tensor.densified()
                    }
                default: break
                }
            }
        }
        filled = filled.map { $0.densified() }
        let rewriter = FactoredGraphRewriter()
        let filler = Filler(source: TensorArray(filled), file: file, placeholders: nil)
        let bytes = try withFilledModel(skeleton: skeleton, filler: filler, file: file, rewriter: factored ? (rewriter, candidates) : nil) { model in
            try withOutput(path) { descriptor in try pack(model, to: descriptor, path: path) }
        }
        var report = rewriter.report
        for tensor in tensors where factored {
            if case .factored(let storage) = tensor.storage, candidates[tensor.name] == nil {
                switch storage.method {
                case .lowRank, .tensorTrain: report.densified.append((tensor.name, "only float32 weights of the main graph are written factored"))
                case .circulant, .separable: report.densified.append((tensor.name, "circulant and separable weights are written dense"))
                }
            }
        }
        return (bytes, report)
    }

    /// Runs `body` on the skeleton with every tensor's data (or its placeholder) in place.
    private static func withFilledModel<Source: TensorSource, R>(
        skeleton: [UInt8], filler: Filler<Source>, file: String,
        rewriter: (FactoredGraphRewriter, [String: Tensor])? = nil,
        _ body: (UnsafeMutablePointer<Onnx__ModelProto>) throws -> R
    ) throws -> R {
        let result = try skeleton.withUnsafeBytes { bytes in
            try ProtobufCalls.withUnpackedModel(bytes) { model in
                defer { filler.restoreAll() }
                try TensorSlots.forEach(in: model, file: file) { slot, place in try filler.fill(slot, at: place) }
                guard filler.next == filler.source.tensorCount else {
                    throw ONNXError(.invalidTensor, file: file, "the skeleton holds \(filler.next) tensors, the container \(filler.source.tensorCount)")
                }
                if let (rewriter, candidates) = rewriter {
                    _ = rewriter.rewrite(model, factored: candidates)
                }
                defer { rewriter?.0.restore() }
                return try body(model)
            }
        }
        guard let result else { throw ONNXError(.malformed, file: file, "the container's ONNX skeleton does not parse") }
        return result
    }
}

/// A tensor whose data is written after packing: into the model file at the offset the packer gives
/// it (`file` nil), or into data file `file.file` of the plan at `file.offset`.
struct FillerSlot {
    var index: Int
    var bytes: Int
    var file: (file: Int, offset: Int)?
}

/// Points the skeleton's tensor fields at Swift-owned data for packing, and puts the skeleton's own
/// pointers back afterwards so that protobuf-c frees only what it allocated. With `placeholders`,
/// a tensor of at least `ONNXWriter.inPlaceBytes` gets a placeholder instead of its data (pointer
/// `placeholders + index`) and is listed in `slots`, to be written in place after packing.
final class Filler<Source: TensorSource> {
    let source: Source
    let file: String
    let placeholders: UnsafeRawPointer?
    /// Where tensors stored outside the model go; nil: every tensor inline.
    let external: ExternalDataPlan?
    var next = 0
    /// Tensors written in place, in the model file or in a data file.
    private(set) var slots: [FillerSlot] = []
    private var worker: Source.Worker
    private var undo: [() -> Void] = []
    /// Memory handed to the message; freed after packing.
    private var owned: [UnsafeMutableRawPointer] = []
    /// Tensor buffers the message points into, kept alive until packing is done.
    private var keep: [TensorBuffer] = []

    init(source: Source, file: String, placeholders: UnsafeRawPointer?, external: ExternalDataPlan? = nil) {
        self.source = source
        self.file = file
        self.placeholders = placeholders
        self.external = external
        worker = source.makeWorker()
    }

    deinit { for pointer in owned { pointer.deallocate() } }

    func restoreAll() {
        for action in undo.reversed() { action() }
        undo.removeAll()
    }

    func take() throws -> Int {
        guard next < source.tensorCount else {
            throw ONNXError(.invalidTensor, file: file, "the skeleton holds more tensors than the container's \(source.tensorCount)")
        }
        defer { next += 1 }
        ProgressReport.report("restore", done: next + 1, total: source.tensorCount, unit: "tensors")
        return next
    }

    /// Tensor `index`, decoded now.
    func tensor(_ index: Int) throws -> Tensor { try source.denseTensor(index, worker: &worker) }

    /// A copy of `bytes` in memory that lives until the writer finishes.
    func copy(_ bytes: UnsafeRawBufferPointer) -> UnsafeMutablePointer<UInt8>? {
        guard bytes.count > 0 else { return nil }
        let pointer = UnsafeMutableRawPointer.allocate(byteCount: bytes.count, alignment: 16)
        pointer.copyMemory(from: bytes.baseAddress!, byteCount: bytes.count)
        owned.append(pointer)
        return pointer.assumingMemoryBound(to: UInt8.self)
    }

    /// `byteCount` bytes (at least one) that live until the writer finishes.
    func allocate(_ byteCount: Int) -> UnsafeMutableRawPointer {
        let pointer = UnsafeMutableRawPointer.allocate(byteCount: max(1, byteCount), alignment: 16)
        owned.append(pointer)
        return pointer
    }

    /// A NUL-terminated copy of `text` that lives until the writer finishes.
    func cString(_ text: String) -> UnsafeMutablePointer<CChar> {
        let bytes = Array(text.utf8CString)
        let pointer = allocate(bytes.count).bindMemory(to: CChar.self, capacity: bytes.count)
        pointer.update(from: bytes, count: bytes.count)
        return pointer
    }

    func copy<T>(_ values: [T]) -> UnsafeMutablePointer<T>? {
        values.withUnsafeBytes { copy($0) }.map { UnsafeMutableRawPointer($0).assumingMemoryBound(to: T.self) }
    }

    /// The next tensor into `slot` (slots come in `TensorSlots` order), once its name, and for an
    /// initializer its type and shape, are checked against what the skeleton's slot says: a
    /// container whose manifest lists tensors in another order, or with other shapes, than its
    /// skeleton is refused rather than restored into a model its own checker rejects.
    func fill(_ slot: TensorSlots.Slot, at place: TensorSlots.Place) throws {
        let index = try take()
        let header = source.header(index)
        try TensorSlots.checkPairing(
            slot, at: place, index: index, name: header.name, dtype: header.dtype, shape: header.shape, kind: .invalidTensor, file: file)
        switch slot {
        case .tensor(let t): try set(t, index: index)
        case .sparseTensor(let s): try set(s, try tensor(index))
        case .constantValue(let attribute, let value): try setConstant(attribute, value, try tensor(index))
        }
    }

    func dense(_ tensor: Tensor) throws -> TensorBuffer {
        guard case .dense(let buffer) = tensor.storage else {
            throw ONNXError(.invalidTensor, file: file, "tensor `\(tensor.name)`: densify compressed tensors before writing ONNX")
        }
        return buffer
    }

    /// Tensor `index` into `proto`: an external data reference when the plan puts it in a data
    /// file, a placeholder when it is written in place, else its data.
    func set(_ proto: UnsafeMutablePointer<Onnx__TensorProto>, index: Int) throws {
        let header = source.header(index)
        if placeholders != nil, let external, header.dtype != .string,
            let placement = try external.place(proto, name: header.name, bytes: header.bytes)
        {
            let sourceEntries = proto.pointee.n_external_data
            setHeader(proto, dtype: header.dtype, shape: header.shape)
            proto.pointee.has_data_location = 1
            proto.pointee.data_location = ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL
            proto.pointee.has_raw_data = 0
            if let entries = placement.entries {
                let list = allocate(MemoryLayout<UnsafeMutablePointer<Onnx__StringStringEntryProto>?>.stride * entries.count)
                    .bindMemory(to: UnsafeMutablePointer<Onnx__StringStringEntryProto>?.self, capacity: entries.count)
                for (i, (key, value)) in entries.enumerated() {
                    let entry = allocate(MemoryLayout<Onnx__StringStringEntryProto>.stride).bindMemory(to: Onnx__StringStringEntryProto.self, capacity: 1)
                    ProtobufCalls.initialize(entry)
                    entry.pointee.key = cString(key)
                    entry.pointee.value = cString(value)
                    list[i] = entry
                }
                proto.pointee.n_external_data = entries.count
                proto.pointee.external_data = list
            } else {
                proto.pointee.n_external_data = sourceEntries  // the skeleton's own entries, as the source had them
            }
            slots.append(FillerSlot(index: index, bytes: header.bytes, file: (placement.file, placement.offset)))
            return
        }
        // The field the source kept the data in (the skeleton's tag): `raw_data`, or `float_data` /
        // `double_data`, whose packed bytes are the raw bytes, can be written in place; the varint
        // fields are encoded now, since their size depends on the values.
        let field = try TensorDataField.inSkeleton(proto.pointee, dtype: header.dtype, name: header.name, file: file)
        let fixedWidth: Bool
        switch field {
        case .raw, .typed(4), .typed(10): fixedWidth = true
        case .typed, .absent: fixedWidth = false
        }
        guard let placeholders, header.dtype != .string, header.bytes >= ONNXWriter.inPlaceBytes, fixedWidth else {
            try set(proto, try tensor(index), field: field)
            return
        }
        setHeader(proto, dtype: header.dtype, shape: header.shape)
        let placeholder = UnsafeMutableRawPointer(mutating: placeholders + index)
        switch field {
        case .typed(4):
            proto.pointee.n_float_data = header.bytes / 4
            proto.pointee.float_data = placeholder.assumingMemoryBound(to: Float.self)
        case .typed(10):
            proto.pointee.n_double_data = header.bytes / 8
            proto.pointee.double_data = placeholder.assumingMemoryBound(to: Double.self)
        default:
            proto.pointee.has_raw_data = 1
            proto.pointee.raw_data = ProtobufCBinaryData(len: header.bytes, data: placeholder.assumingMemoryBound(to: UInt8.self))
        }
        slots.append(FillerSlot(index: index, bytes: header.bytes, file: nil))
    }

    /// Type and dims, no data field and no external data reference (the data goes inline unless
    /// the caller says otherwise); an explicit `data_location` of the skeleton other than
    /// `EXTERNAL` stays. The skeleton's fields are put back after packing.
    func setHeader(_ proto: UnsafeMutablePointer<Onnx__TensorProto>, dtype: DType, shape: [Int]) {
        let saved = proto.pointee
        undo.append { proto.pointee = saved }
        proto.pointee.has_raw_data = 0
        proto.pointee.n_external_data = 0
        if saved.has_data_location == 0 || saved.data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL {
            proto.pointee.has_data_location = 0
            proto.pointee.data_location = ONNX__TENSOR_PROTO__DATA_LOCATION__DEFAULT
        }
        proto.pointee.data_type = ONNXDataType(dtype).rawValue
        proto.pointee.has_data_type = 1
        proto.pointee.n_dims = shape.count
        proto.pointee.dims = copy(shape.map(Int64.init))
    }

    /// `tensor` into `proto`, its data in the field the skeleton's tag names (`field`, read from
    /// `proto` when nil): `raw_data`, the typed field of its type, or none for a tensor without
    /// elements whose source had none.
    func set(_ proto: UnsafeMutablePointer<Onnx__TensorProto>, _ tensor: Tensor, field: TensorDataField? = nil) throws {
        let field = try field ?? TensorDataField.inSkeleton(proto.pointee, dtype: tensor.dtype, name: tensor.name, file: file)
        setHeader(proto, dtype: tensor.dtype, shape: tensor.shape)
        if case .strings(let values) = tensor.storage {
            let entries = values.map { value in ProtobufCBinaryData(len: value.count, data: value.withUnsafeBytes { copy($0) }) }
            proto.pointee.n_string_data = entries.count
            proto.pointee.string_data = copy(entries)
            return
        }
        let buffer = try dense(tensor)
        // The tensor's own memory, no copy: `tensors` outlives packing, and the skeleton's pointer
        // is put back before protobuf-c frees the message.
        keep.append(buffer)
        switch field {
        case .absent where tensor.count == 0:
            return
        case .typed(let number):
            buffer.withUnsafeBytes { bytes in setTyped(proto, number: number, bytes, dtype: tensor.dtype, count: tensor.count) }
        case .raw, .absent:
            proto.pointee.has_raw_data = 1
            proto.pointee.raw_data = buffer.withUnsafeBytes {
                ProtobufCBinaryData(len: $0.count, data: UnsafeMutablePointer(mutating: $0.baseAddress?.assumingMemoryBound(to: UInt8.self)))
            }
        }
    }

    /// The dense `bytes` (`count` elements of `dtype`) as the values of typed field `number`, which
    /// `TensorDataField.inSkeleton` checked is the one of `dtype`. `float_data` and `double_data`
    /// point at `bytes` (packed, they are the same bytes), which must outlive packing.
    func setTyped(_ proto: UnsafeMutablePointer<Onnx__TensorProto>, number: UInt8, _ bytes: UnsafeRawBufferPointer, dtype: DType, count: Int) {
        let base = UnsafeMutableRawPointer(mutating: bytes.baseAddress)
        func load<T: FixedWidthInteger>(_: T.Type) -> [T] {
            (0..<count).map { bytes.loadUnaligned(fromByteOffset: $0 * MemoryLayout<T>.size, as: T.self) }
        }
        switch number {
        case 4:
            proto.pointee.n_float_data = bytes.count / 4
            proto.pointee.float_data = base?.assumingMemoryBound(to: Float.self)
        case 10:
            proto.pointee.n_double_data = bytes.count / 8
            proto.pointee.double_data = base?.assumingMemoryBound(to: Double.self)
        case 7:
            let values = load(Int64.self)
            proto.pointee.n_int64_data = values.count
            proto.pointee.int64_data = copy(values)
        case 11:
            let values = dtype == .uint32 ? load(UInt32.self).map(UInt64.init) : load(UInt64.self)
            proto.pointee.n_uint64_data = values.count
            proto.pointee.uint64_data = copy(values)
        default:
            let values = TensorDataField.int32Values(bytes, dtype: dtype, count: count)
            proto.pointee.n_int32_data = values.count
            proto.pointee.int32_data = copy(values)
        }
    }

    /// A sparse initializer from a dense tensor: the nonzero values and their linear indices.
    func set(_ proto: UnsafeMutablePointer<Onnx__SparseTensorProto>, _ tensor: Tensor) throws {
        guard let values = proto.pointee.values, let indices = proto.pointee.indices else {
            throw ONNXError(.malformed, file: file, "sparse tensor `\(tensor.name)` in the skeleton lacks values or indices")
        }
        let buffer = try dense(tensor)
        let width = tensor.dtype.bitWidth / 8
        var positions: [Int64] = [], kept: [UInt8] = []
        buffer.withUnsafeBytes { bytes in
            for i in 0..<tensor.count {
                let element = bytes[i * width..<(i + 1) * width]
                if element.contains(where: { $0 != 0 }) {
                    positions.append(Int64(i))
                    kept.append(contentsOf: element)
                }
            }
        }
        let savedDims = (proto.pointee.n_dims, proto.pointee.dims)
        undo.append {
            proto.pointee.n_dims = savedDims.0; proto.pointee.dims = savedDims.1
        }
        proto.pointee.n_dims = tensor.shape.count
        proto.pointee.dims = copy(tensor.shape.map(Int64.init))
        try set(
            values, Tensor(name: tensor.name, dtype: tensor.dtype, shape: [positions.count], storage: .dense(TensorBuffer(bytes: kept)), origin: tensor.origin))
        // Indices of two dimensions in the skeleton: the source listed coordinates, one row of
        // `rank` per value; else linear positions.
        let rank = tensor.shape.count
        if indices.pointee.n_dims == 2 {
            var coordinates = [Int64](repeating: 0, count: positions.count * rank)
            for (k, position) in positions.enumerated() {
                var rest = position
                for axis in stride(from: rank - 1, through: 0, by: -1) {
                    let size = Int64(tensor.shape[axis])
                    coordinates[k * rank + axis] = rest % size
                    rest /= size
                }
            }
            try set(
                indices,
                Tensor(
                    name: tensor.name, dtype: .int64, shape: [positions.count, rank], storage: .dense(TensorBuffer(values: coordinates)),
                    origin: tensor.origin))
        } else {
            try set(
                indices,
                Tensor(name: tensor.name, dtype: .int64, shape: [positions.count], storage: .dense(TensorBuffer(values: positions)), origin: tensor.origin))
        }
    }

    func setConstant(_ attribute: UnsafeMutablePointer<Onnx__AttributeProto>, _ value: TensorSlots.ConstantValue, _ tensor: Tensor) throws {
        let saved = attribute.pointee
        undo.append { attribute.pointee = saved }
        switch value {
        case .float: attribute.pointee.f = tensor.floatValues().first ?? 0
        case .floats:
            let values = tensor.floatValues()
            attribute.pointee.n_floats = values.count
            attribute.pointee.floats = copy(values)
        case .int, .ints:
            let buffer = try dense(tensor)
            let values = buffer.withUnsafeBufferPointer(as: Int64.self) { Array($0) }
            if value == .int {
                attribute.pointee.i = values.first ?? 0
            } else {
                attribute.pointee.n_ints = values.count
                attribute.pointee.ints = copy(values)
            }
        case .string, .strings:
            guard case .strings(let values) = tensor.storage else { return }
            if value == .string {
                attribute.pointee.s = values.first.map { v in ProtobufCBinaryData(len: v.count, data: v.withUnsafeBytes { copy($0) }) } ?? attribute.pointee.s
            } else {
                let entries = values.map { v in ProtobufCBinaryData(len: v.count, data: v.withUnsafeBytes { copy($0) }) }
                attribute.pointee.n_strings = entries.count
                attribute.pointee.strings = copy(entries)
            }
        }
    }
}
