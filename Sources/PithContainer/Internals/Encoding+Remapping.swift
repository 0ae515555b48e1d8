extension Manifest.Encoding {
    /// The same encoding with every stream index `i` replaced by `map(i)`: its own streams, its
    /// tables, and those of the encodings it nests (sparse values, factors, blocks). The writer encodes
    /// tensors on several cores into streams of their own, then renumbers them into the container's.
    func remappingStreams(_ map: (Int) -> Int) -> Manifest.Encoding {
        var e = self
        e.streams = streams?.map(map)
        e.centroids = centroids.map(map)
        e.indices = indices.map(map)
        e.scales = scales.map(map)
        e.zeroPoints = zeroPoints.map(map)
        e.codes = codes.map(map)
        e.rowStarts = rowStarts.map(map)
        e.gaps = gaps.map(map)
        e.values = values.map { Box($0.value.remappingStreams(map)) }
        e.factors = factors?.map { $0.remappingStreams(map) }
        e.blocks = blocks?.map { $0.remappingStreams(map) }
        return e
    }
}
