/// Timing of Pith's own work on one file, for `pith bench`: median of several runs,
/// each phase measured separately with a monotonic clock.
public struct InspectBenchmark: Sendable, Codable {
    public var file: String
    public var runs: Int
    /// Bytes of tensor data read.
    public var tensorBytes: Int
    /// Median seconds to read the file into the IR.
    public var loadSeconds: Double
    /// Median seconds to compute every statistic of every tensor.
    public var statisticsSeconds: Double
    /// Median seconds of load + statistics in one run.
    public var totalSeconds: Double

    /// Loads and inspects `path` `runs` times.
    public static func measure(_ path: String, runs: Int) throws -> InspectBenchmark {
        precondition(runs >= 1, "runs must be at least 1")
        let clock = ContinuousClock()
        var loads: [Double] = [], statistics: [Double] = [], totals: [Double] = []
        var bytes = 0
        for _ in 0..<runs {
            let start = clock.now
            let model = try ModelFile.load(path)
            let loaded = clock.now
            _ = Inspector.inspect(model, file: path)
            let done = clock.now
            bytes = model.tensors.reduce(0) { $0 + $1.storedBytes }
            loads.append(seconds(loaded - start))
            statistics.append(seconds(done - loaded))
            totals.append(seconds(done - start))
        }
        return InspectBenchmark(
            file: path, runs: runs, tensorBytes: bytes, loadSeconds: median(loads),
            statisticsSeconds: median(statistics), totalSeconds: median(totals))
    }

    static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) * 1e-18
    }

    static func median(_ values: [Double]) -> Double {
        let sorted = values.sorted()
        return sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
    }
}
