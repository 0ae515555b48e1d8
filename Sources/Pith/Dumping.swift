import Foundation
import PithEval

/// `pith dump`: every tensor of a model or container written with its name to a NumPy `.npz` or a
/// `.safetensors` file, so that numpy, PyTorch and safetensors users can read what Pith read or
/// wrote — dense values, or with `stored` the form the container keeps (codes, codebooks, scales,
/// CSR arrays, factors, and a JSON description of each). Also one tensor described in text.
public enum Dumping {
    public enum Format: String, Sendable {
        case npz, safetensors

        /// From the output's extension.
        static func of(_ output: String) throws -> Format {
            let lower = output.lowercased()
            if lower.hasSuffix(".npz") { return .npz }
            if lower.hasSuffix(".safetensors") { return .safetensors }
            throw PithError(.usage, "\(output): the dump's format comes from its extension: .npz or .safetensors")
        }
    }

    public struct Result: Sendable {
        public var output: String
        public var format: Format
        public var arrays: Int
        public var bytes: Int
        /// Tensors skipped or widened, and why.
        public var notes: [String]

        public func renderText() -> String {
            var out = notes.map { "note: \($0)\n" }.joined()
            out += "wrote \(output): \(arrays) arrays, \(TextTable.grouped(bytes)) bytes (\(format.rawValue))\n"
            return out
        }
    }

    /// One array of the output: its element type as the file stores it, and its bytes, made when
    /// the array is written (one tensor's arrays at a time in memory).
    struct Planned {
        var name: String
        var dtype: DType
        var shape: [Int]
        var bytes: () -> [UInt8]
        var byteCount: Int { (Shape.elementCount(shape) ?? 0) * (dtype.bitWidth / 8) }
    }

    /// Writes every tensor of the model or container at `path` to `output` (`.npz` or
    /// `.safetensors`), atomically.
    public static func run(_ path: String, to output: String, stored: Bool, force: Bool) throws -> Result {
        let format = try Format.of(output)
        try AtomicFile.checkWritable(output, input: path, force: force)
        let model = try ModelFile.load(path)
        var notes: [String] = [], plan: [Planned] = [], metadata: [String: String] = [:]
        for tensor in model.tensors {
            if stored, tensor.storage.isCompressed {
                let (arrays, description) = storedArrays(tensor, format: format)
                plan += arrays
                metadata[tensor.name] = description
            } else if let array = denseArray(tensor, format: format, notes: &notes) {
                plan.append(array)
            }
        }
        var seen = Set<String>()
        for array in plan where !seen.insert(array.name).inserted {
            throw PithError(.data, "\(path): two arrays would be named `\(TextTable.bounded(array.name))` in the dump")
        }
        var total = 0
        try AtomicFile.write(to: output) { temporary in
            let descriptor = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
            guard descriptor >= 0 else { throw PithError(.cannotCreate, "\(output): cannot create (\(FileIO.describe(errorNumber: errno)))") }
            defer { close(descriptor) }
            switch format {
            case .npz: total = try writeNPZ(plan, metadata: stored ? metadata : nil, descriptor: descriptor, file: output)
            case .safetensors: total = try writeSafetensors(plan, metadata: stored ? metadata : [:], descriptor: descriptor, file: output)
            }
        }
        return Result(output: output, format: format, arrays: plan.count, bytes: total, notes: notes)
    }

    // MARK: Dense values

    /// The tensor's values in its own type where the format has it, else widened (int4 → int8,
    /// float8 → float32 in .npz, …); nil (with a note) for what the format cannot hold.
    static func denseArray(_ tensor: Tensor, format: Format, notes: inout [String]) -> Planned? {
        let name = tensor.name
        if tensor.dtype == .string || tensor.dtype == .complex64 || tensor.dtype == .complex128 {
            notes.append("`\(TextTable.bounded(name))` (\(tensor.dtype.rawValue)) is left out: \(format.rawValue) here holds real numbers only")
            return nil
        }
        let target = fileType(tensor.dtype, format: format)
        if target != tensor.dtype {
            notes.append("`\(TextTable.bounded(name))` is \(tensor.dtype.rawValue), written as \(target.rawValue)")
        }
        return Planned(name: name, dtype: target, shape: tensor.shape) {
            let dense = tensor.densified()
            if target == tensor.dtype, case .dense(let buffer) = dense.storage { return buffer.bytes }
            // Widened: through Double, exact for every type widened here.
            var values: [Double] = []
            values.reserveCapacity(tensor.count)
            if case .dense = dense.storage {
                dense.forEachValueChunk { values += $0 }
            } else {
                values = dense.decodedFloats().map(Double.init)
            }
            return encode(values, as: target)
        }
    }

    /// The element type a file stores `dtype` as.
    static func fileType(_ dtype: DType, format: Format) -> DType {
        switch dtype {
        case .float32, .float64, .float16, .int8, .int16, .int32, .int64, .uint8, .uint16, .uint32, .uint64, .bool: return dtype
        case .bfloat16, .float8e4m3fn, .float8e5m2: return format == .safetensors ? dtype : .float32
        case .int4, .int2: return .int8
        case .uint4, .uint2: return .uint8
        default: return .float32
        }
    }

    static func encode(_ values: [Double], as dtype: DType) -> [UInt8] {
        func bytes<T>(_ array: [T]) -> [UInt8] { array.withUnsafeBytes { Array($0) } }
        switch dtype {
        case .float32: return bytes(values.map { Float($0) })
        case .float64: return bytes(values)
        case .int8: return bytes(values.map { Int8(clamping: Int64($0)) })
        case .uint8: return bytes(values.map { UInt8(clamping: Int64($0)) })
        case .int32: return bytes(values.map { Int32(clamping: Int64($0)) })
        case .int64: return bytes(values.map { Int64($0) })
        case .uint16: return bytes(values.map { UInt16(clamping: Int64($0)) })
        default: return bytes(values.map { Float($0) })
        }
    }

    // MARK: Stored form

    /// The arrays a compressed tensor is kept as, and a JSON description of how they make the
    /// tensor.
    static func storedArrays(_ tensor: Tensor, format: Format) -> ([Planned], String) {
        let name = tensor.name
        var arrays: [Planned] = []
        var description: [String: Any] = ["dtype": tensor.dtype.rawValue, "shape": tensor.shape, "label": tensor.storageLabel]
        func plain<T>(_ suffix: String, _ dtype: DType, _ shape: [Int], _ values: [T]) {
            arrays.append(Planned(name: "\(name).\(suffix)", dtype: dtype, shape: shape) { values.withUnsafeBytes { Array($0) } })
        }
        func codebook(_ c: CodebookStorage, entries: [Int]) {
            let perChannel = c.channels == 0 ? c.centroids.count : c.centroids.count / c.channels
            plain("codebook", .float32, [c.channels, perChannel], c.centroids)
            plain("indices", .uint8, entries, c.indices)
            description["codebook"] = ["bits": c.bits, "channels": c.channels, "axis": c.axis, "zero_is_reserved": c.zeroIsReserved]
        }
        func quantized(_ q: QuantizedStorage, entries: [Int]) {
            switch q.scheme {
            case .linear(let bits, let signed):
                if bits <= 8 {
                    if signed {
                        plain("codes", .int8, entries, q.codes.map { Int8(clamping: $0) })
                    } else {
                        plain("codes", .uint8, entries, q.codes.map { UInt8(clamping: $0) })
                    }
                } else {
                    plain("codes", .int32, entries, Array(q.codes))
                }
                plain("scales", .float32, [q.scales.count], q.scales)
                if !q.isSymmetric { plain("zero_points", .int32, [q.zeroPoints.count], q.zeroPoints) }
                description["quantized"] = ["bits": bits, "signed": signed, "axis": q.axis, "formula": "scale · (code − zero_point)"]
            case .float16:
                plain("codes", .float16, entries, q.codes.map { UInt16(truncatingIfNeeded: $0) })
                description["quantized"] = ["format": "float16"]
            case .bfloat16:
                if format == .safetensors {
                    plain("codes", .bfloat16, entries, q.codes.map { UInt16(truncatingIfNeeded: $0) })
                } else {
                    plain("codes", .float32, entries, q.codes.map { Float(bitPattern: UInt32(UInt16(truncatingIfNeeded: $0)) << 16) })
                }
                description["quantized"] = ["format": "bfloat16"]
            }
        }
        switch tensor.storage {
        case .codebook(let c): codebook(c, entries: tensor.shape)
        case .quantized(let q): quantized(q, entries: tensor.shape)
        case .sparse(let s):
            plain("row_starts", .int64, [s.rowStarts.count], s.rowStarts.map(Int64.init))
            plain("gaps", .uint16, [s.gaps.count], s.gaps)
            description["sparse"] = [
                "rows": s.rows, "columns": s.columns, "index_bits": s.indexBits, "fillers": s.fillers,
                "layout": "CSR with relative indices: an entry's gap is the zero columns skipped since the previous entry of its row",
            ]
            switch s.values {
            case .dense(let buffer):
                let dtype = tensor.dtype
                arrays.append(Planned(name: "\(name).values", dtype: dtype, shape: [s.gaps.count]) { buffer.bytes })
            case .codebook(let c): codebook(c, entries: [s.gaps.count])
            case .quantized(let q): quantized(q, entries: [s.gaps.count])
            }
        case .factored(let f):
            let shapes = f.factorShapes(tensorShape: tensor.shape)
            for (k, factor) in f.factors.enumerated() {
                plain("factor\(k)", .float32, k < shapes.count ? shapes[k] : [factor.count], factor)
            }
            description["factored"] = ["method": "\(f.method)", "rows": f.rows, "columns": f.columns]
        case .dense, .strings:
            break
        }
        let json = (try? JSONSerialization.data(withJSONObject: description, options: [.sortedKeys])).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
        return (arrays, json)
    }

    // MARK: Writers

    static func writeNPZ(_ plan: [Planned], metadata: [String: String]?, descriptor: Int32, file: String) throws -> Int {
        let writer = NPZWriter(descriptor: descriptor, file: file)
        var total = 0
        for array in plan {
            let bytes = array.bytes()
            try PithError.translatingErrors {
                try writer.append(array.name, descr: npyDescr(array.dtype), shape: array.shape, byteCount: bytes.count) { put in
                    try bytes.withUnsafeBytes { try put($0) }
                }
            }
            total += bytes.count
        }
        if let metadata {
            // One 0-d unicode array: numpy reads it as str(np.load(f)["__pith__"]).
            let json = String(decoding: try JSONSerialization.data(withJSONObject: metadata, options: [.sortedKeys]), as: UTF8.self)
            let scalars = json.unicodeScalars.map(\.value)
            try PithError.translatingErrors {
                try writer.append("__pith__", descr: "<U\(max(1, scalars.count))", shape: [], byteCount: max(1, scalars.count) * 4) { put in
                    try (scalars.isEmpty ? [0] : scalars).withUnsafeBytes { try put($0) }
                }
            }
        }
        try PithError.translatingErrors { try writer.finish() }
        return total
    }

    static func npyDescr(_ dtype: DType) -> String {
        switch dtype {
        case .float32: return "<f4"
        case .float64: return "<f8"
        case .float16: return "<f2"
        case .int8: return "|i1"
        case .uint8: return "|u1"
        case .int16: return "<i2"
        case .uint16: return "<u2"
        case .int32: return "<i4"
        case .uint32: return "<u4"
        case .int64: return "<i8"
        case .uint64: return "<u8"
        case .bool: return "|b1"
        default: return "<f4"
        }
    }

    static func safetensorsType(_ dtype: DType) -> String {
        switch dtype {
        case .float32: return "F32"
        case .float64: return "F64"
        case .float16: return "F16"
        case .bfloat16: return "BF16"
        case .float8e4m3fn: return "F8_E4M3"
        case .float8e5m2: return "F8_E5M2"
        case .int8: return "I8"
        case .uint8: return "U8"
        case .int16: return "I16"
        case .uint16: return "U16"
        case .int32: return "I32"
        case .uint32: return "U32"
        case .int64: return "I64"
        case .uint64: return "U64"
        case .bool: return "BOOL"
        default: return "F32"
        }
    }

    /// safetensors: an 8-byte little-endian header length, the JSON header (each tensor's dtype,
    /// shape and byte range in the data that follows; `__metadata__` strings), then the data.
    static func writeSafetensors(_ plan: [Planned], metadata: [String: String], descriptor: Int32, file: String) throws -> Int {
        var header: [String: Any] = [:]
        var offset = 0
        for array in plan {
            header[array.name] = ["dtype": safetensorsType(array.dtype), "shape": array.shape, "data_offsets": [offset, offset + array.byteCount]]
            offset += array.byteCount
        }
        if !metadata.isEmpty { header["__metadata__"] = metadata.mapKeys { "pith.\($0)" } }
        var json = Array(try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys]))
        // The data starts 8-byte aligned, as the reference writer pads the header with spaces.
        while (8 + json.count) % 8 != 0 { json.append(0x20) }
        var length = UInt64(json.count).littleEndian
        var position = 0
        func put(_ bytes: UnsafeRawBufferPointer) throws {
            do { try FileIO.write(descriptor, bytes, at: position) } catch { throw PithError(.io, "\(file): \(error)") }
            position += bytes.count
        }
        try withUnsafeBytes(of: &length) { try put($0) }
        try json.withUnsafeBytes { try put($0) }
        for array in plan {
            let bytes = array.bytes()
            guard bytes.count == array.byteCount else {
                throw PithError(.data, "\(file): `\(TextTable.bounded(array.name))` gave \(bytes.count) of its \(array.byteCount) bytes")
            }
            try bytes.withUnsafeBytes { try put($0) }
        }
        return offset
    }

    // MARK: One tensor

    /// One tensor of the model or container at `path`: shape, type, storage, statistics, a
    /// histogram of its values and its first values.
    public static func describe(_ path: String, tensor name: String, bins: Int = 16, first: Int = 12) throws -> String {
        let model = try ModelFile.load(path)
        guard let tensor = model.tensors.first(where: { $0.name == name }) else {
            let near = model.tensors.map(\.name).filter { $0.lowercased().contains(name.lowercased()) }.prefix(5)
            throw PithError(
                .usage,
                "\(path): no tensor is named `\(TextTable.bounded(name))`"
                    + (near.isEmpty
                        ? "; `pith inspect --all` lists them" : "; did you mean " + near.map { "`\(TextTable.bounded($0))`" }.joined(separator: ", ") + "?"))
        }
        let stats = TensorStatistics(measuring: tensor, distinctCap: Inspector.defaultDistinctCap)
        var out = "\(TextTable.bounded(tensor.name, limit: 120)): \(tensor.dtype.rawValue) \(Shape.describe(tensor.shape)), stored as \(tensor.storageLabel)\n"
        if let consumer = tensor.consumer { out += "feeds: \(consumer.op) \(TextTable.bounded(consumer.name))\n" }
        out += "elements \(TextTable.grouped(stats.count)), nonzero \(TextTable.grouped(stats.nonzero)) (\(TextTable.percent(stats.sparsity)) sparse), "
        out +=
            "distinct \(stats.distinctCapped ? "≥" : "")\(TextTable.grouped(stats.distinct)), \(String(format: "%.2f", stats.bitsPerWeight)) bits per element\n"
        if let min = stats.min, let max = stats.max, let mean = stats.mean, let std = stats.std {
            out += String(format: "min %.6g, max %.6g, mean %.6g, std %.6g", min, max, mean, std)
            out += stats.nonFinite > 0 ? ", \(stats.nonFinite) NaN or infinite\n" : "\n"
            guard tensor.dtype.isReal else { return out }
            let values = tensor.decodedFloats().filter(\.isFinite)
            if max > min, !values.isEmpty {
                var counts = [Int](repeating: 0, count: bins)
                let width = (max - min) / Double(bins)
                for v in values { counts[Swift.min(bins - 1, Int((Double(v) - min) / width))] += 1 }
                let top = counts.max() ?? 1
                out += "histogram:\n"
                for (k, n) in counts.enumerated() {
                    let low = min + Double(k) * width
                    let bar = String(repeating: "█", count: top == 0 ? 0 : Int((40 * Double(n) / Double(top)).rounded(.up)))
                    out += String(format: "  %12.5g … %-12.5g %10d ", low, low + width, n) + bar + "\n"
                }
            }
            let shown = tensor.decodedFloats().prefix(first).map { String(format: "%.6g", $0) }
            out += "first values: " + shown.joined(separator: ", ") + (tensor.count > first ? ", …" : "") + "\n"
        }
        return out
    }
}

extension Dictionary {
    fileprivate func mapKeys<K: Hashable>(_ transform: (Key) -> K) -> [K: Value] {
        [K: Value](uniqueKeysWithValues: map { (transform($0.key), $0.value) })
    }
}
