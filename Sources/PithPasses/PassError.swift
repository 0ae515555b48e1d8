public import PithIR

/// Why a pass or recipe could not run. Messages name the tensor, pass or recipe field.
public struct PassError: Error, Sendable, CustomStringConvertible {
    public enum Kind: Sendable, Hashable {
        /// The recipe or options are inconsistent (bad value, two actions in one step).
        case invalidRecipe
        /// The pass cannot apply to a tensor it was asked to change.
        case notApplicable
        /// The work would be too large (e.g. the exact k-means optimum of a huge tensor).
        case tooExpensive
    }

    public var kind: Kind
    public var message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { message }
}

extension PassError: ReportableError {
    public var exitKind: ExitKind {
        switch kind {
        case .invalidRecipe: return .usage
        case .tooExpensive: return .unsupported
        case .notApplicable: return .data
        }
    }
}
