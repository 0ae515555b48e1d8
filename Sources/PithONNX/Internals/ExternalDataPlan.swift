internal import CONNXProto

/// Where each externally stored tensor of a model being written goes: which data file, at which
/// offset. The writer asks `place` for every `TensorProto` slot it fills; `finish` then checks the
/// files' layouts and gives their sizes.
///
/// The `external_data` entries of a skeleton come from a container, so they are taken as hostile:
/// a location must pass `ONNXWriter.problem(withDataLocation:)` and not name the model itself;
/// `offset` and `length` must be decimal integers, `length` the tensor's byte count; two tensors of
/// one file may share the very same bytes (tied weights) but not overlap otherwise; and a file may
/// hold at most `maximumGap` bytes of padding before each of its tensors (ONNX's own writer pads at
/// most 64 KiB for alignment), so that no container can make restore write a file far larger than
/// its tensors.
final class ExternalDataPlan {
    /// Which tensors go to data files: the source's external tensors (and, with `overflow`, every
    /// inline tensor of at least the threshold into that file), or every tensor of at least the
    /// threshold into one file.
    enum Layout {
        case source(overflow: String?)
        case oneFile(String)
    }

    /// Padding allowed before each tensor of a data file.
    static let maximumGap = 64 * 1024

    struct Placement {
        /// Index into `locations`.
        var file: Int
        var offset: Int
        /// The entries to write in place of the skeleton's (nil: keep the skeleton's).
        var entries: [(String, String)]?
    }

    let layout: Layout
    let modelName: String
    /// Names the container in messages.
    let file: String
    /// The data files, normalised, in the order they were first named.
    private(set) var locations: [String] = []
    private var fileIndex: [String: Int] = [:]
    /// Per file: every tensor's range.
    private var ranges: [[(offset: Int, bytes: Int, tensor: String)]] = []
    /// Per file: where the next appended tensor goes.
    private var ends: [Int] = []

    init(layout: Layout, modelName: String, file: String) {
        self.layout = layout
        self.modelName = ONNXWriter.normalized(dataLocation: modelName)
        self.file = file
    }

    private func fail(_ tensor: String, _ message: String) -> ONNXError {
        ExternalDataEntries.failure(tensor, file: file, message)
    }

    private func index(of location: String, tensor: String) throws -> Int {
        if let problem = ONNXWriter.problem(withDataLocation: location) {
            throw fail(tensor, "location `\(location)` \(problem)")
        }
        let name = ONNXWriter.normalized(dataLocation: location)
        guard name != modelName else { throw fail(tensor, "location `\(location)` is the restored model's own file") }
        if let index = fileIndex[name] { return index }
        locations.append(name)
        ranges.append([])
        ends.append(0)
        fileIndex[name] = locations.count - 1
        return locations.count - 1
    }

    /// Where the data of `proto` (tensor `name`, `bytes` bytes, not a string tensor) goes, or nil
    /// for inline.
    func place(_ proto: UnsafeMutablePointer<Onnx__TensorProto>, name: String, bytes: Int) throws -> Placement? {
        let p = proto.pointee
        // In a skeleton, entries mark a tensor the source stored outside the model (`ONNXSkeleton`).
        let external = p.n_external_data > 0
        switch layout {
        case .source(let overflow):
            if external {
                let entries = messages(p.n_external_data, p.external_data).map { (string($0.pointee.key), string($0.pointee.value)) }
                return try sourcePlacement(entries, name: name, bytes: bytes)
            }
            guard let overflow, bytes >= ONNXWriter.externalThreshold else { return nil }
            return try append(name: name, bytes: bytes, to: overflow)
        case .oneFile(let location):
            guard bytes >= ONNXWriter.externalThreshold else { return nil }
            return try append(name: name, bytes: bytes, to: location)
        }
    }

    /// Where a tensor the source stored at `entries` goes: the same file and offset, checked.
    func sourcePlacement(_ entries: [(String, String)], name: String, bytes: Int) throws -> Placement {
        let placed = try ExternalDataEntries(entries, tensor: name, file: file)
        let (location, offset, length) = (placed.location, placed.offset, placed.length)
        guard let location else { throw fail(name, "has no `location`") }
        if let length, length != bytes {
            throw fail(name, "`length` is \(length) bytes, but the container's tensor has \(bytes)")
        }
        guard !offset.addingReportingOverflow(bytes).overflow else { throw fail(name, "offset \(offset) is too large") }
        let index = try index(of: location, tensor: name)
        ranges[index].append((offset, bytes, name))
        ends[index] = max(ends[index], offset + bytes)
        return Placement(file: index, offset: offset, entries: nil)
    }

    private func append(name: String, bytes: Int, to location: String) throws -> Placement {
        let index = try index(of: location, tensor: name)
        let offset = ends[index]
        ranges[index].append((offset, bytes, name))
        ends[index] = offset + bytes
        return Placement(
            file: index, offset: offset,
            entries: [("location", locations[index]), ("offset", String(offset)), ("length", String(bytes))])
    }

    /// Checks every file's layout (no partial overlaps, no gap over `maximumGap`) and returns
    /// each file's size, in `locations` order.
    func finish() throws -> [Int] {
        var sizes: [Int] = []
        for (index, list) in ranges.enumerated() {
            let sorted = list.sorted { ($0.offset, $0.bytes) < ($1.offset, $1.bytes) }
            var end = 0
            var previous: (offset: Int, bytes: Int, tensor: String)?
            for range in sorted {
                if let previous, previous.offset == range.offset, previous.bytes == range.bytes { continue }  // the same bytes, tied
                if range.offset < end, let previous {
                    throw ONNXError(
                        .externalData, file: file,
                        "external data file `\(locations[index])`: tensor `\(range.tensor)` (bytes \(range.offset)..<\(range.offset + range.bytes)) "
                            + "overlaps tensor `\(previous.tensor)` (bytes \(previous.offset)..<\(previous.offset + previous.bytes))")
                }
                if range.offset - end > Self.maximumGap {
                    throw fail(
                        range.tensor,
                        "in `\(locations[index])` starts at \(range.offset), \(range.offset - end) bytes after the data before it; "
                            + "at most \(Self.maximumGap) bytes of padding are allowed (restore with --external-data FILE to lay the data out anew)")
                }
                end = max(end, range.offset + range.bytes)
                previous = range
            }
            sizes.append(end)
        }
        return sizes
    }
}
