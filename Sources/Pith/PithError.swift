import PithInspect

/// An error from the umbrella's pipelines, classified for the command line by its `kind`
/// (see `ExitKind`; sysexits.h).
public struct PithError: ReportableError {
    public typealias Kind = ExitKind

    public var kind: Kind
    public var message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { message }
    public var exitKind: ExitKind { kind }
    public var exitCode: Int32 { kind.rawValue }
}

extension PithError {
    /// A format module's error as a `PithError`: I/O stays I/O, unsupported features exit 69, the rest is bad data.
    /// Other errors pass through unchanged.
    static func translating(_ error: any Error) -> any Error {
        guard let error = error as? any ReportableError, !(error is PithError) else { return error }
        return PithError(error.exitKind, error.description)
    }

    /// Runs `body`, translating format errors (see `translating`).
    static func translatingErrors<T>(_ body: () throws -> T) throws -> T {
        do { return try body() } catch { throw translating(error) }
    }
}

extension PithError {
    /// Longest run of non-blank characters an error message prints whole.
    public static let wordLimit = 1024

    /// `message` with every run of non-blank characters longer than `wordLimit` (a tensor or layer
    /// name of a million characters, which a hostile file may hold) cut to its start and end
    /// around `…`, as report tables bound their cells: an error stays a line, whatever the file says.
    public static func bounded(_ message: String) -> String {
        guard message.count > wordLimit else { return message }
        var result = "", word = ""
        func flush() {
            result += TextTable.bounded(word, limit: wordLimit)
            word = ""
        }
        for character in message {
            if character.isWhitespace {
                flush()
                result.append(character)
            } else {
                word.append(character)
            }
        }
        flush()
        return result
    }
}
