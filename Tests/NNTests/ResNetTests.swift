import Kernels
import NN
import XCTest

final class ResNetTests: XCTestCase {
    /// torchvision.models.resnet18() has 11,689,512 parameters and this state-dict order.
    func testResNet18MatchesTorchvisionNamesAndCounts() throws {
        let model = try ClassifierModel(architecture: "resnet18", numClasses: 1000, stem: .imagenet, seed: 0)
        XCTAssertEqual(model.parameterCount, 11_689_512)
        let names = model.store.parameters.map(\.name)
        XCTAssertEqual(Array(names.prefix(3)), ["conv1.weight", "bn1.weight", "bn1.bias"])
        XCTAssertEqual(names.last, "fc.bias")
        XCTAssertTrue(names.contains("layer2.0.downsample.0.weight"))
        XCTAssertTrue(names.contains("layer4.1.bn2.bias"))
        XCTAssertFalse(names.contains("layer1.0.downsample.0.weight"))
        XCTAssertEqual(model.store.parameter(named: "conv1.weight")?.shape, [64, 3, 7, 7])
        XCTAssertEqual(model.store.parameter(named: "fc.weight")?.shape, [1000, 512])
        let buffers = model.store.buffers.map(\.name)
        XCTAssertTrue(buffers.contains("bn1.running_mean") && buffers.contains("layer3.1.bn1.num_batches_tracked"))
        XCTAssertEqual(buffers.count, 20 * 3)
        // torchvision resnet34: 21,797,672 parameters.
        let r34 = try ClassifierModel(architecture: "resnet34", numClasses: 1000, stem: .imagenet, seed: 0)
        XCTAssertEqual(r34.parameterCount, 21_797_672)
    }

    func testSmallStemAndOutputShapes() throws {
        let model = try ClassifierModel(architecture: "resnet18", numClasses: 10, stem: .small, seed: 1)
        XCTAssertEqual(model.store.parameter(named: "conv1.weight")?.shape, [64, 3, 3, 3])
        let x = Tensor(n: 2, h: 32, w: 32, c: 3)
        var rng = SplitMix64(seed: 3)
        for i in 0..<x.count { x.pointer[i] = Float(rng.nextNormal()) }
        let logits = model.forward(x, mode: .train)
        XCTAssertEqual(logits.shape, [2, 1, 1, 10])
        XCTAssertTrue(logits.array.allSatisfy { $0.isFinite })
    }

    /// Kaiming-normal, mode fan_out: std = sqrt(2 / (Cout·k·k)) like torchvision's ResNet init.
    func testKaimingNormalInitStatistics() throws {
        let model = try ClassifierModel(architecture: "resnet18", numClasses: 10, stem: .imagenet, seed: 7)
        let p = model.store.parameter(named: "layer3.0.conv2.weight")!
        let values = UnsafeBufferPointer(start: model.store.value(p), count: p.count)
        let mean = values.reduce(0.0) { $0 + Double($1) } / Double(p.count)
        let std = (values.reduce(0.0) { $0 + Double($1) * Double($1) } / Double(p.count) - mean * mean).squareRoot()
        XCTAssertEqual(std, (2.0 / (256 * 9)).squareRoot(), accuracy: 0.002)
        XCTAssertEqual(mean, 0, accuracy: 0.001)
        XCTAssertEqual(model.store.value(model.store.parameter(named: "bn1.weight")!)[0], 1)
    }

    func testUnknownModelIsAClearError() {
        XCTAssertThrowsError(try ClassifierModel(architecture: "resnet9000", numClasses: 10, stem: .small, seed: 0)) {
            XCTAssertTrue("\($0)".contains("unknown model 'resnet9000'"))
        }
    }
}

final class ResNetBottleneckTests: XCTestCase {
    /// torchvision resnet50/101/152 parameter counts, and v1.5 stride placement (on conv2).
    func testBottleneckModelsMatchTorchvision() throws {
        let r50 = try ClassifierModel(architecture: "resnet50", numClasses: 1000, stem: .imagenet, seed: 0)
        XCTAssertEqual(r50.parameterCount, 25_557_032)
        XCTAssertEqual(r50.store.parameter(named: "layer1.0.conv3.weight")?.shape, [256, 64, 1, 1])
        XCTAssertEqual(r50.store.parameter(named: "layer1.0.downsample.0.weight")?.shape, [256, 64, 1, 1])
        XCTAssertEqual(r50.store.parameter(named: "layer4.2.conv2.weight")?.shape, [512, 512, 3, 3])
        XCTAssertEqual(r50.store.parameter(named: "fc.weight")?.shape, [1000, 2048])
        XCTAssertEqual(r50.store.buffers.count, 53 * 3)
        XCTAssertEqual(try ClassifierModel(architecture: "resnet101", numClasses: 1000, stem: .imagenet, seed: 0).parameterCount,
                       44_549_160)
        XCTAssertEqual(try ClassifierModel(architecture: "resnet152", numClasses: 1000, stem: .imagenet, seed: 0).parameterCount,
                       60_192_808)
    }
}
