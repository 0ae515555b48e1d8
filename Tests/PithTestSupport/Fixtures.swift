import Foundation

/// Locating the repository's fixtures and reading the manifests the generator scripts wrote.
public enum Fixtures {
    /// The repository root, found from this file's location.
    public static let root: URL = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }  // Tests/PithTestSupport/Fixtures.swift
        return url
    }()

    /// Absolute path of a file below `Fixtures/`.
    public static func path(_ relative: String) -> String {
        root.appendingPathComponent("Fixtures").appendingPathComponent(relative).path
    }

    /// Every manifest below `Fixtures/expected/`, as (fixture path relative to Fixtures/, manifest).
    public static func manifests() throws -> [(fixture: String, manifest: Manifest)] {
        let base = root.appendingPathComponent("Fixtures/expected")
        guard let enumerator = FileManager.default.enumerator(at: base, includingPropertiesForKeys: nil) else { return [] }
        var result: [(String, Manifest)] = []
        for case let url as URL in enumerator where url.pathExtension == "json" {
            let relative = String(url.path.dropFirst(base.path.count + 1).dropLast(".json".count))
            result.append((relative, try Manifest.load(url)))
        }
        return result.sorted { $0.0 < $1.0 }
    }

    /// The broken-file corpus: file name → expected exit code and message phrase.
    public static func brokenCorpus() throws -> [(file: String, exitCode: Int32, message: String)] {
        try corpus("broken").map { ($0.file, $0.entry.exitCode, $0.entry.message) }
    }

    /// A corpus of bad files below `Fixtures/<folder>/` and what Pith must answer for each
    /// (`<folder>/expected.json`: broken models, broken containers, fuzzing regressions), by file name.
    public static func corpus(_ folder: String) throws -> [(file: String, entry: BrokenEntry)] {
        let data = try Data(contentsOf: URL(fileURLWithPath: path(folder + "/expected.json")))
        let entries = try JSONDecoder().decode([String: BrokenEntry].self, from: data)
        return entries.map { ($0.key, $0.value) }.sorted { $0.0 < $1.0 }
    }

    /// One file of a bad-file corpus: the exit code and a phrase of the message the command must end
    /// with; for containers, the output `restore` is asked for and whether `inspect` may list it.
    public struct BrokenEntry: Decodable, Sendable {
        public var exitCode: Int32
        public var message: String
        public var output: String?
        public var inspectOK: Bool?
        enum CodingKeys: String, CodingKey {
            case exitCode = "exit_code"
            case message, output
            case inspectOK = "inspect_ok"
        }
    }
}

/// What a generator script recorded about one fixture (`Fixtures/expected/*.json`).
public struct Manifest: Decodable, Sendable {
    public struct Entry: Decodable, Sendable {
        public var name: String
        public var dtype: String
        public var shape: [Int]
        public var count: Int
        public var nonzero: Int?
        public var min: Double?
        public var max: Double?
        public var mean: Double?
    }

    public var file: String
    public var format: String
    public var tensors: [Entry]
    public var optimizerStateTensors: Int?
    public var mnistTestAccuracyOnnxruntime: Double?

    enum CodingKeys: String, CodingKey {
        case file, format, tensors
        case optimizerStateTensors = "optimizer_state_tensors"
        case mnistTestAccuracyOnnxruntime = "mnist_test_accuracy_onnxruntime"
    }

    static func load(_ url: URL) throws -> Manifest {
        try JSONDecoder().decode(Manifest.self, from: Data(contentsOf: url))
    }
}

/// Relative closeness for statistics computed in different orders (numpy vs Pith).
public func approximatelyEqual(_ a: Double, _ b: Double, tolerance: Double = 1e-9) -> Bool {
    if a == b { return true }
    return abs(a - b) <= tolerance * Swift.max(1, abs(a), abs(b))
}
