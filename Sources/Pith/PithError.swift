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
