import Kernels
import NN
import XCTest

// Note [Gradient pool] from the outside: the checker notices a layer that breaks the protocol,
// no layer overwrites a gradient it was not handed exclusively, and whole models return every
// pooled tensor, hold only a few at once, and compute the same bits with a poisoning pool.

/// y = 2x whose backward never gives dy back.
private final class LeakingScale: Layer {
    private let output = Tensor()
    func forward(_ x: Tensor, mode: Mode) -> Tensor {
        output.resize(like: x)
        for i in 0..<x.count { output.pointer[i] = 2 * x.pointer[i] }
        return output
    }
    func backward(_ dy: Tensor) -> Tensor {
        let dx = dy.acquireFromSamePool(like: dy)
        for i in 0..<dy.count { dx.pointer[i] = 2 * dy.pointer[i] }
        return dx
    }
}

/// y = 2x whose backward reads dy after giving it back.
private final class ReadsAfterRelease: Layer {
    private let output = Tensor()
    func forward(_ x: Tensor, mode: Mode) -> Tensor {
        output.resize(like: x)
        for i in 0..<x.count { output.pointer[i] = 2 * x.pointer[i] }
        return output
    }
    func backward(_ dy: Tensor) -> Tensor {
        dy.release()
        let dx = dy.acquireFromSamePool(like: dy)
        for i in 0..<dy.count { dx.pointer[i] = 2 * dy.pointer[i] }
        return dx
    }
}

/// relu(bn(x)) + x whose backward hands the sum's gradient to the branch without retaining it
/// first: BatchNorm overwrites it in place, and the shortcut then reads the branch's numbers.
private final class ResidualWithoutRetain: Layer {
    let bn: BatchNorm2d
    private let sum = Tensor()
    init(_ store: ParameterStore, channels: Int) { bn = BatchNorm2d(store, name: "bn", channels: channels) }
    func forward(_ x: Tensor, mode: Mode) -> Tensor {
        addForward(bn.forward(x, mode: mode), x, into: sum)
        return sum
    }
    func backward(_ dy: Tensor) -> Tensor {
        let dBranch = bn.backward(dy)  // missing dy.retain()
        return sumGradients(dBranch, dy)
    }
}

final class GradientPoolProtocolTests: XCTestCase {
    func testCheckerReportsALeakedGradient() {
        let x = randomTensor(n: 1, h: 2, w: 2, c: 3, seed: 1)
        let results = GradientChecker().check(LeakingScale(), store: nil, input: x)
        XCTAssertTrue(results[0].passed, "the values are right")
        XCTAssertTrue(results.contains { !$0.passed && $0.name.hasPrefix("pool:") }, "the leak is reported")
    }

    func testCheckerCatchesAReadAfterRelease() {
        let x = randomTensor(n: 1, h: 2, w: 2, c: 3, seed: 2)
        XCTAssertFalse(GradientChecker().check(ReadsAfterRelease(), store: nil, input: x)[0].passed)
    }

    func testCheckerCatchesAFanOutWithoutRetain() {
        let store = ParameterStore()
        let block = ResidualWithoutRetain(store, channels: 3)
        store.finalize(seed: 3)
        let x = randomTensor(n: 2, h: 3, w: 3, c: 3, seed: 4)
        let results = GradientChecker(step: 1e-2).check(block, store: store, input: x)
        XCTAssertFalse(results[0].passed, "input gradient: \(results[0].summary)")
    }
}

/// A gradient handed over unmanaged (a loss's, a test's) is read, never written: every layer
/// that can overwrite its gradient in place leaves this one bit-for-bit unchanged.
final class UnmanagedGradientTests: XCTestCase {
    func testNoLayerOverwritesAnUnmanagedGradient() {
        let store = ParameterStore()
        let ws = FloatStorage()
        let dropout = Dropout(probability: 0.5), depth = StochasticDepth(probability: 0.5)
        let mbconv = MBConv(store, name: "mb", inChannels: 4, outChannels: 4, expandedChannels: 8, kernelSize: 3,
                            stride: 1, stochasticDepthProbability: 0.5, workspace: ws)
        let layers: [(String, any Layer)] = [
            ("BatchNorm2d", BatchNorm2d(store, name: "bn0", channels: 4)),
            ("BatchNorm2d+ReLU", BatchNorm2d(store, name: "bn1", channels: 4, activation: .relu)),
            ("BatchNorm2d+SiLU", BatchNorm2d(store, name: "bn2", channels: 4, activation: .silu)),
            ("ReLU", ReLU()), ("SiLU", SiLU()), ("Sigmoid", Sigmoid()), ("Dropout", dropout),
            ("StochasticDepth", depth),
            ("BasicBlock", BasicBlock(store, name: "basic", inChannels: 4, channels: 4, stride: 1, workspace: ws)),
            ("Bottleneck", Bottleneck(store, name: "bottle", inChannels: 4, width: 1, stride: 1, workspace: ws)),
            ("MBConv", mbconv),
            ("SqueezeExcitation", SqueezeExcitation(store, name: "se", channels: 4, squeezeChannels: 2)),
            ("ScaledResidualBlock", ScaledResidualBlock.block35Like(store, channels: 4, workspace: ws)),
        ]
        store.finalize(seed: 5)
        dropout.randomSeed = 6
        depth.randomSeed = 7
        mbconv.stochasticDepth.randomSeed = 8
        let x = randomTensor(n: 2, h: 3, w: 3, c: 4, seed: 9)
        for (name, layer) in layers {
            let y = layer.forward(x, mode: .train)
            let dy = randomTensor(n: y.n, h: y.h, w: y.w, c: y.c, seed: 10)
            let before = dy.array
            let dx = layer.backward(dy)
            XCTAssertFalse(dx === dy, name)
            XCTAssertEqual(dy.array, before, name)
        }
    }
}

extension ScaledResidualBlock {
    /// A miniature Block35: two branches of conv + BN + fused ReLU, concatenated, projected.
    static func block35Like(_ store: ParameterStore, channels: Int, workspace: FloatStorage) -> ScaledResidualBlock {
        func cna(_ name: String, _ i: Int, _ o: Int, _ k: Int) -> Sequential {
            Sequential([
                Conv2d(store, name: "\(name).conv", inChannels: i, outChannels: o, kernelSize: k, padding: k / 2,
                       workspace: workspace),
                BatchNorm2d(store, name: "\(name).bn", channels: o, activation: .relu),
            ])
        }
        let branches = Concat([
            cna("srb.branch0", channels, 2, 1),
            Sequential([cna("srb.branch1.0", channels, 2, 1), cna("srb.branch1.1", 2, 3, 3)]),
        ])
        let projection = Conv2d(store, name: "srb.conv2d", inChannels: 5, outChannels: channels, kernelSize: 1,
                                bias: true, workspace: workspace)
        return ScaledResidualBlock(branches: branches, projection: projection, scale: 0.2, relu: true)
    }
}

/// Whole models under `ClassifierModel`'s pool: every pooled tensor is free after backward,
/// the pool stops growing after the first step and holds only `bound` tensors (each the size
/// of some activation gradient; a pool-less design holds one per layer), and a pool that
/// poisons every tensor it hands out or takes back gives bit-identical gradients (so no layer
/// reads a gradient before writing it or after giving it back).
final class ModelGradientPoolTests: XCTestCase {
    func checkPool(_ architecture: String, size: Int, stem: ResNetStem = .imagenet, bound: Int,
                   file: StaticString = #filePath, line: UInt = #line) throws {
        let plain = try ClassifierModel(architecture: architecture, numClasses: 5, stem: stem, seed: 3)
        let poisoned = try ClassifierModel(architecture: architecture, numClasses: 5, stem: stem, seed: 3)
        poisoned.gradientPool = TensorPool(poisonsTensors: true)
        let images = randomTensor(n: 2, h: size, w: size, c: 3, seed: 4)
        let labels: [Int32] = [1, 3]
        var settled: (tensors: Int, bytes: Int)?
        for step in 0..<3 {
            var gradients: [[Float]] = []
            for model in [plain, poisoned] {
                model.reseedStochasticLayers(seed: 1, step: step, stream: 0)
                model.store.zeroGradients()
                let loss = SoftmaxCrossEntropy()
                let logits = model.forward(images, mode: .train)
                _ = labels.withUnsafeBufferPointer { loss.forward(logits: logits, labels: $0.baseAddress!) }
                model.backward(loss.backward())
                XCTAssertEqual(model.gradientPool.liveCount, 0, "\(architecture) step \(step)", file: file, line: line)
                gradients.append(Array(UnsafeBufferPointer(start: model.store.gradients, count: model.parameterCount)))
            }
            XCTAssertTrue(gradients[0] == gradients[1], "\(architecture) step \(step): poisoned pool changed gradients",
                          file: file, line: line)
            let pool = plain.gradientPool
            if let settled {
                XCTAssertEqual(pool.tensorCount, settled.tensors, "\(architecture) step \(step)", file: file, line: line)
                XCTAssertEqual(pool.reservedBytes, settled.bytes, "\(architecture) step \(step)", file: file, line: line)
            } else if step == 1 {
                settled = (pool.tensorCount, pool.reservedBytes)
            }
        }
        XCTAssertLessThanOrEqual(plain.gradientPool.peakLiveCount, bound, architecture, file: file, line: line)
        if ProcessInfo.processInfo.environment["POOL_VERBOSE"] != nil {
            print("\(architecture): peak \(plain.gradientPool.peakLiveCount) tensors, \(plain.gradientPool.reservedBytes) bytes")
        }
    }

    // Bounds as measured. A residual block holds the sum's gradient (kept for the shortcut)
    // while a conv turns its output gradient into its input gradient (3); in MBConv the
    // squeeze-excitation's small convs run while the block's and the direct path's gradients
    // wait (4); an Inception-ResNet block keeps the identity path's gradient and its
    // concatenation's branch slices while a branch's conv runs (5).
    func testResNet18() throws { try checkPool("resnet18", size: 32, stem: .small, bound: 3) }
    func testResNet50() throws { try checkPool("resnet50", size: 64, bound: 3) }
    func testEfficientNetB0() throws { try checkPool("efficientnet_b0", size: 32, bound: 4) }
    func testInceptionResNetV2() throws { try checkPool("inception_resnet_v2", size: 75, bound: 5) }
    func testPlainConvNet() throws { try checkPool("plain_convnet", size: 16, bound: 2) }
}
