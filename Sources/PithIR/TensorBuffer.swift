#if canImport(Glibc)
import Glibc
#endif

/// An immutable block of bytes holding a tensor's elements: 64-byte aligned memory it owns, or a
/// view of a mapped file.
///
/// A buffer is filled once, by the closure given to `init(count:initializingWith:)`,
/// and never changes afterwards, so it can be shared between tensors and
/// threads without copying. The alignment lets readers view the bytes as
/// `Float`, `Double` or any other element type directly; a view that starts anywhere in its file
/// (`viewing(_:of:unaligned:)`) is viewed through an aligned copy when it does not suit the type.
public final class TensorBuffer: @unchecked Sendable {
    /// Alignment of every buffer's first byte.
    public static let alignment = 64

    private let base: UnsafeMutableRawPointer?
    /// Number of bytes in the buffer.
    public let count: Int
    /// For a view of a mapped file (`viewing(_:of:)`): what keeps the mapping alive. Nil when the
    /// buffer owns its memory.
    private let owner: MappedFile?

    /// Allocates `count` bytes and lets `body` fill them. The bytes start zeroed.
    /// If `body` throws, the memory is released and the error rethrown.
    public init(count: Int, initializingWith body: (UnsafeMutableRawBufferPointer) throws -> Void) rethrows {
        precondition(count >= 0, "TensorBuffer: negative byte count")
        self.count = count
        owner = nil
        if count == 0 {
            base = nil
        } else {
            let memory = PageMemory.allocate(byteCount: count)
            do {
                try body(UnsafeMutableRawBufferPointer(start: memory, count: count))
            } catch {
                PageMemory.deallocate(memory, byteCount: count)
                throw error
            }
            base = memory
        }
    }

    private init(view bytes: UnsafeRawBufferPointer, owner: MappedFile) {
        base = bytes.count == 0 ? nil : UnsafeMutableRawPointer(mutating: bytes.baseAddress)
        count = bytes.count
        self.owner = owner
    }

    /// The bytes of a read-only file mapping (`MappedFile`) without copying them, when they start
    /// on a multiple of `alignment`; else a copy. `owner` (the mapping) lives as long as the buffer.
    /// The pages are read from the file when first used and count as the file's, not as memory the
    /// process allocated; `releasePages` gives them back once the buffer has been read.
    ///
    /// With `unaligned`, a view wherever the bytes start (ONNX `raw_data` lies anywhere in its file):
    /// `withUnsafeBytes` gives the file's bytes, and `withUnsafeBufferPointer(as:)` an aligned copy
    /// for the call when they do not start on a multiple of the type's alignment. For readers that
    /// go through the bytes (the container writer), no copy is ever made.
    public static func viewing(_ bytes: UnsafeRawBufferPointer, of owner: MappedFile, unaligned: Bool = false) -> TensorBuffer {
        guard let start = bytes.baseAddress, unaligned || UInt(bitPattern: start) % UInt(alignment) == 0 else {
            return TensorBuffer(copying: bytes)
        }
        return TensorBuffer(view: bytes, owner: owner)
    }

    /// Whether the bytes are a view of a mapped file rather than memory the buffer owns.
    public var isMappedView: Bool { owner != nil }

    /// For a view of a mapped file: drops the pages wholly inside it from the process's resident
    /// memory (`madvise(MADV_DONTNEED)`); they are read from the file again if used again. Nothing
    /// for a buffer that owns its memory. For readers that go through a large model once.
    public func releasePages() { releasePages(bytes: 0..<count) }

    /// As `releasePages()`, for the pages wholly inside bytes `range` of the buffer: a writer that
    /// goes through a large tensor a piece at a time gives each piece back once read.
    public func releasePages(bytes range: Range<Int>) {
        guard let owner, let base, let file = owner.bytes.baseAddress, !range.isEmpty, range.upperBound <= count else { return }
        let offset = base - UnsafeMutableRawPointer(mutating: file)
        owner.releasePages(offset + range.lowerBound..<offset + range.upperBound)
    }

    /// A buffer holding a copy of `bytes`.
    public convenience init(copying bytes: UnsafeRawBufferPointer) {
        self.init(count: bytes.count) { destination in
            if let source = bytes.baseAddress, bytes.count > 0 {
                destination.baseAddress!.copyMemory(from: source, byteCount: bytes.count)
            }
        }
    }

    /// A buffer holding a copy of `bytes` (one memory copy).
    public convenience init(bytes: [UInt8]) {
        self.init(count: bytes.count) { destination in
            bytes.withUnsafeBytes { destination.copyMemory(from: $0) }
        }
    }

    /// A buffer holding a copy of `bytes`.
    public convenience init<C: Collection>(bytes: C) where C.Element == UInt8 {
        self.init(count: bytes.count) { destination in
            _ = destination.initializeMemory(as: UInt8.self, from: bytes)
        }
    }

    /// A buffer holding the little-endian bytes of `values`.
    public convenience init<T: BitwiseCopyable>(values: [T]) {
        let byteCount = values.count * MemoryLayout<T>.stride
        self.init(count: byteCount) { destination in
            values.withUnsafeBytes { destination.copyMemory(from: $0) }
        }
    }

    deinit {
        guard owner == nil else { return }
        base.map { PageMemory.deallocate($0, byteCount: count) }
    }

    /// Calls `body` with the bytes.
    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try body(UnsafeRawBufferPointer(start: base, count: count))
    }

    /// Calls `body` with the bytes viewed as `T`; the byte count must be a
    /// multiple of `T`'s stride.
    public func withUnsafeBufferPointer<T: BitwiseCopyable, R>(
        as type: T.Type, _ body: (UnsafeBufferPointer<T>) throws -> R
    ) rethrows -> R {
        precondition(count % MemoryLayout<T>.stride == 0, "TensorBuffer: \(count) bytes is not a whole number of \(T.self)")
        if let base, UInt(bitPattern: base) % UInt(MemoryLayout<T>.alignment) != 0 {
            // An unaligned view: the elements through an aligned copy, for this call only.
            let copy = UnsafeMutableRawPointer.allocate(byteCount: count, alignment: Self.alignment)
            defer { copy.deallocate() }
            copy.copyMemory(from: base, byteCount: count)
            return try body(UnsafeBufferPointer(start: copy.assumingMemoryBound(to: T.self), count: count / MemoryLayout<T>.stride))
        }
        let typed = base.map { UnsafePointer($0.assumingMemoryBound(to: T.self)) }
        return try body(UnsafeBufferPointer(start: typed, count: count / MemoryLayout<T>.stride))
    }

    /// The bytes as an array (a copy).
    public var bytes: [UInt8] { withUnsafeBytes { Array($0) } }
}

extension TensorBuffer: Equatable {
    /// Byte-wise equality.
    public static func == (lhs: TensorBuffer, rhs: TensorBuffer) -> Bool {
        if lhs === rhs { return true }
        guard lhs.count == rhs.count else { return false }
        return lhs.withUnsafeBytes { a in rhs.withUnsafeBytes { b in a.elementsEqual(b) } }
    }
}
