// swift-tools-version:6.0
// Fuzz targets for Pith's readers: a package of its own, so that `swift build` of Pith never builds
// them (they link libFuzzer, which only exists in a build with coverage instrumentation). Built and
// run by `make fuzz` (see the Makefile and docs/architecture.md, "Fuzzing").
import PackageDescription

let package = Package(
    name: "PithFuzz",
    dependencies: [
        // Pith itself, by path (`Pith` is a link to `..`, so the dependency is named `pith` wherever the checkout lives): the targets import its format modules (PithContainer, PithCoding,
        // PithONNX, PithHDF5), which come with its `Pith` library product.
        .package(path: "Pith")
    ],
    targets: [
        // The libFuzzer driver (`LLVMFuzzerRunDriver`) and what the targets share.
        .target(name: "PithFuzzSupport"),
        .executableTarget(
            name: "FuzzContainer", dependencies: ["PithFuzzSupport", .product(name: "Pith", package: "Pith")]),
        .executableTarget(
            name: "FuzzHuffman", dependencies: ["PithFuzzSupport", .product(name: "Pith", package: "Pith")]),
        .executableTarget(
            name: "FuzzONNX", dependencies: ["PithFuzzSupport", .product(name: "Pith", package: "Pith")]),
        .executableTarget(
            name: "FuzzHDF5", dependencies: ["PithFuzzSupport", .product(name: "Pith", package: "Pith")]),
    ],
    swiftLanguageModes: [.v6]
)
