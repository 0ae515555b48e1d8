import ArgumentParser
import Foundation
import Pith

/// `--quiet` and `--progress`, shared by the commands that can run long.
struct DisplayOptions: ParsableArguments {
    @Flag(help: "Show no progress line.")
    var quiet = false

    @Flag(help: "Show the progress line even when standard error is not a terminal.")
    var progress = false
}

/// The progress line on standard error: what is being done, how much of it, and an estimate of
/// the time left, redrawn in place at most ten times a second — only for a step that has taken
/// more than a second, only on a terminal unless `--progress`, never with `--quiet`. Erased when
/// the command ends, so that its output stays as without it.
final class ProgressLine: @unchecked Sendable {
    private struct State {
        var phase = ""
        var started = 0.0
        var lastDrawn = 0.0
        var drawn = false
    }

    private let terminal: Bool
    private let forced: Bool
    private let lock = NSLock()
    nonisolated(unsafe) private var stateStorage = State()

    /// `body` on the state, under the lock.
    private func withState<R>(_ body: (inout State) -> R) -> R {
        lock.lock()
        defer { lock.unlock() }
        return body(&stateStorage)
    }
    nonisolated(unsafe) private static var current: ProgressLine?

    private init(terminal: Bool, forced: Bool) {
        self.terminal = terminal
        self.forced = forced
    }

    /// Installs the line for this command, unless `--quiet` or standard error is no terminal
    /// (and not `--progress`).
    static func install(_ options: DisplayOptions) {
        let terminal = isatty(2) != 0
        guard !options.quiet, terminal || options.progress else { return }
        let line = ProgressLine(terminal: terminal, forced: options.progress)
        current = line
        ProgressReport.install { event in line.show(event) }
    }

    /// Erases the line (on a terminal) and stops reporting.
    static func finish() {
        ProgressReport.install(nil)
        guard let line = current else { return }
        current = nil
        line.withState { state in
            if state.drawn, line.terminal { Self.write("\r\u{1B}[K") }
            state.drawn = false
        }
    }

    private static func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }

    private static func write(_ text: String) {
        var bytes = Array(text.utf8)
        bytes.withUnsafeMutableBytes { try? FileIO.write(2, UnsafeRawBufferPointer($0)) }
    }

    private func show(_ event: ProgressReport.Event) {
        let now = Self.now()
        withState { state in
            if event.phase != state.phase {
                state.phase = event.phase
                state.started = now
                state.lastDrawn = 0
            }
            let elapsed = now - state.started
            let finished = event.total > 0 && event.done >= event.total
            guard forced || elapsed >= 1 else { return }
            guard finished || now - state.lastDrawn >= (terminal ? 0.1 : 1) else { return }
            state.lastDrawn = now
            var text = "\(event.phase): \(event.done)"
            if event.total > 0 {
                text += "/\(event.total) \(event.unit) (\(Int(100 * Double(event.done) / Double(event.total)))%)"
                if event.done > 0, !finished {
                    let left = elapsed / Double(event.done) * Double(event.total - event.done)
                    text += String(format: ", about %.0f s left", left.rounded(.up))
                }
            } else {
                text += " \(event.unit)"
            }
            text += String(format: ", %.1f s", elapsed)
            Self.write(terminal ? "\r\(text)\u{1B}[K" : text + "\n")
            state.drawn = true
        }
    }
}
