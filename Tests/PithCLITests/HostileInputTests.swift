import Foundation
import Testing
import PithTestSupport

/// End-to-end: the built `pith` binary on the hostile containers (Fixtures/broken-containers/, every
/// checksum valid) and on the inputs fuzzing found (Fixtures/fuzz/): each must end with its documented
/// exit code and a message naming the file, never a crash, and leave no output behind.
@Suite struct HostileInputTests {
    static let containers: [String] = (try? Fixtures.corpus("broken-containers"))?.map(\.file) ?? []
    static let fuzzRegressions: [String] = (try? Fixtures.corpus("fuzz"))?.map(\.file) ?? []

    @Test(arguments: containers)
    func hostileContainerIsRefusedByRestore(file: String) throws {
        let expected = try #require(try Fixtures.corpus("broken-containers").first { $0.file == file }?.entry)
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("pith-hostile-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let output = folder.appendingPathComponent(expected.output ?? "restored.onnx").path
        let run = try runPith(["restore", Fixtures.path("broken-containers/" + file), "-o", output])
        #expect(run.exitCode == expected.exitCode, "\(run.standardError)")
        #expect(run.standardError.contains(file), "\(run.standardError)")
        #expect(run.standardError.contains(expected.message), "\(run.standardError)")
        #expect(run.standardError.count < 8192, "an error message stays short, whatever the file holds")
        #expect(!run.standardError.contains("Fatal error") && !run.standardError.contains("crashed"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path).isEmpty, "a refused restore leaves nothing behind")
    }

    @Test(arguments: containers)
    func hostileContainerIsRefusedByInspect(file: String) throws {
        let expected = try #require(try Fixtures.corpus("broken-containers").first { $0.file == file }?.entry)
        let run = try runPith(["inspect", Fixtures.path("broken-containers/" + file)])
        #expect(!run.standardError.contains("Fatal error") && !run.standardError.contains("crashed"), "\(run.standardError)")
        if expected.inspectOK == true {
            // Consistent in itself: only restore, which pairs it with its skeleton, can tell.
            #expect(run.exitCode == 0, "\(run.standardError)")
        } else {
            #expect(run.exitCode == expected.exitCode, "\(run.standardError)")
            #expect(run.standardError.contains(file), "\(run.standardError)")
            #expect(run.standardOutput.isEmpty)
        }
    }

    @Test(arguments: fuzzRegressions)
    func inputFuzzingFoundIsRefused(file: String) throws {
        let expected = try #require(try Fixtures.corpus("fuzz").first { $0.file == file }?.entry)
        let run = try runPith(["inspect", Fixtures.path("fuzz/" + file)])
        #expect(run.exitCode == expected.exitCode, "\(run.standardError)")
        #expect(run.standardError.contains(file), "\(run.standardError)")
        #expect(run.standardError.contains(expected.message), "\(run.standardError)")
        #expect(run.standardOutput.isEmpty)
    }

    /// Outputs that are not regular files are refused, even with --force: the rename that puts the
    /// output in place would replace them (as root, `-o /dev/null --force` replaced the device).
    @Test func anOutputThatIsAPipeIsRefusedAndKept() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("pith-fifo-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let fifo = folder.appendingPathComponent("pipe").path
        #expect(mkfifo(fifo, 0o600) == 0)
        for arguments in [
            ["compress", Fixtures.path("lenet-300-100.onnx"), "-o", fifo, "--force"],
            ["restore", Fixtures.path("golden/v1.2-subgraphs.pith"), "-o", fifo, "--force"],
        ] {
            let run = try runPith(arguments)
            #expect(run.exitCode == 64, "\(run.standardError)")
            #expect(run.standardError.contains("is a pipe (FIFO), not a regular file"), "\(run.standardError)")
            var status = stat()
            #expect(lstat(fifo, &status) == 0 && status.st_mode & S_IFMT == S_IFIFO, "the pipe is still a pipe")
        }
    }

    /// Names near and past the system's 255 bytes: a long name that fits is written (its temporary
    /// file's name shortened), a name that does not fit is a usage error for every command (were 73
    /// or 74 by command), and an input path that cannot exist is a missing input.
    @Test func longNames() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("pith-names-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let fits = folder.appendingPathComponent(String(repeating: "m", count: 245) + ".pith").path
        let written = try runPith(["compress", Fixtures.path("onnx/subgraphs.onnx"), "-o", fits])
        #expect(written.exitCode == 0, "\(written.standardError)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path) == [(fits as NSString).lastPathComponent])
        let tooLong = folder.appendingPathComponent(String(repeating: "n", count: 300) + ".onnx").path
        for arguments in [
            ["compress", Fixtures.path("onnx/subgraphs.onnx"), "-o", tooLong],
            ["restore", Fixtures.path("golden/v1.2-subgraphs.pith"), "-o", tooLong],
        ] {
            let run = try runPith(arguments)
            #expect(run.exitCode == 64, "\(run.standardError)")
            #expect(run.standardError.contains("longer than the system allows"), "\(run.standardError)")
        }
        #expect(try runPith(["inspect", tooLong]).exitCode == 66)
    }
}
