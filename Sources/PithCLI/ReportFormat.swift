import ArgumentParser

/// `--format` of every command that prints a report.
enum ReportFormat: String, ExpressibleByArgument, CaseIterable {
    case text, json, csv

    /// Refuses a format the command does not print.
    func check(allowed: [ReportFormat]) throws {
        guard allowed.contains(self) else {
            throw ValidationError("--format must be \(allowed.map(\.rawValue).joined(separator: " or ")), not \(rawValue)")
        }
    }
}
