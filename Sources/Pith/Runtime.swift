import PithHDF5
import PithLinearAlgebra

/// Process-wide set-up for a command.
public enum Runtime {
    /// Stops the BLAS worker threads that spin idle from the moment the library loads (they restart
    /// on the first multi-threaded BLAS call), so that they do not compete with Pith's own threads.
    /// It also installs the handlers that remove a half-written output on SIGINT, SIGTERM and SIGHUP
    /// (see `AtomicFile`), and has HDF5 files read first in a child process, so that a damaged
    /// file libhdf5 crashes on is refused instead of ending the command (`HDF5Reader.isolatesCrashes`;
    /// call it while the process is still single-threaded).
    public static func start() {
        LinearAlgebra.releaseIdleThreads()
        Interruption.install()
        HDF5Reader.isolatesCrashes = true
    }
}
