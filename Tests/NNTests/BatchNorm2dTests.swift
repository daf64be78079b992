import XCTest
import Kernels
import NN

final class BatchNorm2dTests: XCTestCase {
    private func make(channels: Int, seed: UInt64 = 3, activation: FusedActivation = .none)
        -> (BatchNorm2d, ParameterStore) {
        let store = ParameterStore()
        let bn = BatchNorm2d(store, name: "bn1", channels: channels, activation: activation)
        store.finalize(seed: 0)
        // Non-trivial affine parameters so dγ, dβ and the γ factor in dx are exercised.
        var rng = SplitMix64(seed: seed)
        for i in 0..<channels {
            store.value(bn.weight)[i] = 0.5 + rng.nextUniform()
            store.value(bn.bias)[i] = rng.nextUniform() - 0.5
        }
        return (bn, store)
    }

    func testRegistersPyTorchNamesAndBuffers() {
        let store = ParameterStore()
        let bn = BatchNorm2d(store, name: "layer1.0.bn1", channels: 4)
        store.finalize(seed: 0)
        XCTAssertEqual(store.parameters.map(\.name), ["layer1.0.bn1.weight", "layer1.0.bn1.bias"])
        XCTAssertEqual(store.parameters.map(\.isWeight), [false, false])
        XCTAssertEqual(store.buffers.map(\.name),
                       ["layer1.0.bn1.running_mean", "layer1.0.bn1.running_var", "layer1.0.bn1.num_batches_tracked"])
        XCTAssertEqual(store.buffers[2].kind, .int64)
        XCTAssertEqual(store.buffers[2].shape, [])
        XCTAssertEqual(Array(UnsafeBufferPointer(start: store.value(bn.weight), count: 4)), [1, 1, 1, 1])
        XCTAssertEqual(Array(UnsafeBufferPointer(start: store.value(bn.bias), count: 4)), [0, 0, 0, 0])
        XCTAssertEqual(Array(UnsafeBufferPointer(start: store.floatBuffer(bn.runningMean), count: 4)), [0, 0, 0, 0])
        XCTAssertEqual(Array(UnsafeBufferPointer(start: store.floatBuffer(bn.runningVar), count: 4)), [1, 1, 1, 1])
        XCTAssertEqual(store.intBuffer(bn.numBatchesTracked)[0], 0)
    }

    /// running = (1 − 0.1)·running + 0.1·batch, with the UNBIASED batch variance
    /// (torch.nn.modules.batchnorm, native_batch_norm); the output uses the biased variance.
    func testTrainForwardAndRunningStatisticsMatchPyTorchFormula() {
        let c = 3, n = 2, h = 3, w = 2, m = n * h * w
        let (bn, store) = make(channels: c)
        var expectedMean = [Double](repeating: 0, count: c), expectedVar = [Double](repeating: 1, count: c)
        for step in 0..<2 {
            // Offset inputs so a naive E[x²] − E[x]² in Float would lose digits.
            let x = randomTensor(n: n, h: h, w: w, c: c, seed: UInt64(step) + 40)
            for i in 0..<x.count { x.pointer[i] = x.pointer[i] * Float(i % c + 1) + 100 }
            let y = bn.forward(x, mode: .train)
            for ch in 0..<c {
                var values: [Double] = []
                for r in 0..<m { values.append(Double(x.pointer[r * c + ch])) }
                let mean = values.reduce(0, +) / Double(m)
                let sq = values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) }
                let biased = sq / Double(m), unbiased = sq / Double(m - 1)
                expectedMean[ch] = 0.9 * expectedMean[ch] + 0.1 * mean
                expectedVar[ch] = 0.9 * expectedVar[ch] + 0.1 * unbiased
                let gamma = Double(store.value(bn.weight)[ch]), beta = Double(store.value(bn.bias)[ch])
                for r in 0..<m {
                    let expected = (values[r] - mean) / (biased + 1e-5).squareRoot() * gamma + beta
                    XCTAssertEqual(Double(y.pointer[r * c + ch]), expected, accuracy: 1e-4, "step \(step) ch \(ch) row \(r)")
                }
                XCTAssertEqual(Double(store.floatBuffer(bn.runningMean)[ch]), expectedMean[ch], accuracy: 1e-4)
                XCTAssertEqual(Double(store.floatBuffer(bn.runningVar)[ch]), expectedVar[ch], accuracy: 1e-4)
            }
            XCTAssertEqual(store.intBuffer(bn.numBatchesTracked)[0], Int64(step + 1))
        }
    }

    func testEvalUsesRunningStatisticsAndLeavesThemAlone() {
        let c = 2
        let (bn, store) = make(channels: c)
        let rm = store.floatBuffer(bn.runningMean), rv = store.floatBuffer(bn.runningVar)
        rm[0] = 0.5; rm[1] = -1; rv[0] = 2; rv[1] = 0.25
        let x = randomTensor(n: 2, h: 2, w: 2, c: c, seed: 9)
        let y = bn.forward(x, mode: .eval)
        for i in 0..<x.count {
            let ch = i % c
            let expected = (Double(x.pointer[i]) - Double(rm[ch])) / (Double(rv[ch]) + 1e-5).squareRoot()
                * Double(store.value(bn.weight)[ch]) + Double(store.value(bn.bias)[ch])
            XCTAssertEqual(Double(y.pointer[i]), expected, accuracy: 1e-5)
        }
        XCTAssertEqual(rm[0], 0.5); XCTAssertEqual(rv[1], 0.25)
        XCTAssertEqual(store.intBuffer(bn.numBatchesTracked)[0], 0)
    }

    func testTrainGradients() {
        let (bn, store) = make(channels: 3)
        let x = randomTensor(n: 2, h: 3, w: 3, c: 3, seed: 11, scale: 2)
        // Nonlinear in x through the batch statistics: smaller step; O(h²) truncation ≈ 1e-4.
        let results = GradientChecker(step: 1e-2, tolerance: 1e-2).check(bn, store: store, input: x, mode: .train)
        assertGradients(results, "BatchNorm2d train")
    }

    func testEvalGradients() {
        let (bn, store) = make(channels: 3)
        let rm = store.floatBuffer(bn.runningMean), rv = store.floatBuffer(bn.runningVar)
        for ch in 0..<3 { rm[ch] = Float(ch) * 0.3 - 0.2; rv[ch] = 0.5 + Float(ch) }
        let x = randomTensor(n: 2, h: 2, w: 3, c: 3, seed: 12)
        let results = GradientChecker(step: 0.1, tolerance: 2e-3).check(bn, store: store, input: x, mode: .eval)
        assertGradients(results, "BatchNorm2d eval")
    }

    /// Note [Fused activation]: BatchNorm with a fused ReLU or SiLU gives bit for bit what a
    /// BatchNorm followed by the activation layer gives (output, input gradient, dγ, dβ),
    /// whether the gradient is overwritten in place (pooled) or not (unmanaged). Eval mode
    /// for ReLU only: the SiLU layer keeps no input for an eval-mode backward.
    func testFusedActivationMatchesSeparateLayers() {
        let cases: [(FusedActivation, any Layer, [Mode])] = [(.relu, ReLU(), [.train, .eval]), (.silu, SiLU(), [.train])]
        for (activation, layer, modes) in cases {
            for mode in modes {
                for pooled in [false, true] {
                    let label = "\(activation) \(mode) pooled \(pooled)"
                    let (fused, fusedStore) = make(channels: 5, activation: activation)
                    let (plain, plainStore) = make(channels: 5)
                    let separate = Sequential([plain, layer])
                    let x = randomTensor(n: 3, h: 2, w: 3, c: 5, seed: 21, scale: 3)
                    let dy = randomTensor(n: 3, h: 2, w: 3, c: 5, seed: 22)
                    let pool = TensorPool()
                    func gradient() -> Tensor { pooled ? pooledCopy(dy, in: pool) : dy }
                    XCTAssertEqual(fused.forward(x, mode: mode).array, separate.forward(x, mode: mode).array, label)
                    let dxFused = fused.backward(gradient()), dxSeparate = separate.backward(gradient())
                    XCTAssertEqual(dxFused.array, dxSeparate.array, label)
                    dxFused.release()
                    dxSeparate.release()
                    XCTAssertEqual(pool.liveCount, 0, label)
                    for (a, b) in [(fusedStore.gradient(fused.weight), plainStore.gradient(plain.weight)),
                                   (fusedStore.gradient(fused.bias), plainStore.gradient(plain.bias))] {
                        XCTAssertEqual(Array(UnsafeBufferPointer(start: a, count: 5)),
                                       Array(UnsafeBufferPointer(start: b, count: 5)), label)
                    }
                }
            }
        }
    }

    func testFusedActivationGradients() {
        for activation in [FusedActivation.relu, .silu] {
            let (bn, store) = make(channels: 3, activation: activation)
            let x = distinctTensor(n: 2, h: 3, w: 3, c: 3, seed: 13)
            let checker = GradientChecker(step: 1e-3, tolerance: 1e-2, kinkThreshold: activation == .relu ? 0.05 : nil)
            assertGradients(checker.check(bn, store: store, input: x, mode: .train), "BatchNorm2d+\(activation) train")
            assertGradients(GradientChecker(step: 1e-2, tolerance: 1e-2).check(bn, store: store, input: x, mode: .eval),
                            "BatchNorm2d+\(activation) eval")
        }
    }
}
