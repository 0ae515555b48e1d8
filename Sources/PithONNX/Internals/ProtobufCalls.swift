#if canImport(Glibc)
import Glibc
#endif
import PithIR
internal import CONNXProto
internal import CProtobufC

/// The thin layer between Swift and protobuf-c: every call into libprotobuf-c and into the code
/// `protoc-c` generated (`CONNXProto`) — unpack, pack, free, message initialisers, and the buffer
/// that packs straight into a file — is made here, and no C type leaves this module.
///
/// The rest of the module reads and edits unpacked messages through their fields (`Onnx__…`
/// structs) and calls these wrappers for everything else.
enum ProtobufCalls {
    /// Unpacks a `ModelProto` and passes it to `body`; the message is freed when `body` returns.
    /// Returns nil from the unpack step when protobuf-c rejects the bytes.
    static func withUnpackedModel<R>(
        _ bytes: UnsafeRawBufferPointer, _ body: (UnsafeMutablePointer<Onnx__ModelProto>) throws -> R
    ) rethrows -> R? {
        guard let base = bytes.baseAddress?.assumingMemoryBound(to: UInt8.self),
            let model = onnx__model_proto__unpack(nil, bytes.count, base)
        else { return nil }
        defer { onnx__model_proto__free_unpacked(model, nil) }
        return try body(model)
    }

    /// The model's wire encoding, in memory.
    static func pack(_ model: UnsafeMutablePointer<Onnx__ModelProto>) -> [UInt8] {
        let size = onnx__model_proto__get_packed_size(model)
        var bytes = [UInt8](repeating: 0, count: size)
        bytes.withUnsafeMutableBufferPointer { buffer in
            _ = onnx__model_proto__pack(model, buffer.baseAddress)
        }
        return bytes
    }

    /// The size of the model's wire encoding, without packing it (tensor data is not read).
    static func packedSize(_ model: UnsafeMutablePointer<Onnx__ModelProto>) -> Int { onnx__model_proto__get_packed_size(model) }

    /// The wire encoding of an attribute, for attribute kinds the IR keeps opaque.
    static func encode(_ attribute: UnsafeMutablePointer<Onnx__AttributeProto>) -> [UInt8] {
        let size = onnx__attribute_proto__get_packed_size(attribute)
        var bytes = [UInt8](repeating: 0, count: size)
        bytes.withUnsafeMutableBufferPointer { buffer in
            _ = onnx__attribute_proto__pack(attribute, buffer.baseAddress)
        }
        return bytes
    }

    /// Sets a freshly allocated message to its defaults (its descriptor, every field unset).
    static func initialize(_ attribute: UnsafeMutablePointer<Onnx__AttributeProto>) { onnx__attribute_proto__init(attribute) }
    static func initialize(_ node: UnsafeMutablePointer<Onnx__NodeProto>) { onnx__node_proto__init(node) }
    static func initialize(_ tensor: UnsafeMutablePointer<Onnx__TensorProto>) { onnx__tensor_proto__init(tensor) }
    static func initialize(_ sparse: UnsafeMutablePointer<Onnx__SparseTensorProto>) { onnx__sparse_tensor_proto__init(sparse) }
    static func initialize(_ entry: UnsafeMutablePointer<Onnx__StringStringEntryProto>) { onnx__string_string_entry_proto__init(entry) }

    // MARK: - Packing straight into a file

    /// Placeholders for tensor data written later, in place: a data pointer `base + i` (for
    /// i < `offsets.count`) is not data but stands for tensor i, and `base` is address space reserved
    /// without access, so nothing ever reads it. Packing records in `offsets[i]` the file offset
    /// where that tensor's bytes go and seeks past them.
    struct Holes {
        var base: UnsafeRawPointer
        var offsets: UnsafeMutableBufferPointer<Int>
    }

    /// Why `pack(_:to:holes:)` stopped: the system's error number, the bytes that reached the file
    /// (holes included) and the packed size of the model.
    struct PackFailure: Error {
        var errorNumber: Int32
        var written: Int
        var size: Int
    }

    /// Packs `model` to `descriptor` at its current position, through a buffer that gathers small
    /// pieces and writes large ones (tensor data) from their own memory, so packing never holds a
    /// second copy of the model; `holes` are skipped (see `Holes`). Returns the packed size.
    static func pack(_ model: UnsafeMutablePointer<Onnx__ModelProto>, to descriptor: Int32, holes: Holes? = nil) throws(PackFailure) -> Int {
        let size = onnx__model_proto__get_packed_size(model)
        // The buffer protobuf-c calls, with the sink's state right after it in the same block.
        let block = UnsafeMutableRawPointer.allocate(
            byteCount: FileSink.offset + MemoryLayout<FileSink>.stride,
            alignment: max(MemoryLayout<ProtobufCBuffer>.alignment, MemoryLayout<FileSink>.alignment))
        defer { block.deallocate() }
        let buffer = block.bindMemory(to: ProtobufCBuffer.self, capacity: 1)
        buffer.initialize(to: ProtobufCBuffer(append: fileSinkAppend))
        let sink = (block + FileSink.offset).bindMemory(to: FileSink.self, capacity: 1)
        sink.initialize(to: FileSink(descriptor: descriptor, holes: holes))
        defer { sink.pointee.release(); sink.deinitialize(count: 1) }
        _ = onnx__model_proto__pack_to_buffer(model, buffer)
        sink.pointee.flush()
        let state = sink.pointee
        guard state.errorNumber == 0, state.written == size else {
            throw PackFailure(errorNumber: state.errorNumber == 0 ? EIO : state.errorNumber, written: state.written, size: size)
        }
        return size
    }
}

/// protobuf-c's `append` callback of the buffer `ProtobufCalls.pack(_:to:holes:)` builds: the
/// `FileSink` sits `FileSink.offset` bytes after the `ProtobufCBuffer` it is given.
private let fileSinkAppend: @convention(c) (UnsafeMutablePointer<ProtobufCBuffer>?, Int, UnsafePointer<UInt8>?) -> Void = { buffer, length, data in
    guard let buffer else { return }
    let sink = (UnsafeMutableRawPointer(buffer) + FileSink.offset).assumingMemoryBound(to: FileSink.self)
    sink.pointee.append(length, data)
}

/// What protobuf-c packs, written to a file descriptor: small pieces gathered in `pending`, large
/// ones written from their own memory, holes skipped. The first failing write stops all further
/// writing and keeps its error number; `written` counts the bytes that reached the file (and the
/// holes).
private struct FileSink {
    /// Where the sink sits after the `ProtobufCBuffer` in the block the callback receives.
    /// (Computed, not stored: a constant the compiler folds, with no lazy initialisation per call.)
    static var offset: Int {
        (MemoryLayout<ProtobufCBuffer>.stride + MemoryLayout<FileSink>.alignment - 1)
            / MemoryLayout<FileSink>.alignment * MemoryLayout<FileSink>.alignment
    }
    /// Pieces are gathered up to this many bytes before they are written.
    static var pendingBytes: Int { 1 << 20 }

    let descriptor: Int32
    var errorNumber: Int32 = 0
    var written = 0
    var used = 0
    let pending: UnsafeMutableRawPointer
    /// `holes.base` as an address, and the number of holes (0: none).
    let holeBase: UInt
    let holeCount: Int
    let holeOffsets: UnsafeMutablePointer<Int>?

    init(descriptor: Int32, holes: ProtobufCalls.Holes?) {
        self.descriptor = descriptor
        pending = UnsafeMutableRawPointer.allocate(byteCount: Self.pendingBytes, alignment: 16)
        holeBase = holes.map { UInt(bitPattern: $0.base) } ?? 0
        holeCount = holes?.offsets.count ?? 0
        holeOffsets = holes?.offsets.baseAddress
    }

    /// Frees the pending buffer (the sink lives in raw memory: `deinitialize` does not run this).
    func release() { pending.deallocate() }

    mutating func writeAll(_ bytes: UnsafeRawBufferPointer) {
        guard errorNumber == 0, bytes.count > 0 else { return }
        do {
            try FileIO.write(descriptor, bytes)
            written += bytes.count
        } catch {
            errorNumber = error.errorNumber
            written += error.done
        }
    }

    mutating func flush() {
        writeAll(UnsafeRawBufferPointer(start: pending, count: used))
        used = 0
    }

    mutating func append(_ length: Int, _ data: UnsafePointer<UInt8>?) {
        let address = UInt(bitPattern: data)
        if holeCount > 0, address >= holeBase, address - holeBase < UInt(holeCount) {
            flush()
            guard errorNumber == 0 else { return }
            holeOffsets![Int(address - holeBase)] = written
            if length > 0, lseek(descriptor, off_t(length), SEEK_CUR) < 0 {
                errorNumber = errno
                return
            }
            written += length
            return
        }
        guard let data, length > 0 else { return }
        if used + length <= Self.pendingBytes {
            (pending + used).copyMemory(from: data, byteCount: length)
            used += length
            return
        }
        flush()
        if length < Self.pendingBytes / 2 {
            pending.copyMemory(from: data, byteCount: length)
            used = length
        } else {
            writeAll(UnsafeRawBufferPointer(start: data, count: length))
        }
    }
}

/// A C string as Swift `String`; nil pointers are empty strings (protobuf-c's unset proto2 strings).
@inline(__always)
func string(_ pointer: UnsafeMutablePointer<CChar>?) -> String {
    pointer.map { String(cString: $0) } ?? ""
}

/// A protobuf-c repeated field (`n_x`, `x`) as a buffer.
@inline(__always)
func repeated<T>(_ count: Int, _ pointer: UnsafeMutablePointer<T>?) -> UnsafeBufferPointer<T> {
    UnsafeBufferPointer(start: pointer, count: pointer == nil ? 0 : count)
}

/// A protobuf-c repeated message field as an array of non-nil pointers.
@inline(__always)
func messages<T>(_ count: Int, _ pointer: UnsafeMutablePointer<UnsafeMutablePointer<T>?>?) -> [UnsafeMutablePointer<T>] {
    repeated(count, pointer).compactMap { $0 }
}
