/// The file format a model was read from.
public enum SourceFormat: String, Sendable, Codable, CaseIterable {
    case onnx
    /// Keras 2 `.h5` (full model or weights only): `layer_names` / `weight_names` attributes, `:0` suffixes.
    case keras2 = "keras2-h5"
    /// Keras 3 `model.save("x.h5")`: the legacy layout without `:0` suffixes.
    case keras3Legacy = "keras3-legacy-h5"
    /// Keras 3 `.weights.h5`: `layers/<name>/vars/<i>`.
    case keras3Weights = "keras3-weights-h5"
    /// An HDF5 file with no Keras structure: every numeric dataset is a tensor.
    case hdf5
}

/// Descriptive fields of a model file.
public struct ModelMetadata: Sendable, Hashable {
    public struct OperatorSet: Sendable, Hashable {
        public var domain: String
        public var version: Int64
        public init(domain: String, version: Int64) {
            self.domain = domain
            self.version = version
        }
    }

    public var producerName: String = ""
    public var producerVersion: String = ""
    /// ONNX IR version; 0 when not ONNX.
    public var irVersion: Int64 = 0
    public var opsets: [OperatorSet] = []
    public var domain: String = ""
    public var modelVersion: Int64 = 0
    public var docString: String = ""
    /// ONNX `metadata_props`; for Keras files, root attributes such as `keras_version` and `backend`.
    public var properties: [(key: String, value: String)] = []

    public init() {}

    public static func == (lhs: ModelMetadata, rhs: ModelMetadata) -> Bool {
        lhs.producerName == rhs.producerName && lhs.producerVersion == rhs.producerVersion
            && lhs.irVersion == rhs.irVersion && lhs.opsets == rhs.opsets && lhs.domain == rhs.domain
            && lhs.modelVersion == rhs.modelVersion && lhs.docString == rhs.docString
            && lhs.properties.elementsEqual(rhs.properties) { $0 == $1 }
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(producerName)
        hasher.combine(producerVersion)
        hasher.combine(irVersion)
        hasher.combine(opsets)
        for (key, value) in properties {
            hasher.combine(key)
            hasher.combine(value)
        }
    }
}

/// A model-local ONNX function (`ModelProto.functions`).
public struct Function: Sendable {
    public var name: String
    public var domain: String
    public var inputs: [String]
    public var outputs: [String]
    public var attributeNames: [String]
    public var body: Graph
    public var opsets: [ModelMetadata.OperatorSet]

    public init(
        name: String, domain: String, inputs: [String], outputs: [String], attributeNames: [String],
        body: Graph, opsets: [ModelMetadata.OperatorSet]
    ) {
        self.name = name
        self.domain = domain
        self.inputs = inputs
        self.outputs = outputs
        self.attributeNames = attributeNames
        self.body = body
        self.opsets = opsets
    }
}

/// Shape and type of a tensor whose data was not loaded.
public struct TensorInfo: Sendable, Hashable {
    public var name: String
    public var dtype: DType
    public var shape: [Int]

    public init(name: String, dtype: DType, shape: [Int]) {
        self.name = name
        self.dtype = dtype
        self.shape = shape
    }

    public var count: Int { Shape.elementCount(shape) ?? 0 }
    public var bytes: Int { dtype.storageBytes(count: count) ?? 0 }
}

/// A trained model: its tensors plus the graph or layer configuration they belong to.
public struct Model: Sendable {
    public var format: SourceFormat
    public var metadata: ModelMetadata
    /// Every weight and constant, in the order the source file lists them.
    public var tensors: [Tensor]
    /// The computation graph (ONNX). Nil for Keras and plain HDF5 files.
    public var graph: Graph?
    /// Model-local functions (ONNX).
    public var functions: [Function]
    /// The model configuration as JSON text (Keras `model_config`), when the file has one.
    public var configuration: String?
    /// Optimizer state described without its data, never counted as model weights. The HDF5 reader
    /// loads optimizer state as tensors instead (`Tensor.isOptimizerState`, kept exactly);
    /// `separatingOptimizerState()` moves those here for reports.
    public var optimizerState: [TensorInfo]

    public init(
        format: SourceFormat, metadata: ModelMetadata = ModelMetadata(), tensors: [Tensor],
        graph: Graph? = nil, functions: [Function] = [], configuration: String? = nil,
        optimizerState: [TensorInfo] = []
    ) {
        self.format = format
        self.metadata = metadata
        self.tensors = tensors
        self.graph = graph
        self.functions = functions
        self.configuration = configuration
        self.optimizerState = optimizerState
    }
}
