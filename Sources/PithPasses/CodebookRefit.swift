import PithIR
import PithLinearAlgebra

/// Codebook refit: the centroids of clustered weights chosen for the layer's outputs, not its weights.
public struct RefitOptions: Sendable, Codable, Equatable {
    /// Rounds of (closed-form centroids, then reassignment); the best round is kept. Default 4.
    public var iterations: Int?
    /// How weights are reassigned between rounds: `gptq` (default) or `nearest`.
    public var assign: ClusterOptions.Assignment?

    public init(iterations: Int? = nil, assign: ClusterOptions.Assignment? = nil) {
        self.iterations = iterations
        self.assign = assign
    }

    public static let defaultIterations = 4

    func validate(_ label: String) throws {
        if let iterations, !(1...100).contains(iterations) {
            throw PassError(.invalidRecipe, "\(label): refit iterations must be 1…100, got \(iterations)")
        }
    }
}

extension RefitOptions: CompressionPass {
    static let action = "refit"

    var isDataAware: Bool { true }

    /// Refits every selected tensor a `cluster` step has clustered, layer by layer in graph order.
    func run(selecting selector: TensorSelector, in run: inout CompressionRun, step: Int) throws {
        let ids = run.select(selector, step: step, action: Self.action).filter { id in
            if run.working[id]?.codebook != nil { return true }
            run.skipped.append(
                .init(step: step, action: Self.action, target: run.model.tensors[id].name, reason: "not clustered (refit follows a cluster step)"))
            return false
        }
        let (layers, others) = run.calibratedLayers(ids)
        for (id, reason) in others { run.skipped.append(.init(step: step, action: Self.action, target: run.model.tensors[id].name, reason: reason)) }
        for geometry in layers { try CodebookRefit.refit(geometry, options: self, in: &run, step: step) }
    }
}

/// A codebook taken apart: per channel, its table of centroids without the reserved zero.
struct CodebookTables: Sendable {
    var tables: [[Float]]
    var zeroIsReserved: Bool
    var bits: Int
    var axis: Int

    init(tables: [[Float]], zeroIsReserved: Bool, bits: Int, axis: Int) {
        self.tables = tables
        self.zeroIsReserved = zeroIsReserved
        self.bits = bits
        self.axis = axis
    }

    init(_ codebook: CodebookStorage) {
        let per = codebook.centroidsPerChannel, skip = codebook.zeroIsReserved ? 1 : 0
        tables = (0..<codebook.channels).map { c in Array(codebook.centroids[(c * per + skip)..<((c + 1) * per)]) }
        zeroIsReserved = codebook.zeroIsReserved
        bits = codebook.bits
        axis = codebook.axis
    }

    /// The entry of `channel`'s table nearest to `value` (the first of equals).
    func nearest(_ channel: Int, _ value: Float) -> Int {
        let table = tables[channel]
        var best = 0, distance = Float.infinity
        for (i, c) in table.enumerated() where Swift.abs(c - value) < distance {
            best = i
            distance = Swift.abs(c - value)
        }
        return best
    }

    /// The codebook storage of `assignment` (per stored element: its table entry, −1 for the reserved zero).
    func storage(_ assignment: [Int32]) -> CodebookStorage {
        let offset = zeroIsReserved ? 1 : 0
        let centroids = tables.flatMap { (zeroIsReserved ? [Float(0)] : []) + $0 }
        let indices = assignment.map { UInt8(Int($0) + offset) }
        return CodebookStorage(bits: bits, centroids: centroids, channels: tables.count, axis: axis, indices: indices, zeroIsReserved: zeroIsReserved)
    }
}

/// The closed-form centroids and the refit loop (after the GPTQ reference's shape: statistics in,
/// small solves, a sweep for reassignment).
enum CodebookRefit {
    /// With every weight's centroid fixed, the centroids c minimising the layer output error
    /// tr((T − Ŵ) H (T − Ŵ)ᵀ), Ŵ = Σ_a c_a·M_a (M_a the indicator of the weights assigned entry a,
    /// the reserved zero held at 0), solve (Σ_r M_r H M_rᵀ) c = Σ_r M_r H t_r: one small system per
    /// table (m × m for m centroids), summed over the rows that share it. `assignment` is in layer
    /// form (rows × columns; −1 for an element held at zero); `channelOf(row)` gives a row's table.
    static func solveCentroids(
        target: [Float], assignment: [Int32], tables: inout [[Float]], geometry: LayerGeometry, statistics: LayerStatistics, channelOf: (Int) -> Int
    ) {
        let k = geometry.columns, m = tables.first?.count ?? 0
        guard m > 0 else { return }
        var gram = [[Double]](repeating: [Double](repeating: 0, count: m * m), count: tables.count)
        var rhs = [[Double]](repeating: [Double](repeating: 0, count: m), count: tables.count)
        var s = [Double](repeating: 0, count: m * k)
        for g in 0..<geometry.groups {
            let h = statistics.hessians[g]
            for r in geometry.rows(ofGroup: g) {
                let table = channelOf(r)
                for i in s.indices { s[i] = 0 }
                // S = M_r·H: row a sums the rows of H of the columns assigned entry a.
                for j in 0..<k {
                    let a = Int(assignment[r * k + j])
                    guard a >= 0 else { continue }
                    let hRow = j * k
                    for i in 0..<k { s[a * k + i] += Double(h[hRow + i]) }
                }
                for j in 0..<k {
                    let b = Int(assignment[r * k + j])
                    guard b >= 0 else { continue }
                    for a in 0..<m { gram[table][a * m + b] += s[a * k + j] }
                }
                for a in 0..<m {
                    var sum = 0.0
                    for i in 0..<k { sum += s[a * k + i] * Double(target[r * k + i]) }
                    rhs[table][a] += sum
                }
            }
        }
        for t in tables.indices {
            var a = gram[t], b = rhs[t]
            var trace = 0.0
            for i in 0..<m { trace += a[i * m + i] }
            for i in 0..<m {
                if a[i * m + i] == 0 {
                    // No weight uses the entry: keep it where it is.
                    for j in 0..<m { a[i * m + j] = 0 }
                    a[i * m + i] = 1
                    b[i] = Double(tables[t][i])
                } else {
                    a[i * m + i] += 1e-9 * trace / Double(m)
                }
            }
            if let solution = LinearAlgebra.solve(a, b, n: m), solution.allSatisfy(\.isFinite) {
                tables[t] = solution.map { Float($0) }
            }
        }
    }

    /// Weighted Lloyd iterations on one channel: centroids minimising Σ weight·(value − centroid)²,
    /// each cluster a run of the sorted values, started from `initial` (sorted), until nothing moves.
    static func weightedLloyd(_ values: [Float], weights: [Float], initial: [Float], maxIterations: Int = 300) -> [Float] {
        guard !values.isEmpty, !initial.isEmpty else { return initial }
        let order = values.indices.sorted { values[$0] < values[$1] }
        let sorted = order.map { values[$0] }
        var weightSum = [Double](repeating: 0, count: sorted.count + 1), moment = weightSum
        for (p, i) in order.enumerated() {
            weightSum[p + 1] = weightSum[p] + Double(weights[i])
            moment[p + 1] = moment[p] + Double(weights[i]) * Double(values[i])
        }
        var centroids = initial.sorted()
        for _ in 0..<maxIterations {
            var next = centroids, start = 0
            for c in centroids.indices {
                var end = sorted.count
                if c + 1 < centroids.count {
                    let boundary = (centroids[c] + centroids[c + 1]) / 2
                    end = Pruning.lowerBound(sorted, boundary)
                    end = Swift.max(end, start)
                }
                let w = weightSum[end] - weightSum[start]
                if w > 0 { next[c] = Float((moment[end] - moment[start]) / w) }
                start = end
            }
            next.sort()
            if next == centroids { break }
            centroids = next
        }
        return centroids
    }

    /// Refits one clustered layer: rounds of closed-form centroids then reassignment (GPTQ or
    /// nearest), keeping the codebook with the smallest layer output error (the input one included).
    static func refit(_ geometry: LayerGeometry, options: RefitOptions, in run: inout CompressionRun, step: Int) throws {
        let id = geometry.tensor
        var s = run.state(id)
        guard let codebook = s.codebook else { return }
        let before = run.bytesNow(id)
        let statistics = try run.statistics(geometry)
        let k = geometry.columns
        let target = geometry.layerForm(s.unencoded ?? run.originals[id]!)
        let channelOf: @Sendable (Int) -> Int = { [channels = codebook.channels] row in channels == 1 ? 0 : row }
        var tables = CodebookTables(codebook)
        // The input assignment, in layer form.
        let offset = codebook.zeroIsReserved ? 1 : 0
        var assignment = [Int32](repeating: -1, count: target.count)
        for r in 0..<geometry.outputs {
            for j in 0..<k { assignment[r * k + j] = Int32(codebook.indices[geometry.storedIndex(row: r, column: j)]) - Int32(offset) }
        }
        let inputValues = geometry.layerForm(s.values)
        let startError = run.layerError(geometry, statistics, approximation: inputValues)
        var best = (error: startError, tables: tables, assignment: assignment, values: inputValues)
        let factors = try (options.assign ?? .gptq) == .gptq ? run.inverseFactors(geometry, statistics) : []
        let mask = target.map { $0 == 0 && codebook.zeroIsReserved }
        for _ in 0..<(options.iterations ?? RefitOptions.defaultIterations) {
            solveCentroids(target: target, assignment: assignment, tables: &tables.tables, geometry: geometry, statistics: statistics, channelOf: channelOf)
            var values = decode(assignment, tables: tables, columns: k, channelOf: channelOf)
            var error = run.layerError(geometry, statistics, approximation: values)
            if error < best.error { best = (error, tables, assignment, values) }
            // Reassign to the new centroids.
            let frozen = tables
            let snap: @Sendable (Int, Int, Float) -> Float = { r, j, v in
                mask[r * k + j] ? 0 : frozen.tables[channelOf(r)][frozen.nearest(channelOf(r), v)]
            }
            values = target
            if factors.isEmpty {
                for r in 0..<geometry.outputs { for j in 0..<k { values[r * k + j] = snap(r, j, values[r * k + j]) } }
            } else {
                run.sweep(&values, geometry, factors: factors, quantize: snap)
            }
            for r in 0..<geometry.outputs {
                for j in 0..<k { assignment[r * k + j] = mask[r * k + j] ? -1 : Int32(frozen.nearest(channelOf(r), values[r * k + j])) }
            }
            error = run.layerError(geometry, statistics, approximation: values)
            if error < best.error { best = (error, frozen, assignment, values) }
        }
        var stored = [Int32](repeating: -1, count: target.count)
        for r in 0..<geometry.outputs { for j in 0..<k { stored[geometry.storedIndex(row: r, column: j)] = best.assignment[r * k + j] } }
        s.codebook = best.tables.storage(stored)
        s.values = geometry.storedOrder(best.values)
        run.working[id] = s
        let rounds = options.iterations ?? RefitOptions.defaultIterations
        run.record(
            step: step, action: RefitOptions.action, id: id, before: before, after: s,
            detail: "closed-form centroids, \(rounds) rounds, \((options.assign ?? .gptq).rawValue) reassignment, damp \(run.damp)")
        run.attach(
            LayerError(samples: statistics.samples, rows: statistics.rows, before: startError, dataFree: startError, after: best.error))
    }

    /// Layer-form values of an assignment.
    static func decode(_ assignment: [Int32], tables: CodebookTables, columns k: Int, channelOf: (Int) -> Int) -> [Float] {
        var values = [Float](repeating: 0, count: assignment.count)
        for i in values.indices where assignment[i] >= 0 { values[i] = tables.tables[channelOf(i / k)][Int(assignment[i])] }
        return values
    }
}
