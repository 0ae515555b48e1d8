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

import PithONNX
import PithHDF5
import PithContainer
import PithEval

extension PithError {
    /// A format module's error as a `PithError`: I/O stays I/O, unsupported features exit 69, the rest is bad data.
    /// Other errors pass through unchanged.
    static func translating(_ error: any Error) -> any Error {
        switch error {
        case let e as ONNXError: return PithError(e.kind == .io ? .io : (e.kind == .unsupported ? .unsupported : .data), e.description)
        case let e as HDF5Error: return PithError(e.kind == .io ? .io : (e.kind == .unsupported ? .unsupported : .data), e.description)
        case let e as ContainerError: return PithError(e.kind == .io ? .io : (e.kind == .unsupported ? .unsupported : .data), e.description)
        case let e as EvalError: return PithError(e.kind == .invalid ? .data : .unsupported, e.description)
        case let e as DataFileError: return PithError(.data, e.description)
        default: return error
        }
    }

    /// Runs `body`, translating format errors (see `translating`).
    static func translatingErrors<T>(_ body: () throws -> T) throws -> T {
        do { return try body() } catch { throw translating(error) }
    }
}
