/// Index of a tensor in `Model.tensors`.
public typealias TensorID = Int

/// A computation graph: ONNX's `GraphProto`, held with enough detail to
/// evaluate the model and to write it back out.
///
/// Tensors are not stored here but referenced by `TensorID`, so a pass that
/// rewrites `Model.tensors` needs no graph surgery.
public struct Graph: Sendable {
    public var name: String
    public var nodes: [Node]
    public var inputs: [ValueInfo]
    public var outputs: [ValueInfo]
    /// Shape and type annotations of intermediate values.
    public var valueInfo: [ValueInfo]
    public var initializers: [TensorID]
    public var sparseInitializers: [TensorID]
    public var docString: String

    public init(
        name: String = "", nodes: [Node] = [], inputs: [ValueInfo] = [], outputs: [ValueInfo] = [],
        valueInfo: [ValueInfo] = [], initializers: [TensorID] = [], sparseInitializers: [TensorID] = [],
        docString: String = ""
    ) {
        self.name = name
        self.nodes = nodes
        self.inputs = inputs
        self.outputs = outputs
        self.valueInfo = valueInfo
        self.initializers = initializers
        self.sparseInitializers = sparseInitializers
        self.docString = docString
    }
}

/// One operator application.
public struct Node: Sendable {
    public var name: String
    public var opType: String
    /// Operator domain; empty is the default ONNX domain.
    public var domain: String
    /// Input value names; an empty string is an omitted optional input.
    public var inputs: [String]
    public var outputs: [String]
    public var attributes: [Attribute]
    public var docString: String

    public init(
        name: String, opType: String, domain: String = "", inputs: [String], outputs: [String],
        attributes: [Attribute] = [], docString: String = ""
    ) {
        self.name = name
        self.opType = opType
        self.domain = domain
        self.inputs = inputs
        self.outputs = outputs
        self.attributes = attributes
        self.docString = docString
    }

    /// The attribute called `name`, if present.
    public func attribute(_ name: String) -> AttributeValue? {
        attributes.first { $0.name == name }?.value
    }
}

/// A named operator attribute.
public struct Attribute: Sendable {
    public var name: String
    public var value: AttributeValue
    /// For attributes inside a function body: the function attribute this one refers to.
    public var referencedAttribute: String?
    public var docString: String

    public init(name: String, value: AttributeValue, referencedAttribute: String? = nil, docString: String = "") {
        self.name = name
        self.value = value
        self.referencedAttribute = referencedAttribute
        self.docString = docString
    }
}

/// The value of an attribute. Tensors are held in `Model.tensors` and referenced by id.
public indirect enum AttributeValue: Sendable {
    case float(Float)
    case int(Int64)
    case string([UInt8])
    case tensor(TensorID)
    case sparseTensor(TensorID)
    case graph(Graph)
    case floats([Float])
    case ints([Int64])
    case strings([[UInt8]])
    case tensors([TensorID])
    case sparseTensors([TensorID])
    case graphs([Graph])
    /// An attribute kind the IR does not model (type protos), kept as its
    /// encoded bytes in the source format so that it can be written back.
    case opaque(kind: String, encoded: [UInt8])
}

/// A named value with its element type and shape, as far as they are known.
public struct ValueInfo: Sendable, Hashable {
    public enum Dimension: Sendable, Hashable {
        case fixed(Int)
        case symbolic(String)
        case unknown
    }

    public var name: String
    /// Element type for tensor values; nil when unknown, not a tensor, or of a type the IR lacks.
    public var dtype: DType?
    /// Dimensions; nil when the rank is unknown.
    public var shape: [Dimension]?
    public var docString: String

    public init(name: String, dtype: DType? = nil, shape: [Dimension]? = nil, docString: String = "") {
        self.name = name
        self.dtype = dtype
        self.shape = shape
        self.docString = docString
    }
}
