public import PithIR

/// An ONNX model as its skeleton followed by the data of its slots, with no per-tensor index: what
/// the whole-file form's `onnx-skeleton-1` variant compresses (docs/container-format.md, "Whole-file
/// form"). Each slot's type and shape come from the skeleton (`ONNXSkeleton.slots`), so only what
/// the skeleton does not say is stored beside the data:
///
///     varint  the skeleton's length in bytes, S
///     S bytes the skeleton (`ONNXSkeleton.strip`)
///     then for each slot, in slot order:
///       a slot of known shape and a numeric type: its dense bytes (`SlotLayout.denseBytes`) as is
///       a string slot of known shape: for each string, a varint length and its bytes
///       a Constant list (unknown length): a varint element count, then the elements as above
///
/// A varint is unsigned LEB128: 7 bits a byte, least significant first, the high bit set on every
/// byte but the last; at most 10 bytes.
public enum ONNXSkeletonPayload {
    /// The payload of the model whose skeleton is `skeleton` and whose tensors (as `ONNXReader`
    /// lists them, in slot order) are `tensors`; nil when a tensor does not fit what the skeleton
    /// says of its slot (another name, type or shape, storage that is not dense bytes or strings,
    /// a slot of unknown type). `file` names the model in errors (a skeleton that does not parse).
    public static func encode(skeleton: [UInt8], tensors: [Tensor], file: String) throws -> [UInt8]? {
        let layouts = try ONNXSkeleton.slots(of: skeleton, file: file)
        guard layouts.count == tensors.count else { return nil }
        var payload: [UInt8] = []
        appendVarint(UInt64(skeleton.count), to: &payload)
        payload += skeleton
        for (layout, tensor) in zip(layouts, tensors) {
            guard tensor.name == layout.name, let dtype = layout.dtype, tensor.dtype == dtype else { return nil }
            if let shape = layout.shape {
                guard tensor.shape == shape else { return nil }
            } else {
                guard tensor.shape.count == 1 else { return nil }
                appendVarint(UInt64(tensor.shape[0]), to: &payload)
            }
            switch tensor.storage {
            case .dense(let buffer):
                guard dtype != .string, buffer.count == dtype.storageBytes(count: tensor.count) else { return nil }
                buffer.withUnsafeBytes { payload.append(contentsOf: $0) }
            case .strings(let values):
                guard dtype == .string, values.count == tensor.count else { return nil }
                for value in values {
                    appendVarint(UInt64(value.count), to: &payload)
                    payload += value
                }
            default:
                return nil
            }
        }
        return payload
    }

    /// The skeleton and the tensors of `payload`, each tensor named, typed and shaped as the
    /// skeleton's slot says. Every length is checked against the bytes that remain before anything
    /// is allocated; a skeleton length past the payload, data too short for the slots or bytes left
    /// after the last one are malformed. `file` names the container in errors.
    public static func decode(_ payload: [UInt8], file: String) throws -> (skeleton: [UInt8], tensors: [Tensor]) {
        var reader = Reader(bytes: payload, file: file)
        let skeletonBytes = try reader.varint("the skeleton's length")
        guard skeletonBytes <= UInt64(reader.remaining) else {
            throw ONNXError(
                .malformed, file: file,
                "the skeleton's length, \(skeletonBytes) bytes, is past the \(reader.remaining) bytes that follow it: the file is damaged")
        }
        let skeleton = reader.take(Int(skeletonBytes))
        let layouts = try ONNXSkeleton.slots(of: skeleton, file: file)
        var tensors: [Tensor] = []
        tensors.reserveCapacity(layouts.count)
        for (index, layout) in layouts.enumerated() {
            let what = "slot \(index + 1) (`\(layout.name)`)"
            guard let dtype = layout.dtype else {
                throw ONNXError(.malformed, file: file, "\(what): the skeleton declares no data type Pith knows, so its data cannot be read")
            }
            let shape: [Int]
            if let known = layout.shape {
                shape = known
            } else {
                let count = try reader.varint("\(what)'s element count")
                // Every element takes at least one byte: a count past the bytes left cannot be right.
                guard count <= UInt64(reader.remaining) else {
                    throw ONNXError(
                        .malformed, file: file, "\(what): \(count) elements, more than the \(reader.remaining) bytes left: the file is damaged")
                }
                shape = [Int(count)]
            }
            guard let count = Shape.elementCount(shape) else {
                throw ONNXError(.malformed, file: file, "\(what): its shape \(Shape.describe(shape)) has too many elements")
            }
            let storage: TensorStorage
            if dtype == .string {
                guard count <= reader.remaining else {
                    throw ONNXError(
                        .malformed, file: file, "\(what): \(count) strings need at least \(count) bytes, \(reader.remaining) are left: the file is damaged")
                }
                var values: [[UInt8]] = []
                values.reserveCapacity(count)
                for element in 0..<count {
                    let length = try reader.varint("\(what)'s string \(element + 1) length")
                    guard length <= UInt64(reader.remaining) else {
                        throw ONNXError(
                            .malformed, file: file,
                            "\(what): string \(element + 1) of \(length) bytes is past the \(reader.remaining) bytes left: the file is damaged")
                    }
                    values.append(reader.take(Int(length)))
                }
                storage = .strings(values)
            } else {
                guard let bytes = dtype.storageBytes(count: count), bytes <= reader.remaining else {
                    throw ONNXError(
                        .malformed, file: file,
                        "\(what): \(dtype.rawValue) \(Shape.describe(shape)) needs \(dtype.storageBytes(count: count).map { "\($0)" } ?? "too many") bytes, "
                            + "\(reader.remaining) are left: the file is damaged")
                }
                storage = .dense(TensorBuffer(bytes: reader.take(bytes)))
            }
            let origin = TensorOrigin.initializer(graph: .main)  // replaced by the reader's own when the model is read
            tensors.append(Tensor(name: layout.name, dtype: dtype, shape: shape, storage: storage, origin: origin))
        }
        guard reader.remaining == 0 else {
            throw ONNXError(
                .malformed, file: file, "\(reader.remaining) bytes follow the data of the last of the \(layouts.count) slots: the file is damaged")
        }
        return (skeleton, tensors)
    }

    /// The model file `payload` holds, packed again from its skeleton and tensors (`ONNXWriter`);
    /// one larger than `maximumBytes` is refused. Errors as `decode`'s.
    public static func modelFile(_ payload: [UInt8], file: String, maximumBytes: Int) throws -> [UInt8] {
        let (skeleton, tensors) = try decode(payload, file: file)
        return try ONNXWriter.bytes(skeleton: skeleton, tensors: tensors, file: file, maximumBytes: maximumBytes)
    }

    static func appendVarint(_ value: UInt64, to bytes: inout [UInt8]) { WireScanner.appendVarint(value, to: &bytes) }

    /// Reads a payload front to back.
    private struct Reader {
        let bytes: [UInt8]
        let file: String
        var position = 0

        init(bytes: [UInt8], file: String) {
            self.bytes = bytes
            self.file = file
        }

        var remaining: Int { bytes.count - position }

        /// The next `count` bytes, which the caller checked remain.
        mutating func take(_ count: Int) -> [UInt8] {
            defer { position += count }
            return Array(bytes[position..<position + count])
        }

        /// The next varint; `what` names it in errors (cut short, or longer than 64 bits).
        mutating func varint(_ what: String) throws -> UInt64 {
            var value: UInt64 = 0
            for shift in stride(from: 0, to: 70, by: 7) {
                guard position < bytes.count else {
                    throw ONNXError(.malformed, file: file, "\(what): the varint is cut short at byte \(position): the file is damaged")
                }
                let byte = bytes[position]
                position += 1
                guard shift < 63 || byte <= 1 else { break }
                value |= UInt64(byte & 0x7F) << UInt64(shift)
                if byte & 0x80 == 0 { return value }
            }
            throw ONNXError(.malformed, file: file, "\(what): the varint at byte \(position) is longer than 64 bits: the file is damaged")
        }
    }
}
