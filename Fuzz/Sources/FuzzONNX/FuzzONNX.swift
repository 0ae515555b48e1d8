import PithFuzzSupport
import PithONNX

/// The ONNX reader on any bytes, as a model held in memory (external data refused): the wire
/// scanner, protobuf-c's unpacking and every tensor's decoding must refuse bad bytes with an error.
@main enum FuzzONNX {
    static func main() {
        runFuzzer { bytes in
            guard let model = try? ONNXReader.read(bytes: bytes, name: "fuzz.onnx") else { return }
            // Every tensor the reader accepted expands to its dense form.
            for tensor in model.tensors { _ = tensor.densified() }
        }
    }
}
