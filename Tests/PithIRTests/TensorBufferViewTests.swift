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

    /// `unaligned: true` views the bytes wherever they start (ONNX `raw_data`); typed access goes
    /// through an aligned copy, and giving back the pages of part of it changes nothing it reads.
    @Test func unalignedViewsAreViewsAndReadTypedThroughACopy() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("pith-view-\(UUID().uuidString).bin").path
        defer { unlink(path) }
        let values = (0..<4096).map { Float($0) * 0.25 - 3 }
        var bytes: [UInt8] = [1, 2, 3]  // the floats start at byte 3
        values.withUnsafeBytes { bytes += $0 }
        #expect(FileManager.default.createFile(atPath: path, contents: Data(bytes)))
        let file = try MappedFile(path, populate: false)
        let view = TensorBuffer.viewing(UnsafeRawBufferPointer(rebasing: file.bytes[3...]), of: file, unaligned: true)
        #expect(view.isMappedView)
        #expect(view.bytes == Array(bytes[3...]))
        #expect(view.withUnsafeBufferPointer(as: Float.self) { Array($0) } == values)
        view.releasePages(bytes: 100..<9000)
        #expect(view.withUnsafeBufferPointer(as: Float.self) { Array($0) } == values)
        #expect(view.bytes == Array(bytes[3...]))
    }
}
