public import PithIR

/// Why an ONNX file could not be read.
///
/// The message names the file and, where there is one, the tensor or field,
/// with what was expected and what was found.
public struct ONNXError: Error, Sendable, CustomStringConvertible {
    public enum Kind: Sendable, Hashable {
        /// The file could not be opened or read.
        case io
        /// The bytes are not a well-formed ONNX protobuf message.
        case malformed
        /// A tensor's fields contradict each other (sizes, types).
        case invalidTensor
        /// External data is missing, too short, or points outside the model's folder.
        case externalData
        /// Valid ONNX that uses something Pith does not support.
        case unsupported
    }

    public var kind: Kind
    /// The file the error is about.
    public var file: String
    public var message: String

    public init(_ kind: Kind, file: String, _ message: String) {
        self.kind = kind
        self.file = file
        self.message = message
    }

    public var description: String { "\(file): \(message)" }
}

extension ONNXError: ReportableError {
    public var exitKind: ExitKind {
        switch kind {
        case .io: return .io
        case .unsupported: return .unsupported
        case .malformed, .invalidTensor, .externalData: return .data
        }
    }
}
