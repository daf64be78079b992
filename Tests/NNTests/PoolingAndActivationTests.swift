import XCTest
import Kernels
import NN

final class ReLUTests: XCTestCase {
    func testForward() {
        let x = Tensor(n: 1, h: 1, w: 1, c: 4, values: [-1, 0, 2, -0.5])
        XCTAssertEqual(ReLU().forward(x, mode: .eval).array, [0, 0, 2, 0])
    }

    func testGradients() {
        // Inputs at least 0.05 from the kink at 0; step 0.01 never crosses it. The kink guard is
        // on as a second line of defence.
        let x = distinctTensor(n: 2, h: 3, w: 3, c: 2, seed: 21)
        let results = GradientChecker(step: 1e-2, tolerance: 2e-3, kinkThreshold: 0.05).check(ReLU(), store: nil, input: x)
        assertGradients(results, "ReLU")
        XCTAssertEqual(results[0].skipped, 0)
    }

    /// The guard must notice when a step straddles the kink (x = 0.005, h = 0.01).
    func testKinkGuardSkipsStraddlingPoints() {
        let x = Tensor(n: 1, h: 1, w: 1, c: 10, values: [0.005, 1, -1, 2, -2, 3, -3, 4, -4, 5])
        let result = GradientChecker(step: 1e-2, kinkThreshold: 0.05).check(ReLU(), store: nil, input: x)[0]
        XCTAssertEqual(result.skipped, 1)
        XCTAssertTrue(result.passed, result.summary)
    }
}

/// Naive max-pool in Double with −∞ padding.
func referenceMaxPool(_ x: Tensor, k: Int, s: Int, p: Int) -> (values: [Double], ho: Int, wo: Int) {
    let ho = (x.h + 2 * p - k) / s + 1, wo = (x.w + 2 * p - k) / s + 1
    var y: [Double] = []
    for n in 0..<x.n { for oy in 0..<ho { for ox in 0..<wo { for c in 0..<x.c {
        var best = -Double.infinity
        for ky in 0..<k { for kx in 0..<k {
            let iy = oy * s - p + ky, ix = ox * s - p + kx
            if iy >= 0 && iy < x.h && ix >= 0 && ix < x.w {
                best = max(best, Double(x.pointer[((n * x.h + iy) * x.w + ix) * x.c + c]))
            }
        } }
        y.append(best)
    } } } }
    return (y, ho, wo)
}

final class MaxPool2dTests: XCTestCase {
    func testForwardMatchesNaive() {
        // Channel counts cover the scalar loop (3), the 8-wide loop (8) and both (11).
        for (h, w, k, s, p, c) in [(7, 6, 3, 2, 1, 3), (8, 8, 3, 2, 1, 8), (5, 5, 2, 2, 0, 11), (6, 5, 3, 1, 1, 3),
                                   (7, 7, 3, 2, 1, 11)] {
            let x = randomTensor(n: 2, h: h, w: w, c: c, seed: UInt64(h * w + k + c))
            let pool = MaxPool2d(kernelSize: k, stride: s, padding: p)
            let y = pool.forward(x, mode: .train)
            let ref = referenceMaxPool(x, k: k, s: s, p: p)
            XCTAssertEqual(y.shape, [2, ref.ho, ref.wo, c])
            XCTAssertEqual(maxAbsDifference(y.array, ref.values), 0, "\(h)×\(w)×\(c) k\(k) s\(s) p\(p)")
        }
    }

    func testGradients() {
        for c in [2, 9] {
            let x = distinctTensor(n: 2, h: 7, w: 6, c: c, seed: 31)
            let results = GradientChecker(step: 1e-2, tolerance: 2e-3, kinkThreshold: 0.05)
                .check(MaxPool2d(kernelSize: 3, stride: 2, padding: 1), store: nil, input: x)
            assertGradients(results, "MaxPool2d C=\(c)")
            XCTAssertEqual(results[0].skipped, 0)
        }
    }

    /// A NaN in a window propagates to the output (PyTorch: `val > maxval || isnan(val)`).
    func testNaNPropagates() {
        for c in [1, 8] {
            let x = randomTensor(n: 1, h: 4, w: 4, c: c, seed: 33)
            x.pointer[(1 * 4 + 1) * c] = .nan
            let y = MaxPool2d(kernelSize: 2, stride: 2).forward(x, mode: .eval)
            XCTAssertTrue(y.pointer[0].isNaN, "C=\(c)")
            XCTAssertFalse(y.pointer[c].isNaN, "C=\(c)")
        }
    }

    /// On ties the gradient goes to the first maximum in (kh, kw) order, like PyTorch, and
    /// overlapping windows accumulate.
    func testTiesRouteToFirstMaximum() {
        for c in [1, 8, 9] {
            let x = Tensor(n: 1, h: 3, w: 3, c: c, values: [Float](repeating: 1, count: 9 * c))
            let pool = MaxPool2d(kernelSize: 2, stride: 1)
            _ = pool.forward(x, mode: .train)
            let dy = Tensor(n: 1, h: 2, w: 2, c: c, values: (0..<4 * c).map { Float($0 / c + 1) })
            let expected: [Float] = [1, 2, 0, 3, 4, 0, 0, 0, 0].flatMap { [Float](repeating: $0, count: c) }
            XCTAssertEqual(pool.backward(dy).array, expected, "C=\(c)")
        }
    }
}

final class GlobalAvgPool2dTests: XCTestCase {
    func testForward() {
        let x = randomTensor(n: 2, h: 3, w: 2, c: 4, seed: 41)
        let y = GlobalAvgPool2d().forward(x, mode: .eval)
        XCTAssertEqual(y.shape, [2, 1, 1, 4])
        var expected: [Double] = []
        for n in 0..<2 { for c in 0..<4 {
            var sum = 0.0
            for p in 0..<6 { sum += Double(x.pointer[(n * 6 + p) * 4 + c]) }
            expected.append(sum / 6)
        } }
        XCTAssertLessThan(maxAbsDifference(y.array, expected), 1e-6)
    }

    func testGradients() {
        let x = randomTensor(n: 2, h: 3, w: 2, c: 4, seed: 42)
        assertGradients(GradientChecker(step: 0.1, tolerance: 2e-3).check(GlobalAvgPool2d(), store: nil, input: x),
                        "GlobalAvgPool2d")
    }
}

final class LinearTests: XCTestCase {
    func testRegistersPyTorchLayoutAndInit() {
        let store = ParameterStore()
        let fc = Linear(store, name: "fc", inFeatures: 8, outFeatures: 3)
        XCTAssertEqual(fc.weight.shape, [3, 8])
        XCTAssertEqual(fc.weight.layout, .pytorch)
        XCTAssertEqual(fc.bias?.shape, [3])
        XCTAssertEqual(fc.bias?.isWeight, false)
        guard case .uniform(let bound) = fc.weight.initializer else { return XCTFail("weight init") }
        XCTAssertEqual(bound, 1 / 8.0.squareRoot(), accuracy: 1e-12)
    }

    func testForwardAndGradients() {
        for bias in [true, false] {
            let store = ParameterStore()
            let fc = Linear(store, name: "fc", inFeatures: 5, outFeatures: 4, bias: bias)
            store.finalize(seed: 2)
            let x = randomTensor(n: 3, h: 1, w: 1, c: 5, seed: 51)
            let y = fc.forward(x, mode: .eval)
            var expected: [Double] = []
            let wt = store.value(fc.weight)
            for n in 0..<3 { for o in 0..<4 {
                var sum = fc.bias.map { Double(store.value($0)[o]) } ?? 0
                for i in 0..<5 { sum += Double(x.pointer[n * 5 + i]) * Double(wt[o * 5 + i]) }
                expected.append(sum)
            } }
            XCTAssertLessThan(maxAbsDifference(y.array, expected), 1e-5)
            assertGradients(GradientChecker(step: 0.1, tolerance: 2e-3).check(fc, store: store, input: x),
                            "Linear bias \(bias)")
        }
    }
}
