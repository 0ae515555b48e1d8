import Foundation
import Testing
import PithTestSupport

/// End-to-end: the built `pith` binary on every fixture and every broken file.
@Suite struct InspectCommandTests {
    static let fixtures: [String] = (try? Fixtures.manifests())?.map(\.fixture) ?? []
    static let broken: [String] = (try? Fixtures.brokenCorpus())?.map(\.file) ?? []

    @Test(arguments: fixtures)
    func jsonReportMatchesTheGeneratorsRecord(fixture: String) throws {
        let manifest = try #require(try Fixtures.manifests().first { $0.fixture == fixture }?.manifest)
        let run = try runPith(["inspect", "--format", "json", Fixtures.path(fixture)])
        #expect(run.exitCode == 0, "\(run.standardError)")
        let report = try #require(try JSONSerialization.jsonObject(with: Data(run.standardOutput.utf8)) as? [String: Any])
        #expect(report["format"] as? String == manifest.format)
        let rows = try #require(report["tensors"] as? [[String: Any]])
        #expect(rows.map { $0["name"] as? String ?? "" } == manifest.tensors.map(\.name))
        for (row, expected) in zip(rows, manifest.tensors) {
            #expect(row["shape"] as? [Int] == expected.shape, "\(expected.name)")
            #expect(row["dtype"] as? String == expected.dtype, "\(expected.name)")
            #expect(row["count"] as? Int == expected.count, "\(expected.name)")
            if let nonzero = expected.nonzero { #expect(row["nonzero"] as? Int == nonzero, "\(expected.name)") }
        }
        let totals = try #require(report["totals"] as? [String: Any])
        #expect(totals["tensors"] as? Int == manifest.tensors.count)
        #expect(totals["count"] as? Int == manifest.tensors.reduce(0) { $0 + $1.count })
    }

    @Test(arguments: broken)
    func brokenFileFailsWithAClearMessage(file: String) throws {
        let expected = try #require(try Fixtures.brokenCorpus().first { $0.file == file })
        let run = try runPith(["inspect", Fixtures.path("broken/" + file)])
        #expect(run.exitCode == expected.exitCode, "\(run.standardError)")
        #expect(run.standardError.contains(file), "\(run.standardError)")
        #expect(run.standardError.contains(expected.message), "\(run.standardError)")
        #expect(run.standardOutput.isEmpty)
        #expect(!run.standardError.contains("Fatal error"))
    }

    @Test func textReportShowsTheModelWeightsTotalsAndLayersOnRequest() throws {
        let run = try runPith(["inspect", Fixtures.path("lenet-300-100.onnx")])
        #expect(run.exitCode == 0)
        let lines = run.standardOutput.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        #expect(lines.first?.hasSuffix("lenet-300-100.onnx: ONNX model (IR 8; opset ai.onnx 17), produced by pith-fixtures 1") == true)
        #expect(lines.contains { $0.hasPrefix("  input ") && $0.hasSuffix("float32  [N, 784]") }, "\(run.standardOutput)")
        #expect(lines.contains { $0.hasPrefix("  logits ") && $0.hasSuffix("float32  [N, 10]") }, "\(run.standardOutput)")
        #expect(run.standardOutput.contains("operators (5 nodes): Gemm 3, Relu 2"))
        #expect(run.standardOutput.contains("fc1.weight"))
        // Biases are summarised in one line, listed with --all.
        #expect(!run.standardOutput.contains("fc1.bias"))
        #expect(run.standardOutput.contains("other tensors: 3 (3 biases), 410 elements, 1,640 bytes; --all lists them"))
        #expect(run.standardOutput.contains("total: 6 tensors, 266,610 elements"))
        #expect(!run.standardOutput.contains("per layer:"))
        let all = try runPith(["inspect", "--all", "--layers", Fixtures.path("lenet-300-100.onnx")])
        #expect(all.standardOutput.contains("fc1.bias"))
        #expect(all.standardOutput.contains("per layer:"))
    }

    @Test func topAndSortLimitRowsButNotTotals() throws {
        let run = try runPith(["inspect", "--format", "csv", "--sort", "size", "--top", "2", Fixtures.path("lenet-300-100.onnx")])
        let lines = run.standardOutput.split(separator: "\n")
        #expect(lines.count == 3)
        #expect(lines[1].hasPrefix("fc1.weight,fc1,Gemm,300x784,float32,235200,"))
        #expect(lines[2].hasPrefix("fc2.weight,"))
    }

    @Test func usageAndMissingFileErrors() throws {
        let missing = try runPith(["inspect", "/nonexistent/model.onnx"])
        #expect(missing.exitCode == 66)
        #expect(missing.standardError.contains("/nonexistent/model.onnx: no such file"))
        let directory = try runPith(["inspect", Fixtures.path("onnx")])
        #expect(directory.exitCode == 65)
        #expect(directory.standardError.contains("is a folder, not a model file"))
        let usage = try runPith(["inspect", "--format", "yaml", Fixtures.path("lenet-300-100.onnx")])
        #expect(usage.exitCode == 64)
        let negativeTop = try runPith(["inspect", "--top", "-1", Fixtures.path("lenet-300-100.onnx")])
        #expect(negativeTop.exitCode == 64)
    }
}
