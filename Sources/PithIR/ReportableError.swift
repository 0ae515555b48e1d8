/// How a failure ends a command, as `sysexits.h` classifies it. Every module's error type carries one
/// (`ReportableError`), so the command line maps any error to its exit status in one place.
public struct ExitKind: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    /// The process exit status.
    public var rawValue: Int32

    public init(rawValue: Int32) { self.rawValue = rawValue }

    /// Bad arguments, a bad recipe or a bad output path. The corresponding C constant is `EX_USAGE` (64).
    public static let usage = ExitKind(rawValue: 64)
    /// The input is malformed or inconsistent. The corresponding C constant is `EX_DATAERR` (65).
    public static let data = ExitKind(rawValue: 65)
    /// An input file does not exist or cannot be opened. The corresponding C constant is `EX_NOINPUT` (66).
    public static let noInput = ExitKind(rawValue: 66)
    /// The input is valid but uses something Pith does not support. The corresponding C constant is
    /// `EX_UNAVAILABLE` (69).
    public static let unsupported = ExitKind(rawValue: 69)
    /// The output cannot be created (it exists, or its folder is missing or not writable). The
    /// corresponding C constant is `EX_CANTCREAT` (73).
    public static let cannotCreate = ExitKind(rawValue: 73)
    /// Reading or writing failed part way. The corresponding C constant is `EX_IOERR` (74).
    public static let io = ExitKind(rawValue: 74)

    public var description: String {
        switch self {
        case .usage: return "usage"
        case .data: return "bad data"
        case .noInput: return "no input"
        case .unsupported: return "unsupported"
        case .cannotCreate: return "cannot create output"
        case .io: return "I/O error"
        default: return "exit \(rawValue)"
        }
    }
}

/// An error that knows how it ends a command. Its `description` is the whole message the user sees
/// (it names the file and the tensor, group or field); `exitKind` is the exit status.
public protocol ReportableError: Error, Sendable, CustomStringConvertible {
    var exitKind: ExitKind { get }
}
