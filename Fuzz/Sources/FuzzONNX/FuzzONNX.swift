import PithFuzzSupport
import PithONNX

/// The ONNX reader on any bytes, as a model held in memory (external data refused): the wire
/// scanner, protobuf-c's unpacking and every tensor's decoding must refuse bad bytes with an error.
/// The same bytes are then read as a file, where the large `raw_data` of initializers is left in the
/// mapped file (`InitializerViews` rewrites the wire bytes protobuf-c sees): a model read from memory
/// must read from the file too, with the same tensors byte for byte.
@main enum FuzzONNX {
    static func main() {
        let path = scratchFolder + "/fuzz.onnx"
        runFuzzer { bytes in
            let model = try? ONNXReader.read(bytes: bytes, name: "fuzz.onnx")
            // Every tensor the reader accepted expands to its dense form.
            for tensor in model?.tensors ?? [] { _ = tensor.densified() }
            guard writeFile(path, bytes) else { return }
            let fromFile = try? ONNXReader.read(contentsOf: path)
            guard let model else { return }  // a file may name external data beside it; memory refuses it
            guard let fromFile else { fatalError("read from memory, refused from a file") }
            guard fromFile.tensors.count == model.tensors.count else {
                fatalError("\(model.tensors.count) tensors from memory, \(fromFile.tensors.count) from a file")
            }
            for (a, b) in zip(model.tensors, fromFile.tensors) where a.name != b.name || a.shape != b.shape || a.storage != b.storage {
                fatalError("tensor `\(a.name)` differs between memory and a file")
            }
        }
    }
}
