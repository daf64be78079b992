import Kernels
import NN
import XCTest

/// Finite-difference checks for EfficientNet's layers (GradientCheck.swift). SiLU and the
/// sigmoid are smooth, so no kink guard is needed.
final class EfficientNetLayerTests: XCTestCase {
    func testSiLUGradient() {
        let input = randomTensor(n: 2, h: 3, w: 3, c: 5, seed: 1, scale: 4)
        assertGradients(GradientChecker().check(SiLU(), store: nil, input: input), "SiLU")
    }

    func testSigmoidGradient() {
        let input = randomTensor(n: 2, h: 3, w: 3, c: 5, seed: 2, scale: 4)
        assertGradients(GradientChecker().check(Sigmoid(), store: nil, input: input), "Sigmoid")
    }

    /// torch.nn.functional.silu / sigmoid at a few points, including large |x| where a naive
    /// 1/(1 + e^(−x)) would produce inf/inf.
    func testActivationValues() {
        let x = Tensor(n: 1, h: 1, w: 1, c: 5, values: [-100, -1, 0, 0.5, 30])
        let s = Sigmoid().forward(x, mode: .eval).array
        let expected: [Double] = [3.720075976020836e-44, 0.2689414213699951, 0.5, 0.6224593312018546, 1]
        for (a, b) in zip(s, expected) { XCTAssertEqual(Double(a), b, accuracy: 1e-7 * max(1, b)) }
        let y = SiLU().forward(x, mode: .eval).array
        let silu: [Double] = [-3.720075976020836e-42, -0.2689414213699951, 0, 0.3112296656009273, 30]
        for (a, b) in zip(y, silu) { XCTAssertEqual(Double(a), b, accuracy: 1e-6 * max(1, abs(b))) }
    }

    /// x · s[n, c] with s held fixed; dScale checked against finite differences of s.
    func testChannelScaleGradient() {
        final class Adapter: Layer {
            let op = ChannelScale(), scale: Tensor
            var dScale: [Float] = []
            init(scale: Tensor) { self.scale = scale }
            func forward(_ x: Tensor, mode: Mode) -> Tensor { op.forward(x, scale: scale, mode: mode) }
            func backward(_ dy: Tensor) -> Tensor {
                let (dx, ds) = op.backward(dy)
                dScale = ds.array
                ds.release()
                return dx
            }
        }
        let input = randomTensor(n: 3, h: 2, w: 3, c: 4, seed: 3)
        let adapter = Adapter(scale: randomTensor(n: 3, h: 1, w: 1, c: 4, seed: 4))
        let checker = GradientChecker()
        assertGradients(checker.check(adapter, store: nil, input: input), "ChannelScale input")
        let r = randomTensor(n: 3, h: 2, w: 3, c: 4, seed: 99)
        _ = adapter.forward(input, mode: .train)
        _ = adapter.backward(r)
        let analytic = adapter.dScale
        let result = checker.compare("scale", analytic: analytic, values: adapter.scale.pointer) {
            let y = adapter.forward(input, mode: .train)
            var sum = 0.0
            for i in 0..<y.count { sum += Double(y.pointer[i]) * Double(r.pointer[i]) }
            return sum
        }
        assertGradients([result], "ChannelScale scale")
    }

    func testSqueezeExcitationGradient() {
        let store = ParameterStore()
        let se = SqueezeExcitation(store, name: "se", channels: 6, squeezeChannels: 2)
        store.finalize(seed: 5)
        // Non-zero biases, so the check covers them at a generic point (torchvision inits them to 0).
        for p in store.parameters where p.name.hasSuffix("bias") {
            for i in 0..<p.count { store.value(p)[i] = Float(i % 3) * 0.3 - 0.3 }
        }
        let input = randomTensor(n: 2, h: 3, w: 3, c: 6, seed: 6, scale: 2)
        var checker = GradientChecker()
        checker.step = 1e-3
        assertGradients(checker.check(se, store: store, input: input), "SqueezeExcitation")
    }

    func testStochasticDepthGradientWithFixedSeed() {
        let layer = StochasticDepth(probability: 0.5)
        layer.randomSeed = 3
        let input = randomTensor(n: 8, h: 2, w: 2, c: 3, seed: 7)
        assertGradients(GradientChecker().check(layer, store: nil, input: input), "StochasticDepth")
        // The seed must have dropped some images and kept others for this to test anything.
        let y = layer.forward(input, mode: .train)
        let per = 12
        let kept = (0..<8).filter { i in (0..<per).contains { y.pointer[i * per + $0] != 0 } }.count
        XCTAssertTrue(kept > 0 && kept < 8, "kept \(kept) of 8")
    }

    /// torchvision row mode: whole images are zeroed or scaled by 1/(1 − p); eval and p = 0 are
    /// the identity; another seed draws another mask.
    func testStochasticDepthDropsWholeImages() {
        let layer = StochasticDepth(probability: 0.25)
        let x = Tensor(n: 4000, h: 2, w: 1, c: 3)
        x.pointer.update(repeating: 2, count: x.count)
        layer.randomSeed = 11
        let y = layer.forward(x, mode: .train).array
        var dropped = 0
        for i in 0..<4000 {
            let image = y[(i * 6)..<(i * 6 + 6)]
            if image.allSatisfy({ $0 == 0 }) { dropped += 1 } else {
                XCTAssertTrue(image.allSatisfy { abs($0 - 2 / 0.75) < 1e-6 })
            }
        }
        XCTAssertEqual(Double(dropped) / 4000, 0.25, accuracy: 0.03)
        layer.randomSeed = 12
        XCTAssertNotEqual(layer.forward(x, mode: .train).array, y)
        XCTAssertEqual(layer.forward(x, mode: .eval).array, x.array)
        layer.probability = 0
        XCTAssertEqual(layer.forward(x, mode: .train).array, x.array)
    }

    func checkMBConv(inChannels: Int, outChannels: Int, expand: Int, kernel: Int, stride: Int,
                     probability: Float = 0, seed: UInt64 = 0, label: String) {
        let store = ParameterStore()
        let block = MBConv(store, name: "b", inChannels: inChannels, outChannels: outChannels,
                           expandedChannels: inChannels * expand, kernelSize: kernel, stride: stride,
                           stochasticDepthProbability: probability, workspace: FloatStorage())
        block.stochasticDepth.randomSeed = seed
        store.finalize(seed: 8)
        for p in store.parameters where p.name.hasSuffix("fc1.bias") || p.name.hasSuffix("fc2.bias") {
            for i in 0..<p.count { store.value(p)[i] = Float(i % 3) * 0.2 - 0.2 }
        }
        let input = randomTensor(n: 3, h: 5, w: 5, c: inChannels, seed: 9)
        // No kinks (SiLU, sigmoid), so the default step 1e-2 is fine, and it keeps the quotient's
        // Float noise small next to the SE weights' small gradients. Train-mode BatchNorm over a
        // tiny batch amplifies Float rounding (see ResidualBlockGradientTests).
        var checker = GradientChecker()
        checker.tolerance = 5e-2
        assertGradients(checker.check(block, store: store, input: input), label)
    }

    func testMBConvWithoutExpansion() {
        checkMBConv(inChannels: 4, outChannels: 4, expand: 1, kernel: 3, stride: 1, label: "MBConv e1 k3 s1 residual")
    }

    func testMBConvExpandStride2() {
        checkMBConv(inChannels: 4, outChannels: 6, expand: 3, kernel: 5, stride: 2, label: "MBConv e3 k5 s2")
    }

    func testMBConvResidualWithStochasticDepth() {
        // The first seed that drops some of the 3 images and keeps others, so both paths are checked.
        let layer = StochasticDepth(probability: 0.5)
        let probe = Tensor(n: 3, h: 1, w: 1, c: 1, values: [1, 1, 1])
        let seed = (UInt64(1)...).first { seed in
            layer.randomSeed = seed
            let kept = layer.forward(probe, mode: .train).array.filter { $0 != 0 }.count
            return kept == 1 || kept == 2
        }!
        checkMBConv(inChannels: 4, outChannels: 4, expand: 2, kernel: 3, stride: 1, probability: 0.5, seed: seed,
                    label: "MBConv e2 k3 s1 residual, stochastic depth 0.5")
    }

    /// Every tensor an MBConv hands out is reused: after the first step the output storage
    /// stays the same and the gradient pool allocates nothing more (a steady-state step
    /// allocates nothing), also for a smaller batch and with stochastic depth drawing a new
    /// mask each step.
    func testMBConvReusesItsBuffers() {
        let store = ParameterStore()
        let block = MBConv(store, name: "b", inChannels: 4, outChannels: 4, expandedChannels: 8, kernelSize: 3,
                           stride: 1, stochasticDepthProbability: 0.3, workspace: FloatStorage())
        store.finalize(seed: 1)
        let pool = TensorPool()
        let x = randomTensor(n: 4, h: 6, w: 6, c: 4, seed: 2)
        let y = block.forward(x, mode: .train)
        block.backward(pooledCopy(y, in: pool)).release()
        let outPointer = y.pointer
        let (tensors, bytes) = (pool.tensorCount, pool.reservedBytes)
        for (step, input) in [x, randomTensor(n: 3, h: 6, w: 6, c: 4, seed: 3), x].enumerated() {
            block.stochasticDepth.randomSeed = UInt64(step)
            let y2 = block.forward(input, mode: .train)
            XCTAssertEqual(y2.pointer, outPointer)
            block.backward(pooledCopy(y2, in: pool)).release()
            XCTAssertEqual(pool.liveCount, 0)
            XCTAssertEqual(pool.tensorCount, tensors)
            XCTAssertEqual(pool.reservedBytes, bytes)
        }
    }
}
