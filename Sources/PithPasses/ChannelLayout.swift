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

    /// Row-major element indices of channel `c`, in order.
    func elements(of c: Int) -> [Int] {
        let total = shape.reduce(1, *)
        guard channels > 1 else { return Array(0..<total) }
        let inner = shape[(axis + 1)...].reduce(1, *)
        let outer = total / (inner * channels)
        var result: [Int] = []
        result.reserveCapacity(outer * inner)
        for o in 0..<outer {
            let base = (o * channels + c) * inner
            result += base..<(base + inner)
        }
        return result
    }
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
