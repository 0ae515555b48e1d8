public import PithIR

/// Why a `.pith` container could not be read or written. Messages name the file and the header
/// field, stream or tensor, with what was expected and what was found.
public struct ContainerError: Error, Sendable, CustomStringConvertible {
    public enum Kind: Sendable, Hashable {
        case io
        /// The file does not exist.
        case missing
        /// Not a container, truncated, or inconsistent.
        case malformed
        /// A checksum does not match: the bytes were changed after writing.
        case checksum
        /// A version or encoding this Pith does not know.
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

extension ContainerError: ReportableError {
    public var exitKind: ExitKind {
        switch kind {
        case .io: return .io
        case .missing: return .noInput
        case .unsupported: return .unsupported
        case .malformed, .checksum: return .data
        }
    }
}

extension ContainerError {
    /// A container file that could not be opened or mapped: `missing` (exit 66, as for every input of
    /// every command) when it does not exist, else `io`; the message is the mapper's, naming the file.
    init(_ error: MappedFile.OpenError) {
        self.init(error.exitKind == .noInput ? .missing : .io, file: error.path, error.reason)
    }
}
