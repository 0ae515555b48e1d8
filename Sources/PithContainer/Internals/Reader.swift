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
///
/// A container too large to hold (`ContainerFile.pagingThreshold`) is read with `paging`: a stream
/// longer than a `Paging.run` is checksummed a run at a time, each run's pages given back once
/// summed; raw streams handed on in pieces are given back as they go; and the pages of every stream
/// a tensor read are given back once the tensor is decoded (`releaseHeld`). What the process holds
/// of the file is then the streams of the tensors being decoded, not the whole file.
struct Reader {
    /// How a container too large to hold is read: through its mapping, whose pages are given back
    /// as they are read.
    struct Paging {
        let file: MappedFile
        /// Bytes of a stream read between two givings-back of their pages; runs end on multiples
        /// of it in the file, so that their pages tile the stream.
        var run = 4 << 20
    }

    let bytes: UnsafeRawBufferPointer
    let file: String
    let manifest: Manifest
    let streamsEnd: Int
    /// Set when `bytes` are the mapping of a file too large to hold; nil when its pages may stay
    /// (a small file) or the bytes are not a file's.
    let paging: Paging?
    var used = 0  // bytes of the streams of the tensor being read
    /// With `paging`: the streams read since their pages were last given back.
    var held: [Int] = []
    /// Streams shared by several tensors, decoded once.
    var decodedShared: [Int: [UInt8]] = [:]
    /// Scratch for the byte streams of one float-split tensor, reused from tensor to tensor.
    var planes: [Scratch] = []

    init(bytes: UnsafeRawBufferPointer, file: String, manifest: Manifest, streamsEnd: Int, paging: Paging? = nil) {
        self.bytes = bytes
        self.file = file
        self.manifest = manifest
        self.streamsEnd = streamsEnd
        self.paging = paging
    }

    func fail(_ message: String) -> ContainerError { ContainerError(.malformed, file: file, message) }

    /// The stored bytes of stream `index`, checksum verified. With `paging`, the stream is held
    /// until `releaseHeld`, and one longer than a run is summed a run at a time, each run's pages
    /// given back once summed (decoding reads them from the file again).
    mutating func stored(_ index: Int, purpose: String) throws -> UnsafeRawBufferPointer {
        guard index >= 0, index < manifest.streams.count else { throw fail("\(purpose): stream \(index) does not exist (\(manifest.streams.count) streams)") }
        let s = manifest.streams[index]
        let payload = UnsafeRawBufferPointer(rebasing: bytes[s.offset..<s.offset + s.length])
        var sum: UInt32 = 0
        if let paging, s.length > paging.run {
            inRuns(s.offset..<s.offset + s.length) { run in sum = CRC32C.checksum(UnsafeRawBufferPointer(rebasing: bytes[run]), continuing: sum) }
        } else {
            sum = CRC32C.checksum(payload)
        }
        if paging != nil { held.append(index) }
        let checksum = hex(sum)
        guard checksum == s.crc32c else {
            throw ContainerError(
                .checksum, file: file, "\(purpose): stream \(index) checksum is \(s.crc32c) in the manifest, its bytes give \(checksum): the file is damaged")
        }
        used += s.length
        return payload
    }

    /// `range` of the file (byte offsets) handed to `body` in runs that end on multiples of
    /// `paging.run`, each run's pages given back once `body` has read it; without `paging`, whole.
    func inRuns(_ range: Range<Int>, _ body: (Range<Int>) throws -> Void) rethrows {
        guard let paging else { return try body(range) }
        var start = range.lowerBound
        while start < range.upperBound {
            let end = min(range.upperBound, (start / paging.run + 1) * paging.run)
            try body(start..<end)
            paging.file.releasePages(start..<end)
            start = end
        }
    }

    /// With `paging`: gives back the pages of every stream read since the last call. A stream read
    /// again (a hostile file may name one twice) is read from the file again.
    mutating func releaseHeld() {
        guard let paging else { return }
        for index in held {
            let s = manifest.streams[index]
            paging.file.releasePages(s.offset..<s.offset + s.length)
        }
        held.removeAll(keepingCapacity: true)
    }
}
