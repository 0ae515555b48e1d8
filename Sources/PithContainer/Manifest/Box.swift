/// A box so that an encoding can nest one level (sparse values).
public final class Box<T: Sendable & Codable & Equatable>: Sendable, Codable, Equatable {
    public let value: T
    public init(_ value: T) { self.value = value }
    public init(from decoder: any Decoder) throws { value = try T(from: decoder) }
    public func encode(to encoder: any Encoder) throws { try value.encode(to: encoder) }
    public static func == (lhs: Box<T>, rhs: Box<T>) -> Bool { lhs.value == rhs.value }
}
