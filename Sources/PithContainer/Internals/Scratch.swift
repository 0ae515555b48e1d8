import PithIR

/// Reusable memory for decoded streams, grown as needed and never shrunk.
final class Scratch {
    private var memory: UnsafeMutableRawPointer?
    private var capacity = 0

    /// `count` bytes of scratch; their contents are whatever was left there.
    func bytes(_ count: Int) -> UnsafeMutableBufferPointer<UInt8> {
        if count > capacity {
            memory.map { PageMemory.deallocate($0, byteCount: capacity) }
            memory = PageMemory.allocate(byteCount: count)
            capacity = count
        }
        return UnsafeMutableBufferPointer(start: memory?.assumingMemoryBound(to: UInt8.self), count: count)
    }

    deinit { memory.map { PageMemory.deallocate($0, byteCount: capacity) } }
}
