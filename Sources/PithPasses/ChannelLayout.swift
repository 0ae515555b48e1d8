import PithIR

/// How per-channel passes slice a tensor: one table for the tensor, or one per output channel (axis 0).
public enum Granularity: String, Sendable, Codable, CaseIterable {
    case tensor
    case channel
}

/// How a per-channel pass slices a tensor: the elements of each index along `axis`.
struct ChannelLayout {
    var axis: Int
    var channels: Int
    private var shape: [Int]

    /// One channel per index along `axis`; `perTensor` makes the whole tensor one channel.
    init(shape: [Int], axis: Int, perTensor: Bool) {
        self.shape = shape
        self.axis = shape.isEmpty ? 0 : Swift.min(axis, shape.count - 1)
        channels = perTensor || shape.isEmpty ? 1 : Swift.max(1, shape[self.axis])
    }

    /// Row-major element indices of channel `c`, in order, made as they are iterated (a list of
    /// them would take 8 bytes per element of the tensor).
    func elements(of c: Int) -> ChannelElements {
        let total = shape.reduce(1, *)
        guard channels > 1 else { return ChannelElements(base: 0, inner: total, stride: total, outer: total == 0 ? 0 : 1) }
        let inner = shape[(axis + 1)...].reduce(1, *)
        return ChannelElements(base: c * inner, inner: inner, stride: channels * inner, outer: total / Swift.max(1, inner * channels))
    }
}

/// The element indices of one channel: `outer` runs of `inner` consecutive indices, the first at
/// `base`, each `stride` after the one before.
struct ChannelElements: Sequence {
    let base: Int, inner: Int, stride: Int, outer: Int

    struct Iterator: IteratorProtocol {
        let elements: ChannelElements
        var run = 0, offset = 0

        mutating func next() -> Int? {
            if offset == elements.inner {
                run += 1
                offset = 0
            }
            guard run < elements.outer, elements.inner > 0 else { return nil }
            defer { offset += 1 }
            return elements.base + run * elements.stride + offset
        }
    }

    func makeIterator() -> Iterator { Iterator(elements: self) }
    var underestimatedCount: Int { inner * outer }
}

extension CompressionRun {
    /// The axis of a weight's output channels: the axis per-channel passes slice along, from the
    /// tensor's role (`TensorRole.outputAxis`): ONNX `Conv` (M, C, kH, kW) and `Gemm` with
    /// `transB = 1` (N, K): axis 0; `Gemm` with `transB = 0` and `MatMul` (K, N): the last axis;
    /// `ConvTranspose` (C, M, …): axis 1; Keras kernels (Dense (in, out), Conv2D HWIO): the last axis.
    /// Tensors without a weight role: the last axis for Keras weights, else axis 0.
    func outputAxis(_ id: TensorID) -> Int {
        let tensor = model.tensors[id]
        let last = Swift.max(0, tensor.shape.count - 1)
        if let axis = roles[id].outputAxis, axis <= last { return axis }
        if case .kerasWeight = tensor.origin { return last }
        return 0
    }
}
