public import PithIR

/// The result of inspecting a model: one row per tensor, totals, and a summary per layer.
/// Its JSON form is described by `Schemas/inspect-report.schema.json`.
public struct InspectReport: Sendable, Codable, Equatable {
    public struct Totals: Sendable, Codable, Equatable {
        public var tensors: Int
        public var count: Int
        public var nonzero: Int
        public var bytes: Int
        /// Fraction of all elements that are zero.
        public var sparsity: Double
    }

    public struct LayerSummary: Sendable, Codable, Equatable {
        /// Node or layer name; empty for tensors no node reads.
        public var layer: String
        public var op: String
        public var tensors: Int
        public var count: Int
        public var nonzero: Int
        public var bytes: Int
    }

    /// Optimizer state in the file: counted here, never among the tensors.
    public struct OptimizerState: Sendable, Codable, Equatable {
        public var tensors: Int
        public var count: Int
        public var bytes: Int
    }

    public var file: String
    public var format: SourceFormat
    public var producer: String
    /// Rows in report order (after sorting and `--top`).
    public var tensors: [TensorStatistics]
    /// Over every tensor of the model, whatever `tensors` shows.
    public var totals: Totals
    public var layers: [LayerSummary]
    public var optimizerState: OptimizerState?
    /// The exact-count limit used for `distinct`.
    public var distinctCap: Int
    /// What the model is before its tensors: inputs, outputs, operators, parameters per operator.
    public var summary: ModelSummary?
    /// For a `.pith` container: the Deep Compression accounting of every tensor, before and after
    /// entropy coding, and the file's size.
    public var container: ContainerSummary?

    public struct ContainerSummary: Sendable, Codable, Equatable {
        /// One tensor: the columns of Han et al.'s Table 2, before and after entropy coding.
        public struct Row: Sendable, Codable, Equatable {
            public var tensor: String
            public var layer: String
            public var elements: Int
            public var kept: Int
            /// `dense float32`, `csr(5) + codebook(6)`, `float-split`, …
            public var encoding: String
            /// Stored entries: elements, or sparse entries including fillers.
            public var entries: Int
            public var fillers: Int
            /// Bits per entry of weights (values, indices or codes) and of sparse indices
            /// (gaps and row pointers), as stored before and after entropy coding.
            public var weightBitsBefore: Double
            public var weightBitsAfter: Double
            public var indexBitsBefore: Double
            public var indexBitsAfter: Double
            /// Codebooks, scales and zero points.
            public var tableBytes: Int
            public var bytesBefore: Int
            public var bytes: Int
            /// The tensor dense in its dtype, for the ratio.
            public var denseBytes: Int

            public init(
                tensor: String, layer: String, elements: Int, kept: Int, encoding: String, entries: Int, fillers: Int,
                weightBitsBefore: Double, weightBitsAfter: Double, indexBitsBefore: Double, indexBitsAfter: Double,
                tableBytes: Int, bytesBefore: Int, bytes: Int, denseBytes: Int
            ) {
                self.tensor = tensor; self.layer = layer; self.elements = elements; self.kept = kept; self.encoding = encoding
                self.entries = entries; self.fillers = fillers; self.weightBitsBefore = weightBitsBefore; self.weightBitsAfter = weightBitsAfter
                self.indexBitsBefore = indexBitsBefore; self.indexBitsAfter = indexBitsAfter; self.tableBytes = tableBytes
                self.bytesBefore = bytesBefore; self.bytes = bytes; self.denseBytes = denseBytes
            }
        }

        public var fileBytes: Int
        /// Bytes that are not tensors: header, manifest, source skeleton, alignment.
        public var overheadBytes: Int
        public var rows: [Row]
        /// A container in the whole-file form: the source file stored whole, as one frame (no
        /// per-tensor streams, so `rows` is empty).
        public var storedWhole: StoredWhole?

        /// The whole-file form: the source's size and the dictionary its frame was made with.
        public struct StoredWhole: Sendable, Codable, Equatable {
            public var sourceBytes: Int
            public var dictionary: String

            /// What the frame holds and how it was made, for a report: `onnx-skeleton-1` (1.6) is the
            /// model's skeleton followed by its tensors' data, made with `onnx-1`.
            public var framing: String {
                dictionary == "onnx-skeleton-1"
                    ? "one zstd frame of its ONNX skeleton followed by its tensors' data, made with Pith's `onnx-1` dictionary"
                    : "one zstd frame made with Pith's `\(dictionary)` dictionary"
            }

            public init(sourceBytes: Int, dictionary: String) {
                self.sourceBytes = sourceBytes
                self.dictionary = dictionary
            }
        }

        public init(fileBytes: Int, overheadBytes: Int, rows: [Row], storedWhole: StoredWhole? = nil) {
            self.fileBytes = fileBytes
            self.overheadBytes = overheadBytes
            self.rows = rows
            self.storedWhole = storedWhole
        }
    }
}

/// How report rows are ordered.
public enum InspectSort: String, Sendable, CaseIterable {
    /// Model order, as the file lists tensors.
    case file
    /// Largest stored size first; ties by name.
    case size
    /// By name.
    case name
}

public enum Inspector {
    /// Distinct values are counted exactly up to this many by default: enough for every 16-bit type.
    public static let defaultDistinctCap = 65_536

    /// Measures every tensor of `model` (both cores, one tensor per task) and builds the report.
    /// `top` keeps the first N rows after sorting; totals and layers always cover the whole model.
    /// Optimizer state (`Tensor.isOptimizerState`) is counted apart, in `optimizerState`.
    public static func inspect(
        _ whole: Model, file: String, sort: InspectSort = .file, top: Int? = nil,
        distinctCap: Int = defaultDistinctCap, storedBytes allStoredBytes: [Int]? = nil, container: InspectReport.ContainerSummary? = nil
    ) -> InspectReport {
        let (model, kept) = whole.separatingOptimizerState()
        let storedBytes = allStoredBytes.map { bytes in kept.map { bytes[$0] } }
        var statistics = measure(model.tensors, distinctCap: distinctCap)
        let roles = model.tensorRoles()
        for (i, role) in roles.enumerated() where i < statistics.count { statistics[i].role = role.kind.rawValue }
        if let storedBytes {
            for i in statistics.indices {
                statistics[i].bytes = storedBytes[i]
                statistics[i].bitsPerWeight = statistics[i].count == 0 ? 0 : Double(storedBytes[i] * 8) / Double(statistics[i].count)
            }
        }
        // 4-bit codes packed two per byte: bits per weight they decode to, not per byte.
        for (id, weights) in PackedCodes.weights(in: model) where weights > 0 {
            statistics[id].bitsPerWeight = Double(statistics[id].bytes * 8) / Double(weights)
        }
        var totals = InspectReport.Totals(tensors: statistics.count, count: 0, nonzero: 0, bytes: 0, sparsity: 0)
        var layers: [InspectReport.LayerSummary] = []
        var layerIndex: [String: Int] = [:]
        for row in statistics {
            totals.count += row.count
            totals.nonzero += row.nonzero
            totals.bytes += row.bytes
            let key = row.op + "\u{0}" + row.layer
            if layerIndex[key] == nil {
                layerIndex[key] = layers.count
                layers.append(.init(layer: row.layer, op: row.op, tensors: 0, count: 0, nonzero: 0, bytes: 0))
            }
            let index = layerIndex[key]!
            layers[index].tensors += 1
            layers[index].count += row.count
            layers[index].nonzero += row.nonzero
            layers[index].bytes += row.bytes
        }
        totals.sparsity = totals.count == 0 ? 0 : Double(totals.count - totals.nonzero) / Double(totals.count)

        var order = Array(statistics.indices)
        switch sort {
        case .file: break
        case .size: order.sort { (statistics[$0].bytes, statistics[$1].name) > (statistics[$1].bytes, statistics[$0].name) }
        case .name: order.sort { statistics[$0].name < statistics[$1].name }
        }
        if let top { order = Array(order.prefix(Swift.max(0, top))) }
        let rows = order.map { statistics[$0] }

        let optimizer =
            model.optimizerState.isEmpty
            ? nil
            : InspectReport.OptimizerState(
                tensors: model.optimizerState.count,
                count: model.optimizerState.reduce(0) { $0 + $1.count },
                bytes: model.optimizerState.reduce(0) { $0 + $1.bytes })
        var producer = model.metadata.producerName
        if !model.metadata.producerVersion.isEmpty { producer += (producer.isEmpty ? "" : " ") + model.metadata.producerVersion }
        var report = InspectReport(
            file: file, format: model.format, producer: producer, tensors: rows, totals: totals,
            layers: layers, optimizerState: optimizer, distinctCap: distinctCap, container: container)
        report.summary = ModelSummary(model, statistics: statistics, roles: roles)
        return report
    }

    /// Views of a mapped file (ONNX external data) at least this large are measured one at a time,
    /// so that the pages resident at once stay near one tensor's size: two 750 MB tensors measured
    /// side by side held 1.4 GB of a 3 GB model (docs/benchmarks.md, "external data").
    public static let mappedOneAtATimeBytes = 256 << 20

    /// Statistics of every tensor, in order, computed on every core (large views of mapped files one
    /// at a time, first).
    public static func measure(_ tensors: [Tensor], distinctCap: Int = defaultDistinctCap) -> [TensorStatistics] {
        // Largest first, so one big tensor does not start last and run alone.
        let sorted = tensors.indices.sorted { tensors[$0].storedBytes > tensors[$1].storedBytes }
        let isLargeView = { (index: Int) -> Bool in
            guard case .dense(let buffer) = tensors[index].storage else { return false }
            return buffer.isMappedView && buffer.count >= mappedOneAtATimeBytes
        }
        let order = sorted.filter(isLargeView) + sorted.filter { !isLargeView($0) }
        let progress = ProgressReport.Counter("inspect", total: tensors.count, unit: "tensors")
        let measureOne: @Sendable (Int) -> TensorStatistics = { index in
            defer { progress.advance() }
            let statistics = TensorStatistics(measuring: tensors[index], distinctCap: distinctCap)
            // A tensor read from a mapped data file gives its pages back once measured, so inspecting
            // a model of several gigabytes keeps about one large tensor resident.
            if case .dense(let buffer) = tensors[index].storage { buffer.releasePages() }
            return statistics
        }
        let serialCount = sorted.count(where: isLargeView)
        let results = order[..<serialCount].map(measureOne) + Parallel.map(Array(order[serialCount...])) { measureOne($0) }
        var inFileOrder = [TensorStatistics?](repeating: nil, count: tensors.count)
        for (position, index) in order.enumerated() { inFileOrder[index] = results[position] }
        return inFileOrder.map { $0! }
    }
}
