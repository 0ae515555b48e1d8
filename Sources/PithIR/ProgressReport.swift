import Synchronization

/// Progress of the library's long steps (tensors compressed, layers calibrated, batches evaluated,
/// tensors written), for a front end to show. The library reports; nothing is shown unless a
/// handler is installed (`pith` installs one that draws a line on standard error when it is a
/// terminal). Reports are cheap and may come from any thread.
public enum ProgressReport {
    public struct Event: Sendable {
        /// What is being done: `compress`, `calibrate`, `eval`, `restore`, …
        public var phase: String
        public var done: Int
        public var total: Int
        /// What is counted: `tensors`, `layers`, `samples`, …
        public var unit: String
    }

    private static let installed = Mutex<(@Sendable (Event) -> Void)?>(nil)

    /// Installs `handler` (nil removes it). Set it before the work starts.
    public static func install(_ handler: (@Sendable (Event) -> Void)?) {
        installed.withLock { $0 = handler }
    }

    /// Reports that `done` of `total` `unit` of `phase` are finished.
    public static func report(_ phase: String, done: Int, total: Int, unit: String) {
        guard let handler = installed.withLock({ $0 }) else { return }
        handler(Event(phase: phase, done: done, total: total, unit: unit))
    }

    /// A counter for work done in parallel: each `advance` reports one more of `total`.
    public final class Counter: Sendable {
        private let phase: String, total: Int, unit: String
        private let done = Atomic<Int>(0)

        public init(_ phase: String, total: Int, unit: String) {
            self.phase = phase
            self.total = total
            self.unit = unit
        }

        public func advance(by count: Int = 1) {
            let now = done.add(count, ordering: .relaxed).newValue
            ProgressReport.report(phase, done: now, total: total, unit: unit)
        }
    }
}
