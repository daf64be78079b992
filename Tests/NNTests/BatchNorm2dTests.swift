import XCTest
import Kernels
import NN

final class BatchNorm2dTests: XCTestCase {
    private func make(channels: Int, seed: UInt64 = 3) -> (BatchNorm2d, ParameterStore) {
        let store = ParameterStore()
        let bn = BatchNorm2d(store, name: "bn1", channels: channels)
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
}
