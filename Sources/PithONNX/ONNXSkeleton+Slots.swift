public import PithIR
internal import CONNXProto

extension ONNXSkeleton {
    /// What a skeleton says of the tensor one of its slots holds, without the tensor: its name, and
    /// its type and shape where the skeleton keeps them (docs/container-format.md, "What the
    /// skeleton keeps of a slot").
    public struct SlotLayout: Equatable, Sendable {
        /// The tensor's name, as `ONNXReader` lists it (`TensorSlots.tensorName`).
        public var name: String
        /// The type the slot declares; nil when it declares none Pith knows (a `TensorProto`
        /// without `data_type`, or of a type Pith does not read).
        public var dtype: DType?
        /// The shape the slot declares; nil when the skeleton does not keep it: a Constant's
        /// `value_floats`, `value_ints` or `value_strings`, whose list the skeleton empties, or a
        /// negative dimension.
        public var shape: [Int]?

        public init(name: String, dtype: DType?, shape: [Int]?) {
            self.name = name
            self.dtype = dtype
            self.shape = shape
        }

        /// The bytes of the tensor's dense data (`DType.storageBytes`, sub-byte types packed): nil
        /// for strings, whose lengths the skeleton does not keep, and when the type or shape is
        /// unknown or the count overflows.
        public var denseBytes: Int? {
            guard let dtype, dtype != .string, let shape, let count = Shape.elementCount(shape) else { return nil }
            return dtype.storageBytes(count: count)
        }
    }

    /// The slots of `skeleton` (`strip`'s output), in `TensorSlots` order — the order of the
    /// tensors `ONNXReader` lists and `ONNXWriter` fills back in. A `TensorProto` slot gives its
    /// `data_type` and `dims`; a sparse tensor the type of its `values` and its own `dims`; a
    /// Constant's `value_float` and `value_int` a float32 or int64 scalar, `value_string` a string
    /// scalar, and `value_floats`, `value_ints`, `value_strings` a float32, int64 or string list of
    /// unknown length. `file` names the skeleton in errors (one that does not parse is malformed).
    public static func slots(of skeleton: [UInt8], file: String) throws -> [SlotLayout] {
        try skeleton.withUnsafeBytes { bytes in
            try ONNXReader.withParsedModel(bytes, file: file) { model in
                var layouts: [SlotLayout] = []
                try TensorSlots.forEach(in: model, file: file) { slot, place in
                    layouts.append(layout(slot, name: TensorSlots.tensorName(slot, at: place)))
                }
                return layouts
            }
        }
    }

    private static func layout(_ slot: TensorSlots.Slot, name: String) -> SlotLayout {
        func declared(_ tensor: UnsafeMutablePointer<Onnx__TensorProto>?) -> DType? {
            guard let tensor, tensor.pointee.has_data_type != 0 else { return nil }
            return ONNXDataType(rawValue: tensor.pointee.data_type).dtype
        }
        func shape(_ count: Int, _ dims: UnsafeMutablePointer<Int64>?) -> [Int]? {
            let dims = repeated(count, dims)
            guard dims.allSatisfy({ $0 >= 0 && $0 <= Int64(Int.max) }) else { return nil }
            return dims.map { Int($0) }
        }
        switch slot {
        case .tensor(let t):
            return SlotLayout(name: name, dtype: declared(t), shape: shape(t.pointee.n_dims, t.pointee.dims))
        case .sparseTensor(let s):
            return SlotLayout(name: name, dtype: declared(s.pointee.values), shape: shape(s.pointee.n_dims, s.pointee.dims))
        case .constantValue(_, let value):
            switch value {
            case .float: return SlotLayout(name: name, dtype: .float32, shape: [])
            case .int: return SlotLayout(name: name, dtype: .int64, shape: [])
            case .string: return SlotLayout(name: name, dtype: .string, shape: [])
            case .floats: return SlotLayout(name: name, dtype: .float32, shape: nil)
            case .ints: return SlotLayout(name: name, dtype: .int64, shape: nil)
            case .strings: return SlotLayout(name: name, dtype: .string, shape: nil)
            }
        }
    }
}
