/// The large `raw_data` of a model's initializers, left in the mapped file instead of copied.
///
/// protobuf-c copies every `bytes` field when it unpacks a message, so a model read the plain way is
/// held twice (the mapped file and the unpacked message) and, once its tensors are copied out, three
/// times. Most of a real model's bytes are the `raw_data` of its main graph's initializers
/// (`ModelProto.graph` = 7 → `GraphProto.initializer` = 5 → `TensorProto.raw_data` = 9). This walks
/// the wire format once, records where each such field's bytes lie in the file, and builds the
/// model's wire bytes without those fields (the lengths of the enclosing tensor and graph messages
/// re-encoded), which protobuf-c then unpacks: the tensors it finds without `raw_data` are read as
/// views of the file at the recorded ranges.
///
/// Only what is unambiguous is taken out: a model whose `graph` field occurs more than once
/// (protobuf merges the occurrences) is left whole, and so is a tensor whose `raw_data` occurs more
/// than once (the last one wins) or is below `minimumBytes`. The bytes must have passed
/// `WireScanner` (every length within its message).
struct InitializerViews {
    /// For each initializer of the main graph, in order: where its `raw_data` lies in the file, or
    /// nil when the field was left in the message.
    var ranges: [Range<Int>?]
    /// The model's wire bytes without the recorded fields.
    var stripped: [UInt8]

    /// Tensors with less raw data than this stay in the message: copying them costs little.
    static let minimumBytes = 4096

    /// Nil when there is nothing to take out.
    init?(_ bytes: UnsafeRawBufferPointer, minimumBytes: Int = InitializerViews.minimumBytes) {
        let wire = WireScanner(bytes: bytes)
        let modelFields = wire.fields(in: 0..<bytes.count)
        let graphs = modelFields.filter { $0.number == 7 && $0.wireType == 2 }
        guard graphs.count == 1, let graph = graphs.first else { return nil }
        var ranges: [Range<Int>?] = []
        var tensors: [(field: WireScanner.Field, content: [UInt8])] = []  // initializers that lose their raw_data
        for field in wire.fields(in: graph.content) where field.number == 5 && field.wireType == 2 {
            let data = wire.fields(in: field.content).filter { $0.number == 9 && $0.wireType == 2 }
            guard data.count == 1, let raw = data.first, raw.content.count >= minimumBytes else {
                ranges.append(nil)
                continue
            }
            ranges.append(raw.content)
            var content: [UInt8] = []
            content.reserveCapacity(field.content.count - raw.whole.count)
            content += bytes[field.content.lowerBound..<raw.whole.lowerBound]
            content += bytes[raw.whole.upperBound..<field.content.upperBound]
            tensors.append((field, content))
        }
        guard !tensors.isEmpty else { return nil }

        // The graph's content with each of those initializers re-encoded, the rest copied as it was.
        var graphContent: [UInt8] = []
        var position = graph.content.lowerBound
        for (field, content) in tensors {
            graphContent += bytes[position..<field.whole.lowerBound]
            graphContent += bytes[field.whole.lowerBound..<field.lengthStart]  // the key, as it was
            WireScanner.appendVarint(UInt64(content.count), to: &graphContent)
            graphContent += content
            position = field.whole.upperBound
        }
        graphContent += bytes[position..<graph.content.upperBound]

        var stripped: [UInt8] = []
        stripped.reserveCapacity(bytes.count - graph.content.count + graphContent.count)
        stripped += bytes[0..<graph.lengthStart]
        WireScanner.appendVarint(UInt64(graphContent.count), to: &stripped)
        stripped += graphContent
        stripped += bytes[graph.whole.upperBound...]
        self.ranges = ranges
        self.stripped = stripped
    }
}
