import Foundation

/// The result of running the `pith` executable.
public struct PithRun: Sendable {
    public var exitCode: Int32
    public var standardOutput: String
    public var standardError: String
}

/// Runs the built `pith` binary with `arguments` (as the end-to-end tests of
/// swift-argument-parser do). The binary is the one next to the test bundle,
/// or `$PITH_BINARY`.
public func runPith(_ arguments: [String]) throws -> PithRun {
    let process = Process()
    process.executableURL = pithBinary
    process.arguments = arguments
    let output = Pipe(), error = Pipe()
    process.standardOutput = output
    process.standardError = error
    try process.run()
    // Read both pipes fully before waiting, so a large output cannot block the child.
    let group = DispatchGroup()
    nonisolated(unsafe) var outData = Data(), errData = Data()
    group.enter()
    DispatchQueue.global().async {
        outData = output.fileHandleForReading.readDataToEndOfFile(); group.leave()
    }
    errData = error.fileHandleForReading.readDataToEndOfFile()
    group.wait()
    process.waitUntilExit()
    return PithRun(
        exitCode: process.terminationStatus,
        standardOutput: String(decoding: outData, as: UTF8.self),
        standardError: String(decoding: errData, as: UTF8.self))
}

public let pithBinary: URL = {
    if let override = ProcessInfo.processInfo.environment["PITH_BINARY"] { return URL(fileURLWithPath: override) }
    // Tests run from .build/<triple>/<config>/PithPackageTests.xctest; the binary sits beside it.
    var directory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    if directory.lastPathComponent == "MacOS" { for _ in 0..<3 { directory.deleteLastPathComponent() } }
    return directory.appendingPathComponent("pith")
}()
