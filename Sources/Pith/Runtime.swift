import PithLinearAlgebra

/// Process-wide set-up for a command.
public enum Runtime {
    /// Stops the BLAS worker threads that spin idle from the moment the library loads (they restart
    /// on the first multi-threaded BLAS call), so that they do not compete with Pith's own threads.
    /// It also installs the handlers that remove a half-written output on SIGINT, SIGTERM and SIGHUP
    /// (see `AtomicFile`).
    public static func start() {
        LinearAlgebra.releaseIdleThreads()
        Interruption.install()
    }
}
