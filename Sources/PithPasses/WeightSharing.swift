import PithIR
import PithLinearAlgebra

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
        var indices = [UInt8](repeating: 0, count: values.count)
        var iterations = 0, objective = 0.0
        for channel in 0..<channels {
            let members = layout.elements(of: channel)
            let slice = members.map { values[$0] }
            let survivors = slice.filter { $0 != 0 || !hasZeros }
            let kmeans = KMeans1D(survivors)
            var result: KMeansResult
            if (options.mode ?? .lloyd) == .optimal {
                guard let optimum = kmeans.optimal(k: k) else {
                    throw PassError(.tooExpensive, "tensor `\(tensor)`: the exact k-means optimum for \(survivors.count) values and \(k) clusters exceeds the work limit; use mode lloyd")
                }
                result = optimum
            } else {
                let initial = kmeans.initialCentroids(k: k, method: options.initialization ?? .linear, seed: seed &+ UInt64(channel))
                result = kmeans.lloyd(from: initial, maxIterations: options.iterations ?? KMeans1D.defaultMaxIterations)
            }
            iterations = Swift.max(iterations, result.iterations)
            objective += result.objective
            var centroids = result.centroids
            if centroids.isEmpty { centroids = [0] }
            let offset = hasZeros ? 1 : 0
            let codes = slice.withUnsafeBufferPointer { KMeans1D.assign($0, to: centroids) }
            for (i, element) in members.enumerated() {
                indices[element] = (hasZeros && slice[i] == 0) ? 0 : codes[i] + UInt8(offset)
            }
            tables.append((hasZeros ? [0] : []) + centroids)
        }
        // Tables of one codebook share a length: pad short ones (fewer distinct values) with their last entry.
        let width = tables.map(\.count).max() ?? 1
        let centroids = tables.flatMap { $0 + Array(repeating: $0.last ?? 0, count: width - $0.count) }
        let codebook = CodebookStorage(bits: options.bits, centroids: centroids, channels: channels, axis: layout.axis, indices: indices, zeroIsReserved: hasZeros)
        let mode = (options.mode ?? .lloyd) == .optimal ? "optimal" : "\((options.initialization ?? .linear).rawValue) init, \(iterations) iterations"
        return (codebook, "k-means \(k) clusters\(hasZeros ? " + exact zero" : "")\(channels > 1 ? " × \(channels) channels" : ""), \(mode), SSE \(objective)")
    }
}
