import PithIR

#if canImport(Glibc)
import Glibc
#endif

/// Refuses files whose global heap collections would make libhdf5 loop forever, before libhdf5
/// reads them.
///
/// Variable-length data (Keras' string attributes: `model_config`, `layer_names`, …) lives in
/// global heap collections: `GCOL`, version 1, three reserved bytes, the collection's size (the
/// superblock's "size of lengths", 8 in practice), then objects, each a 16-byte header (index UInt16,
/// reference count UInt16, 4 reserved bytes, size) and its data padded to 8 bytes. Object 0 is the
/// free space, whose size already counts its header. libhdf5 1.10 (`H5HG__cache_heap_deserialize`)
/// walks the objects with `p = begin + need`, `need` being 16 + the padded size, or for object 0
/// the size itself, trusting what it reads: an object 0 of size 0 never moves `p`, and the read
/// hangs inside `H5Aread`, where no caller can stop it; an object longer than what is left of the
/// collection is recorded as it is, and reading it copies that many bytes from past the collection
/// (a crash, or heap bytes in a string). Both found by fuzzing.
///
/// Nothing in an HDF5 file says where its collections are, so the file is searched for their
/// signature; each one that lies inside the file is walked as libhdf5 walks it, and refused at the
/// first object that would hang or overrun. Anything else that is wrong with a collection libhdf5
/// reports itself. (What remains unchecked: a damaged reference *to* a heap object that does not
/// exist, which libhdf5 1.10 also follows without checking; references sit inside attribute
/// messages of object headers, which Pith does not parse.)
enum GlobalHeapCheck {
    static let signature: [UInt8] = Array("GCOL".utf8) + [1]

    /// Throws `HDF5Error` (malformed) naming the first collection whose walk would not end.
    ///
    /// In a valid file collections do not overlap and every object but the last (free space) takes
    /// at least 16 bytes, so all walks together take at most a step per 16 bytes and one per
    /// collection; a file whose walks take far more (collections stacked inside collections, each
    /// walked a byte at a time) is refused too, so that the check itself stays linear.
    static func check(_ bytes: UnsafeRawBufferPointer, file: String) throws {
        guard let base = bytes.baseAddress, bytes.count >= 16 else { return }
        let lengthBytes = sizeOfLengths(bytes)
        // Collection header: signature, version, 3 reserved bytes, size. Object header: index,
        // reference count, 4 reserved bytes, size.
        let headerBytes = 8 + lengthBytes, objectHeaderBytes = 8 + lengthBytes
        var budget = bytes.count / 8 + 4096
        var from = 0
        while from < bytes.count {
            // The next `G` (memchr), then the rest of the signature.
            guard let found = memchr(base + from, Int32(signature[0]), bytes.count - from) else { return }
            let start = UnsafeRawPointer(found) - base
            from = start + 1
            guard start + signature.count <= bytes.count, bytes[start..<start + signature.count].elementsEqual(signature) else { continue }
            guard start + headerBytes <= bytes.count else { return }
            let size = load(bytes, at: start + 8, bytes: lengthBytes)
            // libhdf5 refuses collections that run past the file before walking them.
            guard size >= UInt64(headerBytes), size <= UInt64(bytes.count - start) else { continue }
            let end = start + Int(size)
            var p = start + headerBytes
            // Too little room for an object header: libhdf5 takes the rest as free space.
            while p < end, p + objectHeaderBytes <= end {
                budget -= 1
                guard budget > 0 else {
                    throw HDF5Error(
                        .malformed, file: file,
                        "global heap collections overlap one another (found walking the one at byte \(start)): the file is damaged")
                }
                let index = load(bytes, at: p, bytes: 2)
                let objectSize = load(bytes, at: p + 8, bytes: lengthBytes)
                // Object 0 (free space) counts its header in its size; other objects are padded to 8.
                let need = index > 0 ? ((objectSize &+ 7) & ~7) &+ UInt64(objectHeaderBytes) : objectSize
                if need == 0 {
                    throw HDF5Error(
                        .malformed, file: file,
                        "the global heap collection at byte \(start) holds a free-space object of size 0 at byte \(p), "
                            + "on which libhdf5 would loop forever: the file is damaged")
                }
                // libhdf5 1.10 records the object and stops walking; reading it later copies `size`
                // bytes from past the collection (libhdf5 1.14 refuses such a collection itself).
                guard need <= UInt64(end - p) else {
                    throw HDF5Error(
                        .malformed, file: file,
                        "the global heap collection at byte \(start) holds an object at byte \(p) of \(objectSize) bytes, "
                            + "more than the \(end - p) bytes left in it: the file is damaged")
                }
                p += Int(need)
            }
        }
    }

    /// The superblock's "size of lengths" (2, 4 or 8), 8 when no superblock is found or it names
    /// another size (libhdf5 refuses those files itself).
    static func sizeOfLengths(_ bytes: UnsafeRawBufferPointer) -> Int {
        for offset in HDF5Reader.signatureOffsets where offset + 16 <= bytes.count {
            guard bytes[offset..<offset + 8].elementsEqual(HDF5Reader.signature) else { continue }
            // Superblock versions 0 and 1 keep the sizes at bytes 13 and 14, versions 2 and 3 at 9 and 10.
            let version = bytes[offset + 8]
            let size = bytes[offset + (version >= 2 ? 10 : 14)]
            return [2, 4, 8].contains(size) ? Int(size) : 8
        }
        return 8
    }

    static func load(_ bytes: UnsafeRawBufferPointer, at offset: Int, bytes count: Int) -> UInt64 {
        (0..<count).reduce(0) { $0 | UInt64(bytes[offset + $1]) << (8 * UInt64($1)) }
    }
}
