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
}
