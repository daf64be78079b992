// swift-tools-version:6.0
import PackageDescription

// Dependency direction (see ../shared/design.md):
// CLI → Training → NN / DataPipeline / DataParallel → Kernels → C bridges.

let package = Package(
    name: "swift-dp-train",
    products: [
        .executable(name: "swift-dp-train", targets: ["swift-dp-train"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        .systemLibrary(name: "CMPI", path: "Sources/CMPI", pkgConfig: "ompi-c",
                       providers: [.apt(["libopenmpi-dev"])]),
        .systemLibrary(name: "COpenBLAS", path: "Sources/COpenBLAS", pkgConfig: "openblas",
                       providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CTurboJPEG", path: "Sources/CTurboJPEG", pkgConfig: "libturbojpeg",
                       providers: [.apt(["libturbojpeg0-dev"])]),
        .systemLibrary(name: "CPNG", path: "Sources/CPNG", pkgConfig: "libpng",
                       providers: [.apt(["libpng-dev"])]),
        // Region decoding with the libjpeg API (jpeg_crop_scanline / jpeg_skip_scanlines), which
        // TurboJPEG 2.1 lacks: the training crop decodes only the rows and columns it reads.
        .target(name: "CJPEGRegion", linkerSettings: [.linkedLibrary("jpeg")]),
        // fp16/bf16 conversions and sums for --grad-compression (F16C where the CPU has it).
        .target(name: "CHalfFloat"),
        .target(name: "Kernels", dependencies: ["COpenBLAS"]),
        .target(name: "NN", dependencies: ["Kernels"]),
        .target(name: "DataPipeline", dependencies: ["Kernels", "CTurboJPEG", "CJPEGRegion", "CPNG"]),
        .target(name: "DataParallel", dependencies: ["Kernels", "CMPI", "CHalfFloat"]),
        .target(name: "Training", dependencies: ["NN", "DataPipeline", "DataParallel", "Kernels"]),
        .executableTarget(name: "swift-dp-train", dependencies: [
            "Training", "NN", "DataPipeline", "DataParallel", "Kernels",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        // Shared by the test targets: launching the binary under mpirun, temporary datasets.
        .target(name: "TestSupport", dependencies: ["DataPipeline", "Kernels"], path: "Tests/TestSupport"),
        .testTarget(name: "KernelsTests", dependencies: ["Kernels", "COpenBLAS"]),
        // Fixtures/ holds golden files read at run time (by path) and the scripts that made them.
        .testTarget(name: "NNTests", dependencies: ["NN", "Kernels", "TestSupport"], exclude: ["Fixtures"]),
        .testTarget(name: "DataPipelineTests", dependencies: ["DataPipeline", "Kernels"], exclude: ["Fixtures"]),
        .testTarget(name: "DataParallelTests", dependencies: ["DataParallel", "Kernels", "TestSupport", "CHalfFloat"]),
        // Counts the test process's heap allocations (the zero-allocation step test).
        .target(name: "CAllocationCounter", path: "Tests/CAllocationCounter"),
        .testTarget(name: "TrainingTests", dependencies: ["Training", "NN", "DataPipeline", "DataParallel", "Kernels", "TestSupport",
                                                          "CAllocationCounter"],
                    exclude: ["Fixtures"]),
    ]
)
