import Foundation
import Testing
import PithIR
@testable import PithContainer
import PithCoding
import PithTestSupport

/// The manifest's value vocabularies (`kind`, `scheme`, `method`, `coding`): each member is written as
/// its documented spelling, the lists agree with the published schema, and values this Pith does not
/// know decode but are refused, by name, when the tensor or stream is read.
@Suite struct ManifestVocabularyTests {
    typealias Kind = PithContainer.Manifest.Encoding.Kind
    typealias Scheme = PithContainer.Manifest.Encoding.Scheme
    typealias Method = PithContainer.Manifest.Encoding.Method
    typealias Coding = PithContainer.Manifest.StreamEntry.Coding

    // The spellings of docs/container-format.md, written out here so that a renamed member cannot
    // change the format unnoticed.
    static let kinds: [(Kind, String)] = [
        (.dense, "dense"), (.planes, "planes"), (.floatSplit, "float-split"), (.strings, "strings"),
        (.codebook, "codebook"), (.quantized, "quantized"), (.sparse, "sparse"), (.factored, "factored"),
        (.transposed, "transposed"), (.blocks, "blocks"),
    ]
    static let schemes: [(Scheme, String)] = [(.linear, "linear"), (.float16, "float16"), (.bfloat16, "bfloat16")]
    static let methods: [(Method, String)] = [
        (.lowRank, "low-rank"), (.tensorTrain, "tensor-train"), (.circulant, "circulant"), (.separable, "separable"),
    ]
    static let codings: [(Coding, String)] = [(.raw, "raw"), (.huffman, "huffman"), (.zstd, "zstd")]

    /// Encodes `value` with the manifest's own JSON configuration (inside an array: a bare string is
    /// not a JSON document for every decoder), decodes it back, and returns the JSON text.
    func roundTrip<T: Codable & Equatable>(_ value: T) throws -> (json: String, back: T) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let data = try encoder.encode([value])
        return (String(decoding: data, as: UTF8.self), try JSONDecoder().decode([T].self, from: data)[0])
    }

    func check<T: Codable & Equatable & RawRepresentable & CustomStringConvertible>(_ table: [(T, String)], known: [T]) throws where T.RawValue == String {
        #expect(table.map(\.0) == known, "the known list is the documented list, in order")
        for (member, spelling) in table {
            let (json, back) = try roundTrip(member)
            #expect(json == "[\"\(spelling)\"]")
            #expect(back == member)
            #expect(member.rawValue == spelling && member.description == spelling)
        }
        // A value this Pith does not know still decodes, as itself.
        let unknown = try JSONDecoder().decode([T].self, from: Data("[\"from-the-future\"]".utf8))[0]
        #expect(unknown.rawValue == "from-the-future" && !known.contains(unknown))
    }

    @Test func everyMemberRoundTripsAsItsSpelling() throws {
        try check(Self.kinds, known: Kind.known)
        try check(Self.schemes, known: Scheme.known)
        try check(Self.methods, known: Method.known)
        try check(Self.codings, known: Coding.known)
        #expect(Kind.elementwise == [.dense, .planes, .floatSplit])
    }

    /// The JSON Schema of the manifest lists the same values as the types.
    @Test func theSchemaListsTheSameValues() throws {
        let url = Fixtures.root.appendingPathComponent("Schemas/container-manifest.schema.json")
        let schema = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
        func values(_ path: [String]) -> [String]? {
            var node: Any? = schema
            for key in path { node = (node as? [String: Any])?[key] }
            return (node as? [String: Any])?["enum"] as? [String]
        }
        let encoding = ["$defs", "encoding", "properties"]
        #expect(values(encoding + ["kind"]) == Kind.known.map(\.rawValue))
        #expect(values(encoding + ["scheme"]) == Scheme.known.map(\.rawValue))
        #expect(values(encoding + ["method"]) == Method.known.map(\.rawValue))
        #expect(values(["properties", "streams", "items", "properties", "coding"]) == Coding.known.map(\.rawValue))
        #expect(values(["properties", "streams", "items", "properties", "dictionary"]) == PithContainer.Manifest.StreamEntry.knownDictionaries)
        // The dtypes (1.6 lists them; `manifest-1`'s vocabulary spells each).
        #expect(values(["properties", "tensors", "items", "properties", "dtype"]) == DType.allCases.map(\.rawValue))
    }

    /// A container written by hand: one float32 tensor `w` of two elements, one raw stream of its 8
    /// bytes, and the manifest JSON given (flags 0: stored as is).
    func container(encoding: String, coding: String = "raw") -> [UInt8] {
        let payload: [UInt8] = [0, 0, 0x80, 0x3F, 0, 0, 0, 0x40]  // 1.0, 2.0
        let json = """
            {"format":"pith","source":{"format":"onnx","producer_name":"hand","producer_version":"1","properties":[]},\
            "streams":[{"coding":"\(coding)","crc32c":"\(hex(CRC32C.checksum(payload)))","length":8,"offset":64,"symbols":8}],\
            "tensors":[{"dtype":"float32","encoding":\(encoding),"name":"w","shape":[2]}],"version":"1.2"}
            """
        let manifest = [UInt8](json.utf8)
        let header = ContainerHeader(manifestOffset: 128, manifestLength: UInt64(manifest.count), manifestChecksum: CRC32C.checksum(manifest))
        return header.encoded() + payload + [UInt8](repeating: 0, count: 56) + manifest
    }

    func refusal(_ bytes: [UInt8]) -> ContainerError? {
        do {
            _ = try bytes.withUnsafeBytes { try ContainerReader.read(bytes: $0, file: "hand.pith") }
            return nil
        } catch {
            return error as? ContainerError
        }
    }

    @Test func theHandMadeContainerReads() throws {
        let contents = try container(encoding: #"{"kind":"dense","streams":[0]}"#).withUnsafeBytes { try ContainerReader.read(bytes: $0, file: "hand.pith") }
        #expect(contents.model.tensors[0].floatValues() == [1, 2])
    }

    /// `transposed` (1.5) needs a tensor of two dimensions or more whose first dimension is `rows`:
    /// anything else is refused by name, before the stream is decoded.
    @Test func aTransposedEncodingThatDoesNotFitTheShapeIsRefusedByName() throws {
        for encoding in [#"{"kind":"transposed","streams":[0],"rows":2,"columns":1}"#, #"{"kind":"transposed","streams":[0]}"#] {
            let error = try #require(refusal(container(encoding: encoding)), "\(encoding)")
            #expect(error.kind == .malformed && error.description.contains("tensor `w`: transposed encoding needs rows"), "\(error)")
        }
    }

    /// `blocks` (1.6) needs `block_rows`, one block per `block_rows` rows of the first dimension, each
    /// an elementwise encoding with streams of its own that hold exactly that block: anything else is
    /// refused by name before the tensor is allocated.
    @Test func aBlocksEncodingThatDoesNotFitIsRefusedByName() throws {
        let cases: [(encoding: String, phrase: String)] = [
            (#"{"kind":"blocks","blocks":[{"kind":"dense","streams":[0]}]}"#, "tensor `w`: blocks encoding needs block_rows ≥ 1"),
            (#"{"kind":"blocks","block_rows":0,"blocks":[{"kind":"dense","streams":[0]}]}"#, "needs block_rows ≥ 1"),
            (#"{"kind":"blocks","block_rows":1,"blocks":[{"kind":"dense","streams":[0]}]}"#, "tensor `w`: 2 rows in blocks of 1 need 2 blocks, found 1"),
            (#"{"kind":"blocks","block_rows":2,"blocks":[{"kind":"codebook","indices":0}]}"#, "tensor `w`: block 0 is stored as `codebook`"),
            (#"{"kind":"blocks","block_rows":2,"blocks":[{"kind":"dense","streams":[0],"start":0}]}"#, "block 0 is stored as `dense` with a start"),
            (
                #"{"kind":"blocks","block_rows":1,"blocks":[{"kind":"dense","streams":[0]},{"kind":"dense","streams":[0]}]}"#,
                "tensor `w`: block 0 ([1]) needs streams of 4 symbols; stream 0 holds 8"
            ),
            (#"{"kind":"blocks","block_rows":2,"blocks":[{"kind":"float-split","streams":[0,7,8,9]}]}"#, "stream 0 holds 8"),
        ]
        for (encoding, phrase) in cases {
            let error = try #require(refusal(container(encoding: encoding)), "\(encoding)")
            #expect(error.kind == .malformed && error.description.contains(phrase), "\(error)")
        }
        // One block of both rows, the stream its 8 bytes: reads.
        let contents = try container(encoding: #"{"kind":"blocks","block_rows":2,"blocks":[{"kind":"dense","streams":[0]}]}"#).withUnsafeBytes {
            try ContainerReader.read(bytes: $0, file: "hand.pith")
        }
        #expect(contents.model.tensors[0].floatValues() == [1, 2])
    }

    @Test func anUnknownEncodingKindIsRefusedByName() throws {
        let bytes = container(encoding: #"{"kind":"zigzag","streams":[0]}"#)
        // The manifest decodes, unknown kind and all; the tensor is refused when it is read.
        let file = try bytes.withUnsafeBytes { try ContainerFile(bytes: $0, file: "hand.pith", owner: nil) }
        #expect(file.manifest.tensors[0].encoding.kind == Kind(rawValue: "zigzag"))
        let error = try #require(refusal(bytes))
        #expect(error.kind == .unsupported)
        #expect(error.description.hasPrefix("hand.pith: tensor `w`: encoding `zigzag` is not one this Pith knows"), "\(error)")
        #expect(error.message.contains("(dense, planes, float-split, strings, codebook, quantized, sparse, factored, transposed, blocks)"), "\(error)")
    }

    @Test func unknownSchemesMethodsAndCodingsAreRefusedByName() throws {
        let cases: [(bytes: [UInt8], phrase: String)] = [
            (container(encoding: #"{"kind":"quantized","scheme":"int3","streams":[0]}"#), "tensor `w`: quantization scheme `int3` is unknown"),
            (
                container(encoding: #"{"kind":"factored","method":"wavelet","rows":2,"columns":1,"factors":[]}"#),
                "tensor `w`: factorization method `wavelet` is unknown"
            ),
            (container(encoding: #"{"kind":"dense","streams":[0]}"#, coding: "lz4"), "stream 0: coding `lz4` is not one this Pith knows (raw, huffman, zstd)"),
        ]
        for (bytes, phrase) in cases {
            let error = try #require(refusal(bytes), "\(phrase)")
            #expect(error.kind == .unsupported && error.message.contains(phrase), "\(error)")
        }
    }
}
