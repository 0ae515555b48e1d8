/// An error from any layer of Pith, classified for the command line.
///
/// Exit codes follow `sysexits.h`, mapped in one place (`exitCode`).
public struct PithError: Error, Sendable, CustomStringConvertible {
    public enum Kind: Sendable {
        /// Bad arguments. Exit 64 (`EX_USAGE`).
        case usage
        /// The input is malformed or inconsistent. Exit 65 (`EX_DATAERR`).
        case data
        /// The input file does not exist. Exit 66 (`EX_NOINPUT`).
        case noInput
        /// The input is valid but uses something Pith does not support. Exit 69 (`EX_UNAVAILABLE`).
        case unsupported
        /// Reading or writing failed. Exit 74 (`EX_IOERR`).
        case io
        /// The output cannot be created (it exists, or the folder is not writable). Exit 73 (`EX_CANTCREAT`).
        case cannotCreate
    }

    public var kind: Kind
    public var message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { message }

    public var exitCode: Int32 {
        switch kind {
        case .usage: return 64
        case .data: return 65
        case .noInput: return 66
        case .unsupported: return 69
        case .io: return 74
        case .cannotCreate: return 73
        }
    }
}
