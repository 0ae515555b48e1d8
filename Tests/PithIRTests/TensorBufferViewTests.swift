import Foundation
import Testing
@testable import PithIR

/// `TensorBuffer.viewing`: bytes of a mapped file without a copy when aligned, a copy otherwise; the
/// view keeps the mapping alive and `releasePages` never changes what it reads.
@Suite struct TensorBufferViewTests {
    @Test func alignedBytesAreAViewAndUnalignedACopy() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("pith-view-\(UUID().uuidString).bin").path
        defer { unlink(path) }
        let bytes = (0..<(3 * 4096)).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        #expect(FileManager.default.createFile(atPath: path, contents: Data(bytes)))
        var aligned: TensorBuffer?, unaligned: TensorBuffer?
        do {
            let file = try MappedFile(path, populate: false)
            aligned = TensorBuffer.viewing(UnsafeRawBufferPointer(rebasing: file.bytes[64..<(64 + 8192)]), of: file)
            unaligned = TensorBuffer.viewing(UnsafeRawBufferPointer(rebasing: file.bytes[3..<100]), of: file)
        }
        // The mapping outlives the `MappedFile` variable: the view holds it.
        #expect(aligned?.isMappedView == true)
        #expect(unaligned?.isMappedView == false)
        #expect(aligned?.bytes == Array(bytes[64..<(64 + 8192)]))
        #expect(unaligned?.bytes == Array(bytes[3..<100]))
        aligned?.releasePages()
        unaligned?.releasePages()
        #expect(aligned?.bytes == Array(bytes[64..<(64 + 8192)]))
        #expect(unaligned?.bytes == Array(bytes[3..<100]))
    }
}
