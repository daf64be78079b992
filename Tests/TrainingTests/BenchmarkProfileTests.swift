import Kernels
import Training
import XCTest

/// `bench --profile` (Note [Per-layer profile]): every layer category is counted once per call
/// and its FLOPs add up to the model's known cost.
final class BenchmarkProfileTests: XCTestCase {
    func testResNet18ProfileCountsEveryConvolutionAndTheKnownFLOPs() throws {
        var options = BenchmarkOptions()
        options.model = "resnet18"
        options.imageSize = 224
        options.batchSize = 1
        options.steps = 1
        options.warmupSteps = 0
        options.profile = true
        let result = try runBenchmark(options)
        let rows = try XCTUnwrap(result.profile)
        func calls(_ name: String) -> Double? { rows.first { $0.name == name }?.callsPerStep }
        // torchvision's ResNet-18: 13 3×3 stride-1 convolutions, 3 of stride 2, 3 1×1 stride-2
        // shortcuts and the 7×7 stem, each called in forward and in backward.
        XCTAssertEqual(calls("conv 3×3 s1"), 26)
        XCTAssertEqual(calls("conv 3×3 s2"), 6)
        XCTAssertEqual(calls("conv 1×1 s2"), 6)
        XCTAssertEqual(calls("conv 7×7 s2"), 2)
        XCTAssertEqual(calls("Linear"), 2)
        XCTAssertEqual(calls("max pool"), 2)
        XCTAssertNotNil(calls("BatchNorm+ReLU"))
        XCTAssertNotNil(calls("GEMM (OpenBLAS sgemm)"))
        XCTAssertNotNil(calls("im2col"))
        // Multiply-adds at 224²: stem 118,013,952; layer1 4 × 115,605,504; layers 2–4 each
        // 57,802,752 + 3 × 115,605,504 + a 6,422,528 shortcut; fc 512,000: 1,814,073,344
        // (torchvision lists 1.81 GFLOPS), so 3.628 GFLOP forward.
        XCTAssertEqual(try XCTUnwrap(result.forwardGFlopsPerImage), 3.628146688, accuracy: 1e-6)
        let mfu = try XCTUnwrap(result.mfu)
        XCTAssertGreaterThan(mfu, 0)
        XCTAssertLessThan(mfu, 2)
        XCTAssertFalse(Profiler.isEnabled, "profiling must end with the benchmark")
    }
}
