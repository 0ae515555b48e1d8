import Glibc
import Pith
import PithContainer
import PithFuzzSupport
import PithHDF5

/// The container reader, and restore from it, on any bytes. Each input is read as it is (which
/// mostly exercises the header and checksum checks), then with its checksums made valid
/// (`ContainerFixup`); a container that opens is decoded whole (as `inspect` does), read for
/// evaluation (the ONNX graph rebuilt from the skeleton) and restored to its source format in each
/// form (dense, factored, compact), from a file in a scratch folder. A container in the whole-file
/// form (1.5; 1.6's `onnx-skeleton-1` frame packed into its ONNX source again) is decoded as it is,
/// then with its checksum made valid, and the model it holds read
/// and restored as every command reads it — an HDF5 file, as in the `pith` command, first in a child
/// process (`HDF5Reader.isolatesCrashes`), so that libhdf5's own crashes on damaged files become
/// errors. Nothing may crash or trap; a restore that fails must leave no output.
@main enum FuzzContainer {
    static func main() {
        HDF5Reader.isolatesCrashes = true
        detachFuzzerInChildProcesses()
        let input = scratchFolder + "/input.pith", output = scratchFolder + "/restored"
        runFuzzer { bytes in
            if WholeFileContainer.hasForm(bytes) {
                _ = try? WholeFileContainer.decodeSource(bytes, file: "fuzz.pith")
                guard let fixed = WholeFileContainer.withSourceChecksumFixed(Array(bytes)), fixed.withUnsafeBytes({ writeFile(input, $0) }) else { return }
                _ = try? Inspection.run(input)
                _ = try? ModelFile.loadForEvaluation(input)
                for form in [Restoration.Form.dense, .compact] {
                    unlink(output)
                    if (try? Restoration.run(input, to: output, force: true, form: form)) == nil, access(output, F_OK) == 0 {
                        fatalError("a failed restore (\(form)) of a whole-file container left \(output) behind")
                    }
                }
                return
            }
            _ = try? ContainerReader.read(bytes: bytes, file: "fuzz.pith")
            let fixed = ContainerFixup.fixed(bytes)
            guard (try? fixed.withUnsafeBytes({ try ContainerReader.read(bytes: $0, file: "fuzz.pith") })) != nil,
                fixed.withUnsafeBytes({ writeFile(input, $0) })
            else { return }
            _ = try? ModelFile.loadForEvaluation(input)
            for form in [Restoration.Form.dense, .factored, .compact] {
                unlink(output)
                if (try? Restoration.run(input, to: output, force: true, form: form)) == nil, access(output, F_OK) == 0 {
                    fatalError("a failed restore (\(form)) left \(output) behind")
                }
            }
        }
    }
}
