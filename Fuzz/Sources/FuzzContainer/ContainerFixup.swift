import Foundation
import PithCoding

/// Makes a mutated container's checksums valid again, so that fuzzing reaches past them: with
/// random bytes almost every input would stop at the header CRC, and the reader's real work — the
/// manifest, the stream table, the encodings, the Huffman tables — would go untested.
///
/// When the header's manifest does not end where the file ends (bytes were added or removed), its
/// length is set to reach the end. With a plain-JSON manifest (header flag bit 0 clear), each
/// stream's `crc32c` in the manifest text is recomputed from the bytes its `offset` and `length` name
/// (inside the file; in a packed container, format 1.6's flag bit 2, the streams follow each other
/// from byte 64; with flag bit 3 the JSON ends at the first 0x00 byte, the skeleton after it). Then
/// the manifest's and the header's CRCs. Anything it cannot make sense of stays as it is.
enum ContainerFixup {
    static let magic: [UInt8] = [0x89, 0x50, 0x49, 0x54, 0x48, 0x0D, 0x0A, 0x1A]

    static func fixed(_ input: UnsafeRawBufferPointer) -> [UInt8] {
        var bytes = Array(input)
        guard bytes.count >= 64, Array(bytes[0..<8]) == magic else { return bytes }
        let offset = load(bytes, 16), flags = load32(bytes, 12), packed = flags & 4 != 0
        guard offset >= 64, packed || offset % 64 == 0, offset <= UInt64(bytes.count) else { return bytes }
        let length = UInt64(bytes.count) - offset
        store(&bytes, 24, length)
        let manifestRange = Int(offset)..<bytes.count
        if flags & 1 == 0 {
            let json = flags & 8 != 0 ? manifestRange.lowerBound..<(bytes[manifestRange].firstIndex(of: 0) ?? bytes.count) : manifestRange
            fixStreamChecksums(&bytes, manifest: json, packed: packed)
        }
        store32(&bytes, 32, CRC32C.checksum(bytes[manifestRange]))
        store32(&bytes, 36, CRC32C.checksum(bytes[0..<36]))
        return bytes
    }

    /// Rewrites the k-th `"crc32c":"…"` of the manifest text with the CRC of stream k's bytes, when
    /// the manifest parses and lists as many streams as the text has checksums.
    static func fixStreamChecksums(_ bytes: inout [UInt8], manifest range: Range<Int>, packed: Bool) {
        guard let object = try? JSONSerialization.jsonObject(with: Data(bytes[range])) as? [String: Any],
            let streams = object["streams"] as? [[String: Any]]
        else { return }
        let key = Array("\"crc32c\":\"".utf8)
        var places: [Int] = []
        var i = range.lowerBound
        while i + key.count + 8 <= range.upperBound {
            if bytes[i] == key[0], Array(bytes[i..<i + key.count]) == key {
                places.append(i + key.count)
                i += key.count
            } else {
                i += 1
            }
        }
        guard places.count == streams.count else { return }
        var next = 64  // where the next stream of a packed container starts
        for (stream, place) in zip(streams, places) {
            let length = (stream["length"] as? NSNumber)?.intValue
            defer { next = length.map { next &+ $0 } ?? Int.max }
            guard let start = packed ? next : (stream["offset"] as? NSNumber)?.intValue, let count = length,
                start >= 0, count >= 0, start <= range.lowerBound, count <= range.lowerBound - start
            else { continue }
            let digits = Array(String(CRC32C.checksum(bytes[start..<start + count]), radix: 16).utf8)
            let hex = [UInt8](repeating: UInt8(ascii: "0"), count: 8 - digits.count) + digits
            bytes.replaceSubrange(place..<place + 8, with: hex)
        }
    }

    static func load(_ bytes: [UInt8], _ at: Int) -> UInt64 { (0..<8).reduce(0) { $0 | UInt64(bytes[at + $1]) << (8 * $1) } }
    static func load32(_ bytes: [UInt8], _ at: Int) -> UInt32 { (0..<4).reduce(0) { $0 | UInt32(bytes[at + $1]) << (8 * $1) } }
    static func store(_ bytes: inout [UInt8], _ at: Int, _ value: UInt64) { for k in 0..<8 { bytes[at + k] = UInt8(truncatingIfNeeded: value >> (8 * k)) } }
    static func store32(_ bytes: inout [UInt8], _ at: Int, _ value: UInt32) { for k in 0..<4 { bytes[at + k] = UInt8(truncatingIfNeeded: value >> (8 * k)) } }
}
