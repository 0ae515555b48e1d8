internal import CONNXProto
internal import CProtobufC

/// The thin layer between Swift and the protobuf-c generated code: every call
/// into `CONNXProto` goes through here, and no C type leaves this module.
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

    /// The wire encoding of an attribute, for attribute kinds the IR keeps opaque.
    static func encode(_ attribute: UnsafeMutablePointer<Onnx__AttributeProto>) -> [UInt8] {
        let size = onnx__attribute_proto__get_packed_size(attribute)
        var bytes = [UInt8](repeating: 0, count: size)
        bytes.withUnsafeMutableBufferPointer { buffer in
            _ = onnx__attribute_proto__pack(attribute, buffer.baseAddress)
        }
        return bytes
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
