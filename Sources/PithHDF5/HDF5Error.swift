public import PithIR

/// Why an HDF5 (Keras) file could not be read. The message names the file and
/// the group, dataset or attribute, with what was expected and what was found.
public struct HDF5Error: Error, Sendable, CustomStringConvertible {
    public enum Kind: Sendable, Hashable {
        /// The file could not be opened or read.
        case io
        /// The file is not valid HDF5, or its Keras structure is inconsistent
        /// (a listed layer or weight is missing, a size cannot be justified).
        case malformed
        /// Valid HDF5 that uses something Pith does not support.
        case unsupported
    }

    public var kind: Kind
    public var file: String
    public var message: String

    public init(_ kind: Kind, file: String, _ message: String) {
        self.kind = kind
        self.file = file
        self.message = message
    }

    public var description: String { "\(file): \(message)" }
}

extension HDF5Error: ReportableError {
    public var exitKind: ExitKind {
        switch kind {
        case .io: return .io
        case .unsupported: return .unsupported
        case .malformed: return .data
        }
    }
}
