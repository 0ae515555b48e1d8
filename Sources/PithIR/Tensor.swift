/// A named array of numbers (or strings) that belongs to a model: a weight,
/// a bias, a constant.
public struct Tensor: Sendable {
    /// The name reports and writers use. Unique within a model as importers
    /// build it: tensors inside subgraphs carry their graph path as a prefix.
    public var name: String
    public var dtype: DType
    /// Dimensions, outermost first. An empty shape is a scalar.
    public var shape: [Int]
    public var storage: TensorStorage
    /// Where the tensor came from in the source file.
    public var origin: TensorOrigin
    /// The layer or operator that reads the tensor, when the importer knows it.
    public var consumer: Consumer?

    public init(
        name: String, dtype: DType, shape: [Int], storage: TensorStorage,
        origin: TensorOrigin, consumer: Consumer? = nil
    ) {
        self.name = name
        self.dtype = dtype
        self.shape = shape
        self.storage = storage
        self.origin = origin
        self.consumer = consumer
    }

    /// Number of elements: the product of the shape.
    public var count: Int { Shape.elementCount(shape) ?? 0 }

    /// Bytes the storage occupies as held: dense bytes, string bytes, or for compressed
    /// storage its bit accounting (`storageBits`) rounded up to whole bytes.
    public var storedBytes: Int {
        switch storage {
        case .dense(let buffer): return buffer.count
        case .strings(let values): return values.reduce(0) { $0 + $1.count }
        case .sparse, .codebook, .quantized, .factored: return (storageBits.total + 7) / 8
        }
    }
}

/// How a tensor's elements are held.
public enum TensorStorage: Sendable, Equatable {
    /// Every element, in row-major order, encoded as `DType` describes.
    case dense(TensorBuffer)
    /// One byte string per element (dtype `string`).
    case strings([[UInt8]])
    /// Compressed sparse rows with relative indices; see `SparseStorage`.
    case sparse(SparseStorage)
    /// Weight sharing: indices into centroid tables; see `CodebookStorage`.
    case codebook(CodebookStorage)
    /// Linear quantization or reduced-precision floats; see `QuantizedStorage`.
    case quantized(QuantizedStorage)
    /// Factors whose product approximates the weight; see `FactoredStorage`.
    case factored(FactoredStorage)

    /// Whether the storage is one of the compressed kinds.
    public var isCompressed: Bool {
        switch self {
        case .dense, .strings: return false
        case .sparse, .codebook, .quantized, .factored: return true
        }
    }
}

/// The layer or operator a tensor feeds.
public struct Consumer: Sendable, Hashable, Codable {
    /// Operator type (`Gemm`, `Conv`) or Keras layer class (`Dense`).
    public var op: String
    /// Node or layer name; may be empty when the source gives none.
    public var name: String

    public init(op: String, name: String) {
        self.op = op
        self.name = name
    }
}

/// Where a tensor sits in its source file, so that a writer can put it back.
public enum TensorOrigin: Sendable, Hashable {
    /// `GraphProto.initializer` of the graph at `graph`.
    case initializer(graph: GraphPath)
    /// `GraphProto.sparse_initializer`, held dense in the IR.
    case sparseInitializer(graph: GraphPath)
    /// A tensor-valued attribute of a node: `Constant`'s `value` (or `value_float`,
    /// `value_ints`, …), or any other node's TENSOR/TENSORS attribute.
    case nodeAttribute(graph: GraphPath, node: String, attribute: String, index: Int)
    /// A Keras layer weight: the HDF5 dataset at `path`, listed by `layer`'s `weight_names`.
    case kerasWeight(layer: String, weight: String, path: String)
    /// Any other numeric HDF5 dataset, by path.
    case dataset(path: String)
}

/// The chain of subgraph-holding attributes leading from the main graph to a
/// subgraph, e.g. `Loop_0/body` then `If_3/then_branch`.
public struct GraphPath: Sendable, Hashable, CustomStringConvertible {
    public struct Step: Sendable, Hashable {
        /// Name of the node holding the subgraph (or its op type and index when unnamed).
        public var node: String
        /// The GRAPH or GRAPHS attribute.
        public var attribute: String
        /// Position within a GRAPHS attribute; 0 for GRAPH.
        public var index: Int

        public init(node: String, attribute: String, index: Int = 0) {
            self.node = node
            self.attribute = attribute
            self.index = index
        }
    }

    public var steps: [Step]
    /// Non-nil for a graph that is the body of a model-local function.
    public var function: String?

    public init(steps: [Step] = [], function: String? = nil) {
        self.steps = steps
        self.function = function
    }

    public static let main = GraphPath()

    public func appending(_ step: Step) -> GraphPath {
        GraphPath(steps: steps + [step], function: function)
    }

    /// `""` for the main graph, else `function:NAME/` and `node/attribute[i]/` per step,
    /// ending in a slash: the prefix of the names of tensors in that graph.
    public var description: String {
        var text = function.map { "function:\($0)/" } ?? ""
        for step in steps {
            text += step.node + "/" + step.attribute
            if step.index != 0 { text += "[\(step.index)]" }
            text += "/"
        }
        return text
    }
}

/// Shape arithmetic with overflow checks.
public enum Shape {
    /// The product of `dimensions`, or nil when a dimension is negative or the
    /// product overflows `Int`.
    public static func elementCount(_ dimensions: [Int]) -> Int? {
        var product = 1
        for dimension in dimensions {
            guard dimension >= 0 else { return nil }
            let (next, overflow) = product.multipliedReportingOverflow(by: dimension)
            guard !overflow else { return nil }
            product = next
        }
        return product
    }

    /// `[2, 3, 4]` → `"2×3×4"`; a scalar is `"scalar"`.
    public static func describe(_ dimensions: [Int]) -> String {
        dimensions.isEmpty ? "scalar" : dimensions.map(String.init).joined(separator: "×")
    }
}
