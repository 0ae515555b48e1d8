import PithIR
import PithCoding

/// The decoding of one container's streams and tensors, from the bytes of the file (which it only
/// reads). `ContainerFile` keeps a prototype, with the shared streams decoded, and hands each thread
/// a copy (`ContainerFile.Worker`), whose scratch memory is its own.
///
/// Its jobs, one file each: checking the stream table and pools against the file
/// (`Reader+Validation`), decoding one stream — raw, Huffman or zstd — (`Reader+StreamDecoding`),
/// decoding a tensor from its encoding (`Reader+Encodings`), and handing on a tensor's dense bytes a
/// run at a time (`Reader+Streaming`).
struct Reader {
    let bytes: UnsafeRawBufferPointer
    let file: String
    let manifest: Manifest
    let streamsEnd: Int
    var used = 0  // bytes of the streams of the tensor being read
    /// Streams shared by several tensors, decoded once.
    var decodedShared: [Int: [UInt8]] = [:]
    /// Scratch for the byte streams of one float-split tensor, reused from tensor to tensor.
    var planes: [Scratch] = []

    init(bytes: UnsafeRawBufferPointer, file: String, manifest: Manifest, streamsEnd: Int) {
        self.bytes = bytes
        self.file = file
        self.manifest = manifest
        self.streamsEnd = streamsEnd
    }

    func fail(_ message: String) -> ContainerError { ContainerError(.malformed, file: file, message) }

    /// The stored bytes of stream `index`, checksum verified.
    mutating func stored(_ index: Int, purpose: String) throws -> UnsafeRawBufferPointer {
        guard index >= 0, index < manifest.streams.count else { throw fail("\(purpose): stream \(index) does not exist (\(manifest.streams.count) streams)") }
        let s = manifest.streams[index]
        let payload = UnsafeRawBufferPointer(rebasing: bytes[s.offset..<s.offset + s.length])
        let checksum = hex(CRC32C.checksum(payload))
        guard checksum == s.crc32c else {
            throw ContainerError(
                .checksum, file: file, "\(purpose): stream \(index) checksum is \(s.crc32c) in the manifest, its bytes give \(checksum): the file is damaged")
        }
        used += s.length
        return payload
    }
}
