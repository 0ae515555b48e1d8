public import PithIR

/// Operations on the skeleton of an HDF5 file (`HDF5Reader.readWithSkeleton`): the whole file's
/// structure, which `HDF5Writer.write(skeleton:…)` writes back.
public enum HDF5Skeleton {
    /// The top-level group that holds a Keras file's optimizer state: `optimizer_weights` (Keras 2,
    /// Keras 3 legacy `.h5`), `optimizer` (Keras 3 `.weights.h5`); nil for other formats.
    public static func optimizerGroup(of format: SourceFormat) -> String? {
        switch format {
        case .keras2, .keras3Legacy: return "optimizer_weights"
        case .keras3Weights: return "optimizer"
        case .onnx, .hdf5: return nil
        }
    }

    /// `skeleton` without the file's optimizer state: the top-level optimizer group of `format`
    /// and everything below it. Every tensor `Tensor.isOptimizerState` marks must be dropped with it.
    /// `file` names the source in errors.
    public static func droppingOptimizer(_ skeleton: [UInt8], format: SourceFormat, file: String) throws -> [UInt8] {
        guard let group = optimizerGroup(of: format) else { return skeleton }
        var tree = try HDF5Tree(decoding: skeleton, file: file)
        tree.root.children.removeAll { $0.name == group }
        return tree.encoded()
    }
}
