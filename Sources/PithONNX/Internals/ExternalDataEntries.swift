/// The keys of a tensor's `external_data` that place its bytes — `location`, `offset` (default 0)
/// and `length` — read one way for the reader (`ExternalDataReader`) and for restore's layout
/// (`ExternalDataPlan`), with one wording for what is wrong. `checksum` and unknown keys are
/// informational.
struct ExternalDataEntries {
    var location: String?
    var offset = 0
    var length: Int?

    init(_ entries: [(String, String)], tensor: String, file: String) throws {
        func count(_ key: String, _ value: String) throws -> Int {
            guard let parsed = Int(value), parsed >= 0 else {
                throw Self.failure(tensor, file: file, "`\(key)` is \"\(value)\", not a non-negative decimal integer")
            }
            return parsed
        }
        for (key, value) in entries {
            switch key {
            case "location": location = value
            case "offset": offset = try count(key, value)
            case "length": length = try count(key, value)
            default: break
            }
        }
    }

    /// The error about `tensor`'s external data in `file`.
    static func failure(_ tensor: String, file: String, _ message: String) -> ONNXError {
        ONNXError(.externalData, file: file, "tensor `\(tensor)`: external data \(message)")
    }
}
