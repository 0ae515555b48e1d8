import PithIR

/// What a file that is not the expected kind looks like, from its first bytes: so that a message
/// can say "a NumPy array (.npy)" instead of the parser's view of it ("ModelProto field 13: invalid
/// wire type 4 at byte 2"). Only consulted after a file fails to read, so a valid model is never
/// refused for resembling something else.
enum FileSniffing {
    /// A phrase that completes "it looks like …", with advice where there is one; nil when the
    /// bytes resemble nothing recognised.
    static func lookalike(_ bytes: UnsafeRawBufferPointer) -> String? {
        let head = Array(bytes.prefix(512))
        func starts(_ prefix: [UInt8], at offset: Int = 0) -> Bool {
            head.count >= offset + prefix.count && Array(head[offset..<(offset + prefix.count)]) == prefix
        }
        if head.isEmpty { return "an empty file" }
        if starts([0x93] + Array("NUMPY".utf8)) { return "a NumPy array (.npy); arrays are given with --data" }
        if starts(Array("PK".utf8) + [3, 4]) { return zipLookalike(head) }
        if starts(Array("GGUF".utf8)) { return "a GGUF file (llama.cpp); Pith reads ONNX and Keras HDF5 models" }
        if starts(Array("TFL3".utf8), at: 4) { return "a TensorFlow Lite model; convert it to ONNX first (tf2onnx reads .tflite)" }
        if starts([0x1F, 0x8B]) { return "a gzip-compressed file; decompress it first (gunzip)" }
        if starts([0x28, 0xB5, 0x2F, 0xFD]) { return "a zstd-compressed file; decompress it first (zstd -d)" }
        if starts([0xFD] + Array("7zXZ".utf8) + [0]) { return "an xz-compressed file; decompress it first (xz -d)" }
        if starts([0x80]) && head.count > 1 && (2...5).contains(head[1]) {
            return "a Python pickle (an older PyTorch .pt / .pth checkpoint?); export the model to ONNX first (torch.onnx.export)"
        }
        if head.count > 9, head[8] == UInt8(ascii: "{"), head[9] == UInt8(ascii: "\"") {
            // safetensors: an 8-byte little-endian header length, then the JSON header.
            var length: UInt64 = 0
            for k in 0..<8 { length |= UInt64(head[k]) << (8 * UInt64(k)) }
            if length > 1 && length < UInt64(bytes.count) {
                return "a safetensors file: it holds tensors without a graph; Pith reads ONNX and Keras HDF5 models"
            }
        }
        if let text = textLookalike(head) { return text }
        return nil
    }

    /// A zip archive: a Keras 3 `.keras` file, an `.npz`, a PyTorch checkpoint, or another archive.
    private static func zipLookalike(_ head: [UInt8]) -> String {
        // The first local file header: name length at byte 26, the name from byte 30.
        var name = ""
        if head.count >= 30 {
            let length = Int(head[26]) | Int(head[27]) << 8
            let end = min(head.count, 30 + length)
            name = String(decoding: head[30..<end], as: UTF8.self)
        }
        if name.hasSuffix(".npy") { return "a NumPy archive (.npz) of arrays; arrays are given with --data" }
        if name == "metadata.json" || name == "config.json" || name.hasSuffix(".weights.h5") {
            return "a Keras 3 `.keras` archive (a zip); unzip it and give its `model.weights.h5`, or save the model with model.save(\"model.h5\")"
        }
        if name.hasSuffix("data.pkl") || name.contains("/data/") || name.hasSuffix("/version") {
            return "a PyTorch checkpoint (a zip); export the model to ONNX first (torch.onnx.export)"
        }
        return "a zip archive" + (name.isEmpty ? "" : " (its first member is `\(bounded(name))`)") + "; give the model file inside it"
    }

    /// Text: the first bytes are printable UTF-8 (with tabs and line breaks).
    private static func textLookalike(_ head: [UInt8]) -> String? {
        // Cut at a character boundary so that a multi-byte character split by the 512-byte window
        // does not read as binary.
        var end = head.count
        while end > 0 && end > head.count - 4 && head[end - 1] & 0xC0 == 0x80 { end -= 1 }
        if end > 0 && end < head.count && head[end - 1] >= 0xC0 { end -= 1 }
        let sample = Array(head[..<end])
        guard !sample.isEmpty, String(validating: sample, as: UTF8.self) != nil else { return nil }
        guard sample.allSatisfy({ $0 >= 0x20 || $0 == 0x09 || $0 == 0x0A || $0 == 0x0D }) else { return nil }
        let firstLine = String(decoding: sample.prefix { $0 != 0x0A && $0 != 0x0D }, as: UTF8.self)
        let trimmed = firstLine.drop { $0 == " " || $0 == "\t" }
        let begins = "(it begins `\(bounded(firstLine))`)"
        if trimmed.hasPrefix("ir_version") {
            return "an ONNX model in protobuf text format \(begins); Pith reads the binary form: parse it with onnx.parser or text_format and onnx.save it"
        }
        let kind = trimmed.hasPrefix("{") || trimmed.hasPrefix("[") ? "a JSON file" : trimmed.hasPrefix("<") ? "an XML or HTML file" : "a text file"
        return "\(kind) \(begins), not a binary model file"
    }

    /// At most 40 characters of `text`, with an ellipsis in the middle when it is longer.
    static func bounded(_ text: String) -> String {
        guard text.count > 40 else { return text }
        return "\(text.prefix(24))…\(text.suffix(15))"
    }
}
