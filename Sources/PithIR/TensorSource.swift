/// Tensors handed out one at a time by whoever holds them (a container being read, or an array in
/// memory), so that a writer can lay its file out from names, types and shapes alone and then ask
/// for each tensor's data where it goes — on several threads, each with its own `Worker` (scratch
/// memory) — without a whole copy of a large model ever being held.
public protocol TensorSource: Sendable {
    /// Per-thread state: scratch memory reused from tensor to tensor.
    associatedtype Worker

    var tensorCount: Int { get }

    /// Name, type and shape of tensor `index` (0..<tensorCount), without its data.
    func header(_ index: Int) -> TensorInfo

    func makeWorker() -> Worker

    /// Tensor `index` with dense (or string) storage.
    func denseTensor(_ index: Int, worker: inout Worker) throws -> Tensor

    /// The little-endian element bytes of tensor `index` stored dense, handed to `body` in one or
    /// more pieces, each with its byte offset in the tensor, in any order, that together cover
    /// `header(index).bytes` bytes once. Not for strings.
    func denseBytes(_ index: Int, worker: inout Worker, _ body: (_ offset: Int, _ piece: UnsafeRawBufferPointer) throws -> Void) throws
}

/// Tensors already in memory, as a source: compressed storage is densified when asked for.
public struct TensorArray: TensorSource {
    public let tensors: [Tensor]

    public init(_ tensors: [Tensor]) { self.tensors = tensors }

    public var tensorCount: Int { tensors.count }

    public func header(_ index: Int) -> TensorInfo {
        let tensor = tensors[index]
        return TensorInfo(name: tensor.name, dtype: tensor.dtype, shape: tensor.shape)
    }

    public func makeWorker() {}

    public func denseTensor(_ index: Int, worker: inout Void) throws -> Tensor { tensors[index].densified() }

    public func denseBytes(_ index: Int, worker: inout Void, _ body: (_ offset: Int, _ piece: UnsafeRawBufferPointer) throws -> Void) throws {
        guard case .dense(let buffer) = tensors[index].densified().storage else { return }
        try buffer.withUnsafeBytes { try body(0, $0) }
    }
}
