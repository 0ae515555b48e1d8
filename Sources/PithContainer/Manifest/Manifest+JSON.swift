import Foundation

/// The one JSON configuration of the manifest, for writing and reading it.
///
/// The manifest's bytes are part of the format: equal inputs must give equal files (the writer is
/// deterministic, and identical containers compare with `cmp`), so keys are snake_case and sorted, and
/// nothing is pretty-printed. Reports (`inspect`, `compress`, `verify` JSON) share the key style but are
/// for reading: they are pretty-printed, and nothing depends on their exact bytes. Slashes are not
/// escaped in either (`\/` is legal JSON that only makes names harder to read).
extension Manifest {
    /// The manifest as the UTF-8 JSON a container stores (before the zstd frame); without the
    /// streams' `offset` for a packed container (format 1.6), whose streams follow each other in
    /// index order.
    func encodedJSON(offsets: Bool = true) throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.userInfo[StreamEntry.omitsOffsets] = !offsets
        return [UInt8](try encoder.encode(self))
    }

    /// The manifest in `json`. Keys this Pith does not know are ignored (a minor version may add
    /// optional ones); values it does not know decode and are refused when used, by name.
    init(json: [UInt8]) throws {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        self = try decoder.decode(Manifest.self, from: Data(json))
    }
}

extension Manifest.StreamEntry {
    /// `offset` of an entry read without one (a packed container's, until the reader places it).
    static let absentOffset = -1
    /// Encoder option: `true` leaves `offset` out.
    static let omitsOffsets = CodingUserInfoKey(rawValue: "pith.manifest.omitsOffsets")!

    enum CodingKeys: String, CodingKey {
        case offset, length, coding, symbols, symbolBits, codeLengths, crc32c, dictionary
    }

    /// As the synthesized decoding, except that `offset` may be absent (`absentOffset`).
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        offset = try c.decodeIfPresent(Int.self, forKey: .offset) ?? Self.absentOffset
        length = try c.decode(Int.self, forKey: .length)
        coding = try c.decode(Coding.self, forKey: .coding)
        symbols = try c.decode(Int.self, forKey: .symbols)
        symbolBits = try c.decodeIfPresent(Int.self, forKey: .symbolBits)
        codeLengths = try c.decodeIfPresent(String.self, forKey: .codeLengths)
        crc32c = try c.decode(String.self, forKey: .crc32c)
        dictionary = try c.decodeIfPresent(String.self, forKey: .dictionary)
    }

    /// As the synthesized encoding, except that `offset` is left out when the encoder's
    /// `omitsOffsets` is `true`.
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        if encoder.userInfo[Self.omitsOffsets] as? Bool != true { try c.encode(offset, forKey: .offset) }
        try c.encode(length, forKey: .length)
        try c.encode(coding, forKey: .coding)
        try c.encode(symbols, forKey: .symbols)
        try c.encodeIfPresent(symbolBits, forKey: .symbolBits)
        try c.encodeIfPresent(codeLengths, forKey: .codeLengths)
        try c.encode(crc32c, forKey: .crc32c)
        try c.encodeIfPresent(dictionary, forKey: .dictionary)
    }
}
