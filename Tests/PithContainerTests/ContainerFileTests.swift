import Foundation
import Testing
import PithIR
@testable import PithContainer

/// Opening a container file: PithIR's mapper underneath, its refusals as `ContainerError`s that
/// name the file: a missing file is a missing input (exit 66, as for every input of every command),
/// anything else that cannot be opened an I/O error (exit 74).
@Suite struct ContainerFileTests {
    func refusal(_ path: String) -> ContainerError? {
        do { _ = try ContainerFile(path); return nil } catch { return error as? ContainerError }
    }

    @Test func aMissingFileIsAMissingInputNamingIt() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("pith-missing-\(getpid()).pith").path
        let error = try #require(refusal(path))
        #expect(error.kind == .missing && error.exitKind == .noInput)
        #expect(error.description == "\(path): cannot open the file (No such file or directory)")
    }

    @Test func aFolderIsAnIOErrorNamingIt() throws {
        let path = FileManager.default.temporaryDirectory.path
        let error = try #require(refusal(path))
        #expect(error.kind == .io && error.file == path)
    }

    @Test func aWrittenContainerOpensFromItsFile() throws {
        let model = Model(
            format: .onnx,
            tensors: [
                Tensor(
                    name: "w", dtype: .float32, shape: [3], storage: .dense(TensorBuffer(values: [Float](arrayLiteral: 1, 2, 3))),
                    origin: .initializer(graph: .main))
            ])
        let bytes = try ContainerWriter.encode(model).bytes
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("pith-file-\(getpid()).pith").path
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let contents = try ContainerReader.read(contentsOf: path)
        #expect(contents.fileBytes == bytes.count)
        #expect(contents.model.tensors[0].floatValues() == [1, 2, 3])
    }
}

/// A container too large to hold is read with its pages given back as it goes (`Reader.Paging`).
/// Here with runs of 8 KiB instead of 4 MiB, so that a small container takes every path: streams
/// summed in several runs, a raw tensor handed on a run at a time, raw float planes given back as
/// they are joined. Every tensor reads as it does from a container whose pages stay, again after
/// its pages went back, and the mapping holds next to none of the file once all are read.
@Suite struct PagedContainerTests {
    func writtenContainer() throws -> (path: String, model: Model) {
        var model = ContainerRoundTripTests().model()
        var g: UInt64 = 5
        func uniform() -> Double { g = g &* 6364136223846793005 &+ 1442695040888963407; return (Double(g >> 11) + 0.5) / Double(1 << 53) }
        // Normal weights: a float-split tensor whose low mantissa plane is stored raw, in quarters
        // of several runs, with an odd tail.
        let large = (0..<(4 * 5 * Reader.pieceElements + 123)).map { _ in Float(0.05 * (-2 * log(uniform())).squareRoot() * cos(2 * Double.pi * uniform())) }
        model.tensors.append(
            Tensor(name: "large", dtype: .float32, shape: [large.count], storage: .dense(TensorBuffer(values: large)), origin: .initializer(graph: .main)))
        let noise = (0..<70_001).map { _ in UInt8(truncatingIfNeeded: Int(uniform() * 256)) }
        model.tensors.append(
            Tensor(name: "noise", dtype: .uint8, shape: [noise.count], storage: .dense(TensorBuffer(bytes: noise)), origin: .initializer(graph: .main)))
        let (bytes, manifest) = try ContainerWriter.encode(model, skeleton: nil)
        let large0 = try #require(manifest.tensors.first { $0.name == "large" })
        #expect(large0.encoding.kind == .floatSplit && large0.encoding.streams!.contains { manifest.streams[$0].coding == .raw })
        let noise0 = try #require(manifest.tensors.first { $0.name == "noise" })
        #expect(noise0.encoding.kind == .dense && manifest.streams[noise0.encoding.streams![0]].coding == .raw)
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("pith-paged-\(UUID().uuidString).pith").path
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return (path, model)
    }

    static let run = 8192

    @Test func aPagedContainerReadsAsOneThatKeepsItsPages() throws {
        let (path, model) = try writtenContainer()
        defer { unlink(path) }
        let file = try MappedFile(path, populate: false), heldFile = try MappedFile(path, populate: false)
        let paged = try ContainerFile(bytes: file.bytes, file: path, owner: file, paging: Reader.Paging(file: file, run: Self.run))
        let held = try ContainerFile(bytes: heldFile.bytes, file: path, owner: heldFile)
        var pagedWorker = paged.makeWorker(), heldWorker = held.makeWorker()
        for _ in 0..<2 {
            for index in 0..<model.tensors.count {
                let expected = try held.denseTensor(index, worker: &heldWorker)
                #expect(try paged.denseTensor(index, worker: &pagedWorker).storage == expected.storage, "\(expected.name)")
                guard expected.dtype != .string, case .dense(let buffer) = expected.storage else { continue }
                var streamed = [UInt8](repeating: 0, count: buffer.bytes.count), covered = 0
                try paged.denseBytes(index, worker: &pagedWorker) { offset, piece in
                    streamed.replaceSubrange(offset..<offset + piece.count, with: piece)
                    covered += piece.count
                }
                #expect(streamed == buffer.bytes && covered == buffer.bytes.count, "\(expected.name)")
            }
        }
        let contents = try paged.contents(), expected = try held.contents()
        #expect(contents.model.tensors.map(\.storage) == expected.model.tensors.map(\.storage))
        #expect(contents.tensorBytes == expected.tensorBytes && contents.skeleton == expected.skeleton)
        // Of the file's pages, the paged mapping holds only those that streams share with their
        // neighbours; the held one, every page that was read.
        if let pagedResident = residentBytes(file.bytes), let heldResident = residentBytes(heldFile.bytes) {
            #expect(heldResident >= file.bytes.count * 9 / 10)
            #expect(pagedResident <= file.bytes.count / 5, "\(pagedResident) of \(file.bytes.count) bytes resident")
        }
    }

    @Test func aDamagedRunIsRefused() throws {
        let (path, _) = try writtenContainer()
        defer { unlink(path) }
        var bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        let manifest = try ContainerFile(path).manifest
        let index = try #require(manifest.tensors.firstIndex { $0.name == "noise" })
        let stream = manifest.streams[manifest.tensors[index].encoding.streams![0]]
        bytes[stream.offset + stream.length - 10] ^= 0x01  // in the stream's last run
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let file = try MappedFile(path, populate: false)
        let paged = try ContainerFile(bytes: file.bytes, file: path, owner: file, paging: Reader.Paging(file: file, run: Self.run))
        var worker = paged.makeWorker()
        #expect { try paged.denseBytes(index, worker: &worker) { _, _ in } } throws: { ($0 as? ContainerError)?.kind == .checksum }
        #expect { _ = try paged.denseTensor(index, worker: &worker) } throws: { ($0 as? ContainerError)?.kind == .checksum }
    }

    /// The resident bytes of the mapping that starts at `bytes` (its `Rss` in /proc/self/smaps), or
    /// nil where there is no such file.
    func residentBytes(_ bytes: UnsafeRawBufferPointer) -> Int? {
        // Read to the end: Foundation reads a file of size 0, as /proc files say they are, one page only.
        guard let base = bytes.baseAddress, let data = try? FileHandle(forReadingFrom: URL(fileURLWithPath: "/proc/self/smaps")).readToEnd(),
            let smaps = String(data: data, encoding: .utf8)
        else { return nil }
        let start = String(UInt(bitPattern: base), radix: 16)
        var inMapping = false
        for line in smaps.split(separator: "\n") {
            if let dash = line.firstIndex(of: "-"), line[..<dash].allSatisfy(\.isHexDigit) {
                inMapping = line[..<dash].drop { $0 == "0" } == start[...]
            } else if inMapping, line.hasPrefix("Rss:") {
                return line.split(separator: " ").dropFirst().first.flatMap { Int($0) }.map { $0 * 1024 }
            }
        }
        return nil
    }
}
