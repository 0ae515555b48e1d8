import Foundation

/// What `pith report` draws (see `Reporting`): gathered once, rendered by `renderHTML()`.
public struct ModelReport: Sendable {
    public var file: String
    public var fileBytes: Int
    /// The model's inspection: summary, totals, every tensor in file order.
    public var inspect: InspectReport
    /// The compressed model, when there is one.
    public var comparison: Comparison?
    /// One bar row per weight (the largest `Reporting.layerRowLimit`; every tensor with `--all`), in file order.
    public var layers: [LayerRow] = []
    /// Weights in the model (tensors whose role is a weight).
    public var weightCount = 0
    /// The model is a `.pith` container reported alone: "before" is its tensors dense.
    public var containerAlone = false
    public var histograms: [Histogram] = []
    /// Weights and, with data, outputs compared (`pith verify` without gates).
    public var verify: VerifyReport?
    public var sensitivity: Sensitivity?
    public var search: Search?

    public init(file: String, fileBytes: Int, inspect: InspectReport) {
        self.file = file
        self.fileBytes = fileBytes
        self.inspect = inspect
    }

    public struct Comparison: Sendable {
        public var file: String
        public var fileBytes: Int
        /// The container's accounting (nil when the compressed model is not a `.pith`).
        public var container: InspectReport.ContainerSummary?
        /// The recipe `--auto` wrote beside the container.
        public var recipe: RecipeNote?
        /// Every tensor of the compressed model, measured.
        public var statistics: [TensorStatistics]
    }

    /// The comment lines at the head of an `OUT.recipe.yaml`: the budget, the size, the command and
    /// each layer's setting.
    public struct RecipeNote: Sendable {
        public var path: String
        public var lines: [String]
    }

    public struct LayerRow: Sendable {
        public var tensor: String
        public var layer: String
        public var op: String
        public var shape: [Int]
        public var elements: Int
        public var bytesBefore: Int
        public var bitsBefore: Double
        public var sparsityBefore: Double
        public var bytesAfter: Int?
        public var bitsAfter: Double?
        public var sparsityAfter: Double?
        /// How the compressed model stores it (`csr(5) + codebook(4)`, `int8 per-channel`, …).
        public var encoding: String?
        /// The weight's SNR in dB against the original (infinite when bit-exact).
        public var weightSNR: Double?

        init(tensor: String, layer: String, op: String, shape: [Int], elements: Int, bytesBefore: Int, bitsBefore: Double, sparsityBefore: Double) {
            self.tensor = tensor
            self.layer = layer
            self.op = op
            self.shape = shape
            self.elements = elements
            self.bytesBefore = bytesBefore
            self.bitsBefore = bitsBefore
            self.sparsityBefore = sparsityBefore
        }
    }

    /// A weight's values in `bins` equal bins over [low, high], with the compressed model's
    /// codebook or quantization grid.
    public struct Histogram: Sendable {
        public enum Marks: Sendable, Equatable {
            case none
            /// k-means centroids (every table's, when there is one per channel).
            case centroids
            /// The values a linear quantizer can produce (of the widest channel's grid, per channel).
            case grid
        }

        public var tensor: String
        public var shape: [Int]
        public var elements: Int
        public var low: Double
        public var high: Double
        /// Counts of the original values, of the finite ones.
        public var counts: [Int]
        /// Counts of the compressed model's nonzero values, when they are neither a codebook nor a
        /// grid (pruned dense values, factors, float16); nil otherwise.
        public var compressedCounts: [Int]?
        public var marks: Marks = .none
        /// Marked values, sorted: at most `markLimit` centroids, every level of a grid in view.
        public var markValues: [Double] = []
        /// The marks are finer than the bins (an int8 grid): ticks under the axis instead of lines.
        public var rug = false
        /// Counts spread over orders of magnitude (one bin of the 96 holds more than 8% of the values): the
        /// y axis is logarithmic.
        public var logCounts = false
        /// The original values set to zero lie in [−prunedBelow, prunedBelow].
        public var prunedBelow: Double?
        /// Share of elements the compression set to zero that were not zero.
        public var pruned: Double = 0
        /// In words: `16 centroids`, `int8 grid per channel (step 1.2e-3 … 4.1e-3)`, `float16`.
        public var caption: String = ""
        public var nonFinite: Int = 0

        /// Marks drawn as lines at most (centroids beyond it are thinned; a finer grid is a rug).
        static let markLimit = 64

        init(_ tensor: Tensor, compressed twin: Tensor?, bins: Int) {
            self.tensor = tensor.name
            shape = tensor.shape
            elements = tensor.count
            let values = tensor.decodedFloats()
            let after = twin.map { $0.count == tensor.count ? $0.decodedFloats() : [] } ?? []
            var lowest = Float.infinity, highest = -Float.infinity, bad = 0
            for value in values {
                if value.isFinite {
                    lowest = min(lowest, value)
                    highest = max(highest, value)
                } else {
                    bad += 1
                }
            }
            for value in after where value.isFinite {
                lowest = min(lowest, value)
                highest = max(highest, value)
            }
            nonFinite = bad
            if !(lowest <= highest) { lowest = 0; highest = 0 }
            var a = Double(lowest), b = Double(highest)
            if a == b {
                let pad = a == 0 ? 1 : abs(a) * 0.1
                a -= pad
                b += pad
            }
            low = a
            high = b
            counts = Self.count(values, low: a, high: b, bins: bins, skipZeros: false)
            logCounts = Double(counts.max() ?? 0) > 0.08 * Double(max(1, values.count - bad))
            guard let twin, after.count == values.count else { return }

            var storage = twin.storage
            if case .sparse(let entries) = storage {
                switch entries.values {
                case .codebook(let c): storage = .codebook(c)
                case .quantized(let q): storage = .quantized(q)
                case .dense: storage = .dense(TensorBuffer(values: [Float]()))
                }
            }
            // Zeros the compression chose (dense values, a reserved zero code, a quantized value
            // beyond half a step of zero) are pruning; zeros a quantizer rounds to are not.
            var zeroed = 0, band: Float = 0
            for (x, y) in zip(values, after) where y == 0 && x != 0 && x.isFinite {
                zeroed += 1
                band = max(band, abs(x))
            }
            let pruning: Bool
            switch storage {
            case .dense: pruning = true
            case .codebook(let c): pruning = c.zeroIsReserved
            case .quantized(let q):
                let widest = q.scales.map { abs(Double($0)) }.max() ?? 0
                pruning = q.codeBits < 16 && Double(band) > 0.5 * widest * 1.001
            default: pruning = false
            }
            let share = values.isEmpty ? 0 : Double(zeroed) / Double(values.count)
            var words: [String] = []
            if zeroed > 0, pruning {
                pruned = share
                prunedBelow = Double(band)
                words.append(String(format: "%.1f%% pruned to zero", share * 100))
            } else if zeroed > 0 {
                words.append(String(format: "%.1f%% rounded to zero", share * 100))
            }

            switch storage {
            case .codebook(let c):
                marks = .centroids
                var centroids = Set(c.centroids.map { Double($0) })
                if c.zeroIsReserved { centroids.remove(0) }
                markValues = Array(centroids).sorted()
                if markValues.count > Self.markLimit { markValues = Self.thin(markValues, to: Self.markLimit) }
                let reserved = c.zeroIsReserved ? "\(c.centroidsPerChannel - 1) centroids and a reserved zero" : "\(c.centroidsPerChannel) centroids"
                words.insert(
                    c.channels == 1 ? "\(reserved) (\(c.bits) bits)" : "\(reserved) per channel × \(c.channels) channels (\(c.bits) bits)", at: 0)
            case .quantized(let q):
                switch q.scheme {
                case .linear(let bits, let signed):
                    let lowest = signed ? -(1 << (bits - 1)) : 0, highest = signed ? (1 << (bits - 1)) - 1 : (1 << bits) - 1
                    // Per channel, the widest channel's grid: the one that spans the tensor's range.
                    let widest = q.scales.indices.max { abs(q.scales[$0]) < abs(q.scales[$1]) } ?? 0
                    let scale = Double(q.scales.isEmpty ? 1 : q.scales[widest])
                    let zero = Double(q.zeroPoints.isEmpty ? 0 : q.zeroPoints[min(widest, q.zeroPoints.count - 1)])
                    let grid = (lowest...highest).map { scale * (Double($0) - zero) }.filter { $0 >= a && $0 <= b }
                    let kind = "int\(bits)" + (signed ? "" : " unsigned")
                    var text: String
                    if q.scales.count > 1 {
                        let steps = q.scales.map { abs(Double($0)) }
                        text = "\(kind) per channel, \(q.scales.count) channels, step " + String(format: "%.3g … %.3g", steps.min() ?? 0, steps.max() ?? 0)
                        text += "; the widest channel's \(grid.count) levels marked"
                    } else {
                        text = "\(kind), step " + String(format: "%.3g", abs(scale)) + "; its \(grid.count) levels marked"
                    }
                    marks = .grid
                    markValues = grid
                    // Finer than the bins: drawn as a rug under the axis.
                    rug = grid.count > Self.markLimit
                    words.insert(text, at: 0)
                case .float16: words.insert("float16", at: 0)
                case .bfloat16: words.insert("bfloat16", at: 0)
                }
            case .factored(let f):
                switch f.method {
                case .lowRank(let rank): words.insert("low rank \(rank)", at: 0)
                case .tensorTrain(_, _, let ranks): words.insert("tensor train, ranks \(ranks.map(String.init).joined(separator: "·"))", at: 0)
                case .circulant: words.insert("circulant", at: 0)
                case .separable(let rank): words.insert("separable, rank \(rank)", at: 0)
                }
            case .dense, .strings, .sparse:
                break
            }
            if marks == .none, after != values {
                compressedCounts = Self.count(after, low: a, high: b, bins: bins, skipZeros: true)
            }
            caption = words.joined(separator: "; ")
        }

        /// Finite values counted in `bins` equal bins of [low, high]; exact zeros left out with `skipZeros`.
        static func count(_ values: [Float], low: Double, high: Double, bins: Int, skipZeros: Bool) -> [Int] {
            var counts = [Int](repeating: 0, count: bins)
            let width = (high - low) / Double(bins)
            for value in values where value.isFinite && !(skipZeros && value == 0) {
                let bin = Int(((Double(value) - low) / width).rounded(.down))
                counts[min(bins - 1, max(0, bin))] += 1
            }
            return counts
        }

        /// `limit` values spread evenly over sorted `values`, the first and the last kept.
        static func thin(_ values: [Double], to limit: Int) -> [Double] {
            let step = Double(values.count - 1) / Double(limit - 1)
            return (0..<limit).map { values[Int((Double($0) * step).rounded())] }
        }
    }

    /// The metrics of a model on validation data, as the JSON reports spell them.
    public struct Metrics: Sendable, Decodable {
        public var accuracy: Double?
        public var agreement: Double?
        public var outputSNR: Double?

        enum CodingKeys: String, CodingKey {
            case accuracy, agreement
            case outputSNR = "output_snr_db"
        }
    }

    /// A `pith sensitivity --format json` report: per layer, each setting's bytes and metrics.
    public struct Sensitivity: Sendable, Decodable {
        public struct Row: Sendable, Decodable {
            public var setting: String
            public var bytes: Int
            public var proxy: Double?
            public var metrics: Metrics
        }

        public struct Layer: Sendable, Decodable {
            public var tensor: String
            public var elements: Int
            public var bytes: Int
            public var rows: [Row]
        }

        public var file: String = ""
        public var model: String
        public var data: String
        public var samples: Int
        public var original: Metrics
        public var layers: [Layer]

        enum CodingKeys: String, CodingKey {
            case model, data, samples, original, layers
        }

        static func read(_ path: String) throws -> Sensitivity {
            var report: Sensitivity = try readJSON(path, what: "a `pith sensitivity --format json` report", required: ["layers", "original"]) {
                $0["probes"] != nil ? "it is a `pith compress --auto` report: give it with --auto-report" : nil
            }
            report.file = path
            return report
        }
    }

    /// A `pith compress --auto --format json` report: every model the search checked.
    public struct Search: Sendable, Decodable {
        public struct Probe: Sendable, Decodable {
            public var settings: [String]
            public var bytes: Int
            public var metrics: Metrics
            public var meets: Bool
        }

        public struct Layer: Sendable, Decodable {
            public var tensor: String
            public var setting: String
            public var bytes: Int
        }

        public var file: String = ""
        public var model: String
        public var sourceBytes: Int
        public var budget: String
        public var data: String
        public var samples: Int
        public var original: Metrics
        public var layers: [Layer]
        public var probes: [Probe]
        public var chosen: Probe
        public var missed: String?
        /// Neuron removal before the search (absent in reports from before it).
        public var width: Width?

        public struct Width: Sendable, Decodable {
            public struct Check: Sendable, Decodable {
                public var fraction: Double
                public var described: String
                public var removed: [String]
            }

            public var fraction: Double?
            public var note: String?
            public var checks: [Check]
        }

        enum CodingKeys: String, CodingKey {
            case model, budget, data, samples, original, layers, probes, chosen, missed, width
            case sourceBytes = "source_bytes"
        }

        static func read(_ path: String) throws -> Search {
            var report: Search = try readJSON(path, what: "a `pith compress --auto --format json` report", required: ["probes", "chosen"]) {
                $0["layers"] != nil && $0["probes"] == nil && $0["calibration"] != nil
                    ? "it is a `pith sensitivity` report: give it with --sensitivity" : nil
            }
            report.file = path
            return report
        }
    }

    /// Decodes the JSON report at `path`; a file that is not one says what it is (data, 65).
    static func readJSON<T: Decodable>(_ path: String, what: String, required: [String], lookalike: ([String: Any]) -> String?) throws -> T {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            let missing = !FileManager.default.fileExists(atPath: path)
            throw PithError(missing ? .noInput : .io, "\(path): \(missing ? "no such file" : "cannot read it (\(error.localizedDescription))")")
        }
        guard let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw PithError(.data, "\(path): not \(what): it is not a JSON object")
        }
        if let other = lookalike(object) { throw PithError(.usage, "\(path): not \(what): \(other)") }
        let absent = required.filter { object[$0] == nil }
        guard absent.isEmpty else { throw PithError(.data, "\(path): not \(what): no `\(absent[0])`") }
        let decoder = JSONDecoder()
        decoder.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        do { return try decoder.decode(T.self, from: data) } catch let DecodingError.keyNotFound(key, context) {
            throw PithError(.data, "\(path): not \(what): no `\((context.codingPath + [key]).map(\.stringValue).joined(separator: "."))`")
        } catch {
            throw PithError(.data, "\(path): not \(what): \(error)")
        }
    }
}
