import Foundation
import Pith
import PithLinearAlgebra
import PithCoding

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

/// Timing of 1-D k-means on raw float32 values, for `pith bench kmeans`.
public struct KMeansBenchmark: Sendable, Codable {
    public var values: Int
    public var clusters: Int
    public var initialization: String
    public var runs: Int
    /// Median seconds of sort + Lloyd + assignment of every value.
    public var seconds: Double
    /// Sum of squared distances to the nearest centroid.
    public var squaredError: Double
    public var iterations: Int
    /// The centroids found, so that other tools can check the error independently.
    public var centroids: [Float]

    /// Clusters the little-endian float32 values in `path` into `2^bits` clusters, `runs` times.
    public static func measure(_ path: String, bits: Int, initialization: KMeansInit, runs: Int, seed: UInt64) throws -> KMeansBenchmark {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw PithError(.noInput, "\(path): cannot read (\((error as NSError).localizedDescription))")
        }
        guard data.count % 4 == 0 else { throw PithError(.data, "\(path): \(data.count) bytes is not a whole number of float32 values") }
        let values = data.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        let clock = ContinuousClock()
        var times: [Double] = [], error = 0.0, iterations = 0, centroids: [Float] = []
        for _ in 0..<runs {
            let start = clock.now
            let kmeans = KMeans1D(values)
            let result = kmeans.lloyd(from: kmeans.initialCentroids(k: 1 << bits, method: initialization, seed: seed))
            let codes = values.withUnsafeBufferPointer { KMeans1D.assign($0, to: result.centroids) }
            times.append(InspectBenchmark.seconds(clock.now - start))
            error = result.objective
            iterations = result.iterations
            centroids = result.centroids
            precondition(codes.count == values.count)
        }
        return KMeansBenchmark(
            values: values.count, clusters: 1 << bits, initialization: initialization.rawValue, runs: runs,
            seconds: InspectBenchmark.median(times), squaredError: error, iterations: iterations, centroids: centroids)
    }
}

/// Timing of Huffman coding of a byte stream (each byte one symbol), for `pith bench huffman`.
public struct HuffmanBenchmark: Sendable, Codable {
    public var symbols: Int
    public var encodedBytes: Int
    public var runs: Int
    /// Median seconds to decode every symbol (one core).
    public var decodeSeconds: Double
    /// Decoded symbols (bytes) per second, in MB/s.
    public var decodeMegabytesPerSecond: Double
    /// The same from the fastest of the runs (what `zstd -b` reports for itself).
    public var bestDecodeMegabytesPerSecond: Double
    public var encodeSeconds: Double

    public static func measure(_ path: String, runs: Int) throws -> HuffmanBenchmark {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw PithError(.noInput, "\(path): cannot read (\((error as NSError).localizedDescription))")
        }
        let symbols = [UInt8](data)
        let clock = ContinuousClock()
        var encodeTimes: [Double] = [], decodeTimes: [Double] = []
        var encoded: [UInt8] = [], code: HuffmanCode?
        for _ in 0..<runs {
            let start = clock.now
            let lengths = HuffmanCode.codeLengths(frequencies: HuffmanCode.histogram(symbols, alphabetSize: 256))
            code = try HuffmanCode(lengths: lengths)
            encoded = HuffmanStreams.encode(symbols, code: code!)
            encodeTimes.append(InspectBenchmark.seconds(clock.now - start))
        }
        let decoder = try HuffmanDecoder(code!)
        var output = [UInt8](repeating: 0, count: symbols.count)
        for _ in 0..<runs {
            let start = clock.now
            try encoded.withUnsafeBytes { input in try output.withUnsafeMutableBufferPointer { try HuffmanStreams.decode(input, into: $0, decoder: decoder) } }
            decodeTimes.append(InspectBenchmark.seconds(clock.now - start))
        }
        guard output == symbols else { throw PithError(.data, "\(path): Huffman round trip failed") }
        let decode = InspectBenchmark.median(decodeTimes)
        return HuffmanBenchmark(
            symbols: symbols.count, encodedBytes: encoded.count, runs: runs, decodeSeconds: decode,
            decodeMegabytesPerSecond: Double(symbols.count) / decode / 1e6,
            bestDecodeMegabytesPerSecond: Double(symbols.count) / decodeTimes.min()! / 1e6, encodeSeconds: InspectBenchmark.median(encodeTimes))
    }
}

/// `pith bench lossless`: lossless compression of a model file in one process, median of several
/// runs: reading it (ONNX: parsed, large tensors left in the mapped file) and encoding the container
/// in memory (on every core). Without the process's start, the output file and its flush, this is the
/// work to compare with a compressor timed in memory on the same weights.
public struct LosslessBenchmark: Sendable, Codable {
    public var model: String
    public var modelBytes: Int
    public var containerBytes: Int
    public var runs: Int
    public var loadSeconds: Double
    public var encodeSeconds: Double
    /// Model megabytes per second of `loadSeconds + encodeSeconds`.
    public var megabytesPerSecond: Double

    public static func measure(_ path: String, runs: Int) throws -> LosslessBenchmark {
        let clock = ContinuousClock()
        var loads: [Double] = [], encodes: [Double] = [], containerBytes = 0
        for _ in 0..<runs {
            var start = clock.now
            let compressed = try Compression.run(Recipe(steps: []), on: path)
            loads.append(InspectBenchmark.seconds(clock.now - start))
            start = clock.now
            containerBytes = try Compression.encodeContainer(compressed).fileBytes
            encodes.append(InspectBenchmark.seconds(clock.now - start))
        }
        let modelBytes = ModelFile.fileSize(path)
        let load = InspectBenchmark.median(loads), encode = InspectBenchmark.median(encodes)
        return LosslessBenchmark(
            model: path, modelBytes: modelBytes, containerBytes: containerBytes, runs: runs, loadSeconds: load, encodeSeconds: encode,
            megabytesPerSecond: Double(modelBytes) / (load + encode) / 1e6)
    }
}

/// `pith bench eval`: the reference evaluator on a model and its data, loaded once, run `runs`
/// times in batches on every core; with the time of each step before the runs (reading the model,
/// preparing it — the build step's rewrites and prepacked weights —, reading the data) and of the
/// first run, which also pays for the first touch of the activations' memory.
public struct EvalBenchmark: Sendable, Codable {
    public var model: String
    public var samples: Int
    public var batchSize: Int
    public var runs: Int
    /// Seconds to read the model file into the IR.
    public var loadSeconds: Double
    /// Seconds to prepare it for evaluation (`Evaluator(model:)`: constants decoded, graph rewritten).
    public var buildSeconds: Double
    /// Seconds to read and shape the data.
    public var readSeconds: Double
    /// Seconds of the first run.
    public var firstRunSeconds: Double
    /// Median seconds of one batched run over every sample.
    public var seconds: Double
    public var samplesPerSecond: Double

    public static func measure(model: String, data: String, batchSize: Int, scale: Double?, runs: Int) throws -> EvalBenchmark {
        func timed<T>(_ body: () throws -> T) rethrows -> (T, Double) {
            let start = DispatchTime.now().uptimeNanoseconds
            let result = try body()
            return (result, Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
        }
        Evaluator.prepareHeap()  // as `pith eval` does, before the model is read
        let (loaded, load) = try timed { try ModelFile.loadForEvaluation(model) }
        let (evaluator, build) = try timed { try Evaluator(model: loaded) }
        let ((inputs, _), read) = try timed { try EvaluationInputs.inputs(data, for: evaluator, scale: scale) }
        var times: [Double] = []
        for _ in 0..<runs + 1 { times.append(try timed { try evaluator.run(batched: inputs, batchSize: batchSize) }.1) }
        let first = times.removeFirst()
        let median = times.sorted()[times.count / 2]
        let samples = inputs.first?.shape.first ?? 0
        return EvalBenchmark(
            model: model, samples: samples, batchSize: batchSize, runs: runs, loadSeconds: load, buildSeconds: build, readSeconds: read,
            firstRunSeconds: first, seconds: median, samplesPerSecond: median > 0 ? Double(samples) / median : 0)
    }
}

/// `pith bench svd`: a matrix's rank-`rank` approximation by the randomized truncated SVD against
/// the full LAPACK SVD, with the error of each against the optimal one (the norm of the singular
/// values the full SVD drops).
public struct SVDBenchmark: Sendable, Codable {
    public var rows: Int
    public var columns: Int
    public var rank: Int
    public var runs: Int
    /// Median seconds.
    public var fullSeconds: Double
    public var truncatedSeconds: Double
    /// ‖A − A_r‖_F of the full SVD's rank-`rank` truncation: the optimum (Eckart–Young).
    public var optimalError: Double
    public var truncatedError: Double
    /// truncatedError / optimalError − 1.
    public var excessError: Double
    public var speedup: Double

    public static func measure(_ path: String, rank: Int, runs: Int, oversampling: Int = 32, powerIterations: Int = 3) throws -> SVDBenchmark {
        let arrays = try DataFiles.read(path)
        guard let value = arrays.first?.value, value.shape.count == 2, value.isFloat else {
            throw PithError(.data, "\(path): holds no 2-D floating-point array")
        }
        let a = Matrix(rows: value.shape[0], columns: value.shape[1], values: value.floats)
        func time<T>(_ body: () throws -> T) rethrows -> (T, Double) {
            let start = DispatchTime.now().uptimeNanoseconds
            let result = try body()
            return (result, Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
        }
        var fullTimes: [Double] = [], fastTimes: [Double] = []
        var fullSVD: (u: Matrix, s: [Float], vt: Matrix)?
        var fast: (u: Matrix, s: [Float], vt: Matrix)?
        for _ in 0..<runs {
            let (f, t) = try time { try LinearAlgebra.svd(a) }
            fullSVD = f
            fullTimes.append(t)
            let (g, u) = try time { try LinearAlgebra.truncatedSVD(a, rank: rank, oversampling: oversampling, powerIterations: powerIterations) }
            fast = g
            fastTimes.append(u)
        }
        let optimal = fullSVD!.s.dropFirst(rank).reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
        // ‖A − U S Vᵀ‖ computed as A − (U·S)·Vᵀ with one GEMM.
        var us = fast!.u
        for i in 0..<us.rows { for k in 0..<rank { us[i, k] *= fast!.s[k] } }
        let product = LinearAlgebra.multiply(us, fast!.vt)
        var squares = 0.0
        for (x, y) in zip(a.values, product.values) { squares += Double(x - y) * Double(x - y) }
        let error = squares.squareRoot()
        let median = { (t: [Double]) in t.sorted()[t.count / 2] }
        return SVDBenchmark(
            rows: a.rows, columns: a.columns, rank: rank, runs: runs, fullSeconds: median(fullTimes), truncatedSeconds: median(fastTimes),
            optimalError: optimal, truncatedError: error, excessError: error / optimal - 1,
            speedup: median(fullTimes) / median(fastTimes))
    }
}
