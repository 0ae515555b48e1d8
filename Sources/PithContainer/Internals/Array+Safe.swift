extension Array {
    /// The element at `index`, or nil when the index is out of range (a stream index from a manifest).
    subscript(safe index: Int) -> Element? { indices.contains(index) ? self[index] : nil }
}
