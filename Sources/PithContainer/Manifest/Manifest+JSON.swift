import Foundation

/// The one JSON configuration of the manifest, for writing and reading it.
///
/// The manifest's bytes are part of the format: equal inputs must give equal files (the writer is
/// deterministic, and identical containers compare with `cmp`), so keys are snake_case and sorted, and
/// nothing is pretty-printed. Reports (`inspect`, `compress`, `verify` JSON) share the key style but are
/// for reading: they are pretty-printed, and nothing depends on their exact bytes. Slashes are not
/// escaped in either (`\/` is legal JSON that only makes names harder to read).
extension Manifest {
    /// The manifest as the UTF-8 JSON a container stores (before the zstd frame).
    func encodedJSON() throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return [UInt8](try encoder.encode(self))
    }

    /// The manifest in `json`. Keys this Pith does not know are ignored (a minor version may add
    /// optional ones); values it does not know decode and are refused when used, by name.
    init(json: [UInt8]) throws {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        self = try decoder.decode(Manifest.self, from: Data(json))
    }
}
