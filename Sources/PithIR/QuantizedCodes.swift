/// The codes of a quantized tensor, one per element, held in the narrowest integer type their
/// scheme allows: an int8 tensor's codes take one byte each, not four.
///
/// Elements read and write as `Int32` whatever the storage. Writing a code the storage cannot hold
/// widens the storage (to 16 bits, then 32) instead of truncating it, so a caller never loses a
/// code; `QuantizedCodes(_: [Int32])` picks the narrowest storage that holds every code given.
/// Equality compares the codes, not how they are held.
public struct QuantizedCodes: RandomAccessCollection, MutableCollection, Sendable, Equatable, ExpressibleByArrayLiteral {
    /// The integer type each code is held in.
    public enum Width: Sendable, Equatable, CaseIterable {
        case int8, uint8, int16, uint16, int32

        /// The narrowest width for codes of `bits` bits (sign-extended when `signed`).
        public init(bits: Int, signed: Bool) {
            switch bits {
            case ...8: self = signed ? .int8 : .uint8
            case ...16: self = signed ? .int16 : .uint16
            default: self = .int32
            }
        }

        /// Bytes one code takes.
        public var bytes: Int {
            switch self {
            case .int8, .uint8: return 1
            case .int16, .uint16: return 2
            case .int32: return 4
            }
        }

        func holds(_ code: Int32) -> Bool {
            switch self {
            case .int8: return Int8(exactly: code) != nil
            case .uint8: return UInt8(exactly: code) != nil
            case .int16: return Int16(exactly: code) != nil
            case .uint16: return UInt16(exactly: code) != nil
            case .int32: return true
            }
        }
    }

    enum Storage: Sendable {
        case int8([Int8]), uint8([UInt8]), int16([Int16]), uint16([UInt16]), int32([Int32])
    }

    private(set) var storage: Storage

    /// `count` codes of `value`, held at `width` (wider if `value` needs it).
    public init(repeating value: Int32 = 0, count: Int, width: Width) {
        let width = width.holds(value) ? width : Self.narrowest(min: value, max: value)
        switch width {
        case .int8: storage = .int8(Array(repeating: Int8(value), count: count))
        case .uint8: storage = .uint8(Array(repeating: UInt8(value), count: count))
        case .int16: storage = .int16(Array(repeating: Int16(value), count: count))
        case .uint16: storage = .uint16(Array(repeating: UInt16(value), count: count))
        case .int32: storage = .int32(Array(repeating: value, count: count))
        }
    }

    /// The codes given, held in the narrowest type that holds all of them.
    public init(_ codes: [Int32]) { self.init(codes, alsoHolding: nil) }

    /// The codes given, held in the narrowest type that holds all of them and `extra` too.
    private init(_ codes: [Int32], alsoHolding extra: Int32?) {
        var low = extra ?? Int32.max, high = extra ?? Int32.min
        for code in codes {
            low = Swift.min(low, code)
            high = Swift.max(high, code)
        }
        switch codes.isEmpty && extra == nil ? .uint8 : Self.narrowest(min: low, max: high) {
        case .int8: storage = .int8(codes.map { Int8(truncatingIfNeeded: $0) })
        case .uint8: storage = .uint8(codes.map { UInt8(truncatingIfNeeded: $0) })
        case .int16: storage = .int16(codes.map { Int16(truncatingIfNeeded: $0) })
        case .uint16: storage = .uint16(codes.map { UInt16(truncatingIfNeeded: $0) })
        case .int32: storage = .int32(codes)
        }
    }

    public init(arrayLiteral codes: Int32...) { self.init(codes) }

    public init(int8 codes: [Int8]) { storage = .int8(codes) }
    public init(uint8 codes: [UInt8]) { storage = .uint8(codes) }
    public init(int16 codes: [Int16]) { storage = .int16(codes) }
    public init(uint16 codes: [UInt16]) { storage = .uint16(codes) }

    /// The narrowest width holding every code in `min…max` (unsigned when none is negative).
    static func narrowest(min: Int32, max: Int32) -> Width {
        if min >= 0 { return max <= Int32(UInt8.max) ? .uint8 : max <= Int32(UInt16.max) ? .uint16 : .int32 }
        if min >= Int32(Int8.min), max <= Int32(Int8.max) { return .int8 }
        if min >= Int32(Int16.min), max <= Int32(Int16.max) { return .int16 }
        return .int32
    }

    /// The type each code is held in now.
    public var width: Width {
        switch storage {
        case .int8: return .int8
        case .uint8: return .uint8
        case .int16: return .int16
        case .uint16: return .uint16
        case .int32: return .int32
        }
    }

    public var startIndex: Int { 0 }
    public var endIndex: Int {
        switch storage {
        case .int8(let a): return a.count
        case .uint8(let a): return a.count
        case .int16(let a): return a.count
        case .uint16(let a): return a.count
        case .int32(let a): return a.count
        }
    }

    public subscript(position: Int) -> Int32 {
        get {
            switch storage {
            case .int8(let a): return Int32(a[position])
            case .uint8(let a): return Int32(a[position])
            case .int16(let a): return Int32(a[position])
            case .uint16(let a): return Int32(a[position])
            case .int32(let a): return a[position]
            }
        }
        set { store(newValue, at: position) }
    }

    /// Adds `code` at the end (widening the storage if it needs more bits).
    public mutating func append(_ code: Int32) { store(code, at: nil) }

    /// Writes `code` at `position`, or appends it when `position` is nil.
    private mutating func store(_ code: Int32, at position: Int?) {
        if !width.holds(code) { widen(toHold: code) }
        func put<T>(_ array: inout [T], _ value: T) {
            if let position { array[position] = value } else { array.append(value) }
        }
        // Each case takes its array out of `storage` before writing, so that the write does not
        // copy it (the enum would otherwise hold a second reference).
        switch storage {
        case .int8(var a):
            storage = .int32([])
            put(&a, Int8(code))
            storage = .int8(a)
        case .uint8(var a):
            storage = .int32([])
            put(&a, UInt8(code))
            storage = .uint8(a)
        case .int16(var a):
            storage = .int32([])
            put(&a, Int16(code))
            storage = .int16(a)
        case .uint16(var a):
            storage = .int32([])
            put(&a, UInt16(code))
            storage = .uint16(a)
        case .int32(var a):
            storage = .int32([])
            put(&a, code)
            storage = .int32(a)
        }
    }

    /// Rewrites the storage at a width that holds every code so far and `code`.
    private mutating func widen(toHold code: Int32) { self = QuantizedCodes(Array(self), alsoHolding: code) }

    /// The low `bits` bits of each code, one byte each (`bits` ≤ 8): what a container stream holds.
    public func lowBytes(bits: Int) -> [UInt8] {
        let mask = UInt8(truncatingIfNeeded: (1 << bits) - 1)
        switch storage {
        case .int8(let a): return a.map { UInt8(bitPattern: $0) & mask }
        case .uint8(let a): return bits == 8 ? a : a.map { $0 & mask }
        default: return map { UInt8(truncatingIfNeeded: $0) & mask }
        }
    }

    /// The low `bits` bits of each code, two bytes each (`bits` ≤ 16).
    public func lowHalfwords(bits: Int) -> [UInt16] {
        let mask = UInt16(truncatingIfNeeded: (1 << bits) - 1)
        switch storage {
        case .int16(let a): return a.map { UInt16(bitPattern: $0) & mask }
        case .uint16(let a): return bits == 16 ? a : a.map { $0 & mask }
        default: return map { UInt16(truncatingIfNeeded: $0) & mask }
        }
    }

    public static func == (a: QuantizedCodes, b: QuantizedCodes) -> Bool {
        a.count == b.count && a.elementsEqual(b)
    }
}
