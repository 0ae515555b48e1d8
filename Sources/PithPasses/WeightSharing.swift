import PithIR
public import PithLinearAlgebra

/// Weight sharing by k-means.
public struct ClusterOptions: Sendable, Codable, Equatable {
    public enum Mode: String, Sendable, Codable, CaseIterable {
        /// Lloyd's algorithm from the chosen initialisation.
        case lloyd
        /// The exact optimum by dynamic programming (for tensors where it is affordable).
        case optimal
    }

    /// How each weight gets its centroid once the centroids are chosen.
    public enum Assignment: String, Sendable, Codable, CaseIterable {
        /// The nearest centroid.
        case nearest
        /// GPTQ's sequential update: columns in order, each weight snapped to its nearest centroid
        /// after the errors of the columns before it were fed forward through the damped inverse
        /// Hessian of the layer's calibration inputs. Data-aware.
        case gptq
    }

    /// What k-means minimises.
    public enum Weighting: String, Sendable, Codable, CaseIterable {
        /// Σ (w − c)²: every weight counts the same.
        case none
        /// Σ H_ii (w − c)²: each weight counts by the mean square of the input it multiplies (the
        /// diagonal of the layer's calibration Hessian), Lloyd's algorithm started from the plain
        /// k-means centroids. Data-aware.
        case hessian
    }

    /// Bits per index, 1…8: 2^bits centroids (one of them exact zero in a pruned tensor).
    public var bits: Int
    public var initialization: KMeansInit?
    public var granularity: Granularity?
    public var mode: Mode?
    public var iterations: Int?
    public var assign: Assignment?
    public var weighting: Weighting?

    public init(
        bits: Int, initialization: KMeansInit? = nil, granularity: Granularity? = nil, mode: Mode? = nil, iterations: Int? = nil,
        assign: Assignment? = nil, weighting: Weighting? = nil
    ) {
        self.assign = assign
        self.weighting = weighting
        self.bits = bits
        self.initialization = initialization
        self.granularity = granularity
        self.mode = mode
        self.iterations = iterations
    }

    enum CodingKeys: String, CodingKey { case bits, initialization = "init", granularity, mode, iterations, assign, weighting }

    func validate(_ label: String) throws {
        guard (1...8).contains(bits) else { throw PassError(.invalidRecipe, "\(label): cluster bits must be 1…8, got \(bits)") }
        if let iterations, iterations < 1 { throw PassError(.invalidRecipe, "\(label): cluster iterations must be ≥ 1, got \(iterations)") }
    }

    var isDataAware: Bool { assign == .gptq || weighting == .hessian }
}

extension ClusterOptions: CompressionPass {
    static let action = "cluster"

    func run(selecting selector: TensorSelector, in run: inout CompressionRun, step: Int) throws {
        let ids = run.select(selector, step: step, action: Self.action)
        if isDataAware {
            try GPTQ.cluster(ids, options: self, in: &run, step: step)
            return
        }
        let seed = run.seed
        try run.encodeEach(ids, action: Self.action, granularity: granularity, step: step) { id, values, layout, tensor in
            let (codebook, detail) = try WeightSharing.cluster(values, layout: layout, options: self, seed: seed &+ UInt64(id), tensor: tensor.name)
            return (.codebook(codebook), detail)
        }
    }
}

/// Weight sharing by 1-D k-means (Deep Compression §3).
enum WeightSharing {
    /// Clusters `values` (row-major, one table per channel of `layout`) into a codebook of
    /// `options.bits` bits. Exact zeros stay exact (code 0 is reserved for them) and only the
    /// other values are clustered.
    static func cluster(_ values: [Float], layout: ChannelLayout, options: ClusterOptions, seed: UInt64, tensor: String) throws -> (CodebookStorage, String) {
        let channels = layout.channels
        let hasZeros = values.contains(0)
        let size = 1 << options.bits
        let k = Swift.max(1, size - (hasZeros ? 1 : 0))
        var tables: [[Float]] = []
        // One table for the whole tensor assigns its codes in place (below); channels fill this.
        var indices = channels == 1 ? [] : [UInt8](repeating: 0, count: values.count)
        var iterations = 0, objective = 0.0
        for channel in 0..<channels {
            // One table for the whole tensor: the values as they are, no list of positions.
            let members: [Int]? = channels == 1 ? nil : Array(layout.elements(of: channel))
            let slice = members.map { $0.map { values[$0] } } ?? values
            // The k-means (a sorted copy of the values) is let go of before the codes are made.
            let result: KMeansResult = try {
                let kmeans = KMeans1D(hasZeros ? slice.filter { $0 != 0 } : slice)
                if (options.mode ?? .lloyd) == .optimal {
                    guard let optimum = kmeans.optimal(k: k) else {
                        throw PassError(
                            .tooExpensive,
                            "tensor `\(tensor)`: the exact k-means optimum for \(kmeans.count) values and \(k) clusters exceeds the work limit; use mode lloyd")
                    }
                    return optimum
                }
                let initial = kmeans.initialCentroids(k: k, method: options.initialization ?? .linear, seed: seed &+ UInt64(channel))
                return kmeans.lloyd(from: initial, maxIterations: options.iterations ?? KMeans1D.defaultMaxIterations)
            }()
            iterations = Swift.max(iterations, result.iterations)
            objective += result.objective
            var centroids = result.centroids
            if centroids.isEmpty { centroids = [0] }
            let offset = UInt8(hasZeros ? 1 : 0)
            var codes = slice.withUnsafeBufferPointer { KMeans1D.assign($0, to: centroids) }
            if let members {
                for i in slice.indices { indices[members[i]] = (hasZeros && slice[i] == 0) ? 0 : codes[i] + offset }
            } else {
                if hasZeros {
                    for i in slice.indices { codes[i] = slice[i] == 0 ? 0 : codes[i] + offset }
                }
                indices = codes
            }
            tables.append((hasZeros ? [0] : []) + centroids)
        }
        // Tables of one codebook share a length: pad short ones (fewer distinct values) with their last entry.
        let width = tables.map(\.count).max() ?? 1
        let centroids = tables.flatMap { $0 + Array(repeating: $0.last ?? 0, count: width - $0.count) }
        let codebook = CodebookStorage(
            bits: options.bits, centroids: centroids, channels: channels, axis: layout.axis, indices: indices, zeroIsReserved: hasZeros)
        let mode = (options.mode ?? .lloyd) == .optimal ? "optimal" : "\((options.initialization ?? .linear).rawValue) init, \(iterations) iterations"
        return (
            codebook,
            "k-means \(k) clusters\(hasZeros ? " + exact zero" : "")\(channels > 1 ? " × \(channels) channels" : ""), \(mode), SSE \(String(format: "%.4g", objective))"
        )
    }
}
