/// Writes bits least-significant first: the first bit written is bit 0 of byte 0
/// (the DEFLATE convention). Values of up to 56 bits go in one call.
public struct BitWriter: Sendable {
    public private(set) var bytes: [UInt8] = []
    private var buffer: UInt64 = 0
    private var count = 0

    public init(capacity: Int = 0) { bytes.reserveCapacity(capacity) }

    /// Appends the low `width` bits of `value` (0 ≤ width ≤ 56).
    @inline(__always)
    public mutating func write(_ value: UInt64, width: Int) {
        precondition(width >= 0 && width <= 56, "BitWriter: width \(width) outside 0…56")
        buffer |= (value & ((1 << UInt64(width)) &- 1)) << UInt64(count)
        count += width
        while count >= 8 {
            bytes.append(UInt8(truncatingIfNeeded: buffer))
            buffer >>= 8
            count -= 8
        }
    }

    /// Bits written so far.
    public var bitCount: Int { bytes.count * 8 + count }

    /// The bytes, the last one padded with zero bits.
    public mutating func finish() -> [UInt8] {
        if count > 0 { bytes.append(UInt8(truncatingIfNeeded: buffer)); buffer = 0; count = 0 }
        return bytes
    }
}

/// Reads bits in the order `BitWriter` writes them. Reading past the end is an error, never a crash.
public struct BitReader {
    private let bytes: UnsafeRawBufferPointer
    private var position = 0  // next byte to load
    private var buffer: UInt64 = 0
    private var available = 0  // valid bits in buffer

    public init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    @inline(__always)
    private mutating func refill() {
        while available <= 56, position < bytes.count {
            buffer |= UInt64(bytes[position]) << UInt64(available)
            position += 1
            available += 8
        }
    }

    /// Reads `width` bits (0…56), or nil when the input ends first.
    public mutating func read(width: Int) -> UInt64? {
        precondition(width >= 0 && width <= 56, "BitReader: width \(width) outside 0…56")
        if available < width { refill() }
        guard available >= width else { return nil }
        let value = buffer & ((1 << UInt64(width)) &- 1)
        buffer >>= UInt64(width)
        available -= width
        return value
    }
}
