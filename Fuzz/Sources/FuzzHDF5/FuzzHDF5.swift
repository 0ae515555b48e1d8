import PithFuzzSupport
import PithHDF5

/// The HDF5 / Keras reader on any bytes, from a file (libhdf5 reads paths): every value libhdf5
/// hands back must be checked before use. As in the `pith` command, the file is read first in a
/// child process (`HDF5Reader.isolatesCrashes`): libhdf5 1.10's own crashes on damaged files end
/// the child and become errors; anything that still crashes or hangs here is Pith's.
@main enum FuzzHDF5 {
    static func main() {
        HDF5Reader.isolatesCrashes = true
        detachFuzzerInChildProcesses()
        let path = scratchFolder + "/input.h5"
        runFuzzer { bytes in
            guard writeFile(path, bytes), let model = try? HDF5Reader.read(contentsOf: path) else { return }
            for tensor in model.tensors { _ = tensor.densified() }
        }
    }
}
