import Foundation
import Testing
import PithTestSupport

@Suite struct CompressCommandTests {
    let lenet = Fixtures.path("lenet-300-100.onnx")

    @Test func deepCompressionRecipeReportsTheTable2Layout() throws {
        let run = try runPith(["compress", "--dry-run", "--recipe", Fixtures.path("recipes/deep-compression-lenet.yaml"), lenet])
        #expect(run.exitCode == 0, "\(run.standardError)")
        #expect(run.standardOutput.contains("per tensor (Deep Compression accounting"))
        #expect(run.standardOutput.contains("fc1.weight  Gemm fc1  300×784  235,200   8.00%  csr(5) + codebook(6)"))
        #expect(run.standardOutput.contains("fc3.weight  Gemm fc3  10×100     1,000  26.00%"))
    }

    @Test func sameSeedSameReport() throws {
        let arguments = ["compress", "--dry-run", "--format", "json", "--prune", "0.8", "--cluster", "4", "--init", "kmeans++", "--seed", "11", lenet]
        let a = try runPith(arguments), b = try runPith(arguments)
        #expect(a.exitCode == 0 && a.standardOutput == b.standardOutput)
        let c = try runPith(arguments.dropLast(2) + ["12", lenet])
        #expect(c.standardOutput != a.standardOutput)
    }

    @Test func quantizationReportsHalfStepErrors() throws {
        let run = try runPith(["compress", "--dry-run", "--format", "json", "--quantize", "int8-channel", lenet])
        let report = try #require(try JSONSerialization.jsonObject(with: Data(run.standardOutput.utf8)) as? [String: Any])
        let rows = try #require(report["tensors"] as? [[String: Any]])
        #expect(rows.count == 3)
        for row in rows {
            #expect((row["encoding"] as? String)?.hasPrefix("int8 per-channel") == true)
            let error = try #require(row["error"] as? [String: Any])
            #expect((error["snr_db"] as? Double ?? 0) > 35)
        }
    }

    @Test(arguments: [
        (["--recipe", "recipes/bad-two-actions.yaml"], Int32(64), "needs exactly one of prune"),
        (["--recipe", "recipes/bad-bits.yaml"], 64, "cluster bits must be 1…8, got 12"),
        (["--recipe", "recipes/missing.yaml"], 66, "cannot read the recipe"),
        (["--cluster", "4", "--quantize", "int8"], 64, "choose one"),
        (["--prune", "1.5"], 64, "prune sparsity must be in 0…1"),
        (["--index-bits", "x"], 64, "--index-bits is auto or a number"),
    ])
    func badOptionsExitWithAUsageError(arguments: [String], exitCode: Int32, message: String) throws {
        let resolved = arguments.map { $0.hasPrefix("recipes/") ? Fixtures.path($0) : $0 }
        let run = try runPith(["compress", "--dry-run"] + resolved + [lenet])
        #expect(run.exitCode == exitCode, "\(run.standardError)")
        #expect(run.standardError.contains(message), "\(run.standardError)")
    }

    @Test func writesContainersAtomicallyAndOnlyWhenAllowed() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("pith-\(UUID())").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let output = folder + "/lenet.pith"
        let first = try runPith(["compress", lenet, "-o", output])
        #expect(first.exitCode == 0, "\(first.standardError)")
        #expect(first.standardOutput.contains("wrote \(output): "))
        let again = try runPith(["compress", lenet, "-o", output])
        #expect(again.exitCode == 73)
        #expect(again.standardError.contains("exists; use --force"))
        let forced = try runPith(["compress", "--force", "--prune", "0.5", lenet, "-o", output])
        #expect(forced.exitCode == 0)
        let ontoInput = try runPith(["compress", lenet, "-o", lenet, "--force"])
        #expect(ontoInput.exitCode == 64)
        // Only the finished file is left in the folder: no temporary files.
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder) == ["lenet.pith"])
        let missing = try runPith(["compress", "--prune", "0.5", lenet])
        #expect(missing.exitCode == 64)
    }

    /// A lossless container holds exactly the source's values: inspect reports the same statistics.
    @Test func losslessContainerInspectsLikeItsSource() throws {
        let output = FileManager.default.temporaryDirectory.appendingPathComponent("pith-\(UUID()).pith").path
        defer { try? FileManager.default.removeItem(atPath: output) }
        #expect(try runPith(["compress", lenet, "-o", output]).exitCode == 0)
        func rows(_ path: String) throws -> [[String: Any]] {
            let run = try runPith(["inspect", "--format", "json", path])
            let report = try #require(try JSONSerialization.jsonObject(with: Data(run.standardOutput.utf8)) as? [String: Any])
            return try #require(report["tensors"] as? [[String: Any]])
        }
        let source = try rows(lenet), container = try rows(output)
        #expect(source.count == container.count)
        for (a, b) in zip(source, container) {
            for key in ["name", "shape", "dtype", "count", "nonzero", "distinct", "min", "max", "mean", "std"] {
                #expect(String(describing: a[key]) == String(describing: b[key]), "\(key)")
            }
            #expect((b["bytes"] as? Int ?? .max) <= (a["bytes"] as? Int ?? 0))
        }
    }
}
