import Glibc

/// libFuzzer's entry point for programs with their own `main` (from `libclang_rt.fuzzer_no_main`):
/// parses libFuzzer's flags from `argv` and calls `callback` with each input.
@_silgen_name("LLVMFuzzerRunDriver")
private func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
) -> CInt

/// The one input being run, for the C callback (which cannot capture a Swift closure).
nonisolated(unsafe) private var currentTarget: (UnsafeRawBufferPointer) -> Void = { _ in }

/// Runs libFuzzer with `target` as the function under test and exits with libFuzzer's status.
/// A target must not crash, trap or hang on any input; thrown errors are its normal way to refuse.
public func runFuzzer(_ target: @escaping (UnsafeRawBufferPointer) -> Void) -> Never {
    currentTarget = target
    var argc = CommandLine.argc
    var argv = CommandLine.unsafeArgv
    let status = LLVMFuzzerRunDriver(&argc, &argv) { data, size in
        currentTarget(UnsafeRawBufferPointer(start: data, count: size))
        return 0
    }
    exit(status)
}

@_silgen_name("__sanitizer_set_death_callback")
private func sanitizerSetDeathCallback(_ callback: (@convention(c) () -> Void)?)

/// Makes child processes the code under test forks (the HDF5 reader's probe) die without telling
/// libFuzzer: what kills them — an AddressSanitizer report, a signal — is the product's to contain,
/// and libFuzzer's death callback, inherited by the child, would report it as the target's crash.
public func detachFuzzerInChildProcesses() {
    pthread_atfork(nil, nil) { sanitizerSetDeathCallback(nil) }
}
