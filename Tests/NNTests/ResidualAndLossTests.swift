import XCTest
import Kernels
import NN

/// relu(bn(conv(x)) + x): the residual pattern the models use, built from the public kernels
/// (`addForward` for the sum, `accumulate` for the fanned-out input gradient).
final class ResidualBlock: Layer {
    let conv: Conv2d
    let bn: BatchNorm2d
    let relu = ReLU()
    private let sum = Tensor()

    init(_ store: ParameterStore, channels: Int) {
        conv = Conv2d(store, name: "conv", inChannels: channels, outChannels: channels, kernelSize: 3, padding: 1)
        bn = BatchNorm2d(store, name: "bn", channels: channels)
    }

    func forward(_ x: Tensor, mode: Mode) -> Tensor {
        let branch = bn.forward(conv.forward(x, mode: mode), mode: mode)
        addForward(branch, x, into: sum)
        return relu.forward(sum, mode: mode)
    }

    /// dSum feeds the branch and the shortcut, so it is retained before the branch consumes
    /// it (Note [Gradient pool]); the shortcut's gradient is dSum itself.
    func backward(_ dy: Tensor) -> Tensor {
        let dSum = relu.backward(dy)
        dSum.retain()
        let dBranch = conv.backward(bn.backward(dSum))
        return sumGradients(dBranch, dSum)
    }
}

/// y = 2·x with a deliberately misrouted backward (dx[i] = 2·dy[i + 1]): the checker must fail.
final class MisroutedScale: Layer {
    private let output = Tensor()
    func forward(_ x: Tensor, mode: Mode) -> Tensor {
        output.resize(like: x)
        for i in 0..<x.count { output.pointer[i] = 2 * x.pointer[i] }
        return output
    }
    func backward(_ dy: Tensor) -> Tensor {
        let dInput = dy.acquireFromSamePool(like: dy)
        for i in 0..<dy.count { dInput.pointer[i] = 2 * dy.pointer[(i + 1) % dy.count] }
        dy.release()
        return dInput
    }
}

final class GradientCheckerTests: XCTestCase {
    func testCheckerCatchesMisroutedGradient() {
        let x = randomTensor(n: 1, h: 2, w: 2, c: 3, seed: 1)
        let result = GradientChecker().check(MisroutedScale(), store: nil, input: x)[0]
        XCTAssertFalse(result.passed, "a misrouted gradient passed: \(result.summary)")
        XCTAssertGreaterThan(result.worstError, 0.1)
    }
}

final class ResidualTests: XCTestCase {
    func testAddKernels() {
        let a = Tensor(n: 1, h: 1, w: 2, c: 2, values: [1, 2, 3, 4])
        let b = Tensor(n: 1, h: 1, w: 2, c: 2, values: [10, 20, 30, 40])
        let out = Tensor()
        addForward(a, b, into: out)
        XCTAssertEqual(out.shape, [1, 1, 2, 2])
        XCTAssertEqual(out.array, [11, 22, 33, 44])
        addForward(a, b, into: a)  // in place
        XCTAssertEqual(a.array, [11, 22, 33, 44])
        accumulate(b, into: a)
        XCTAssertEqual(a.array, [21, 42, 63, 84])
    }

    func testResidualBlockGradients() {
        let store = ParameterStore()
        let block = ResidualBlock(store, channels: 3)
        store.finalize(seed: 4)
        let x = randomTensor(n: 2, h: 4, w: 4, c: 3, seed: 61)
        // BatchNorm makes the block nonlinear (small step); the ReLU adds kinks (guard on).
        let results = GradientChecker(step: 1e-3, tolerance: 1e-2, kinkThreshold: 0.05)
            .check(block, store: store, input: x)
        assertGradients(results, "residual block")
    }
}

final class SoftmaxCrossEntropyTests: XCTestCase {
    private let logits = Tensor(n: 3, h: 1, w: 1, c: 5, values: [
        1.0, 2.0, 0.5, -1.0, 3.0,
        0.2, 0.1, 0.0, 0.3, -0.2,
        5.0, 1.0, 4.0, 4.5, 2.0,
    ])
    private let labels: [Int32] = [4, 2, 3]

    private func reference(_ z: Tensor, _ labels: [Int32], smoothing: Double = 0) -> [Double] {
        (0..<z.n).map { n in
            let row = (0..<z.c).map { Double(z.pointer[n * z.c + $0]) }
            let m = row.max()!
            let lse = m + log(row.reduce(0) { $0 + exp($1 - m) })
            let nll = lse - row[Int(labels[n])]
            let mean = row.reduce(0) { $0 + (lse - $1) } / Double(z.c)
            return (1 - smoothing) * nll + smoothing * mean
        }
    }

    func testLossAndPerSampleValues() {
        let ce = SoftmaxCrossEntropy()
        let loss = labels.withUnsafeBufferPointer { ce.forward(logits: logits, labels: $0.baseAddress!) }
        let expected = reference(logits, labels)
        XCTAssertEqual(Double(loss), expected.reduce(0, +) / 3, accuracy: 1e-6)
        XCTAssertEqual(ce.lossSum, expected.reduce(0, +), accuracy: 1e-5)
        for i in 0..<3 { XCTAssertEqual(Double(ce.loss(sample: i)), expected[i], accuracy: 1e-6) }
    }

    func testStableForHugeLogits() {
        let z = Tensor(n: 1, h: 1, w: 1, c: 3, values: [1000, 0, -1000])
        let ce = SoftmaxCrossEntropy()
        let loss = [Int32(1)].withUnsafeBufferPointer { ce.forward(logits: z, labels: $0.baseAddress!) }
        XCTAssertEqual(loss, 1000, accuracy: 1e-3)
        let d = ce.backward().array
        XCTAssertEqual(d[0], 1, accuracy: 1e-6); XCTAssertEqual(d[1], -1, accuracy: 1e-6)
        XCTAssertTrue(d.allSatisfy(\.isFinite))
    }

    func testTopKCounts() {
        let ce = SoftmaxCrossEntropy()
        _ = labels.withUnsafeBufferPointer { ce.forward(logits: logits, labels: $0.baseAddress!) }
        // Sample 0: label 4 is the max. Sample 1: label 2 ranks 4th. Sample 2: label 3 ranks 2nd.
        XCTAssertEqual(ce.correctCount(topK: 1), 1)
        XCTAssertEqual(ce.correctCount(topK: 2), 2)
        XCTAssertEqual(ce.correctCount(topK: 4), 3)
        XCTAssertEqual(ce.predictedClass(sample: 2), 0)
        XCTAssertTrue(ce.isCorrect(sample: 2, topK: 2))
    }

    func testGradients() {
        for smoothing in [0.0, 0.1] {
            let ce = SoftmaxCrossEntropy(labelSmoothing: Float(smoothing))
            let z = randomTensor(n: 4, h: 1, w: 1, c: 6, seed: 71, scale: 3)
            let y: [Int32] = [0, 5, 2, 2]
            let loss: () -> Double = {
                y.withUnsafeBufferPointer { Double(ce.forward(logits: z, labels: $0.baseAddress!)) }
            }
            let value = loss()
            XCTAssertEqual(value, reference(z, y, smoothing: smoothing).reduce(0, +) / 4, accuracy: 1e-5)
            let analytic = ce.backward().array
            // The loss is returned as Float (mean of O(1) values), so use a larger step.
            let result = GradientChecker(step: 5e-2, tolerance: 1e-2).compare("logits", analytic: analytic,
                                                                           values: z.pointer, loss: loss)
            XCTAssertTrue(result.passed, "smoothing \(smoothing): \(result.summary)")
        }
    }
}
