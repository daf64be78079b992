import XCTest
import Kernels
import NN

// One reusable finite-difference checker for every layer (after Caffe's GradientChecker,
// include/caffe/test/test_gradient_check_util.hpp).
//
// The scalar loss is L = Σ output·R with a fixed random R, so every output element carries a
// different weight and a gradient routed to the wrong index cannot pass by symmetry (with
// L = Σ output, many wrong permutations would). Perturbations are made in Float on the real
// buffers; the loss is summed in Double and the difference quotient uses the perturbation
// actually applied (x ± h rounded to Float), so the only noise is the layer's own rounding.
//
// Error per element: |analytic − numeric| / max(|analytic|, |numeric|, floor), floor = the RMS of
// the analytic gradient (and ≥ 1e-3), so tiny gradients are judged against the tensor's scale
// rather than their own. With tolerance 1e-2 a misrouted gradient (error ≈ 1) fails by two
// orders of magnitude; `testCheckerCatchesMisroutedGradient` proves that on a broken layer.

struct GradientCheckResult {
    var name: String
    var checked = 0
    var skipped = 0
    var worstIndex = -1
    var worstAnalytic: Double = 0
    var worstNumeric: Double = 0
    var worstError: Double = 0
    var tolerance: Double
    var passed: Bool { worstError <= tolerance && skipped * 10 <= max(checked + skipped, 1) }

    var summary: String {
        "\(name): worst index \(worstIndex) analytic \(worstAnalytic) numeric \(worstNumeric) " +
            "relative error \(worstError) (tolerance \(tolerance)), checked \(checked), skipped \(skipped) at kinks"
    }
}

struct GradientChecker {
    /// Finite-difference step, absolute (inputs and parameters in tests are O(1)).
    var step: Float = 1e-2
    var tolerance: Double = 1e-2
    /// Kink guard for piecewise-linear layers (ReLU, max-pool): if the one-sided slopes
    /// (L+ − L0)/h and (L0 − L−)/h disagree by more than `kinkThreshold` (relative to the
    /// tensor's gradient scale), the step crossed a kink and the central difference means
    /// nothing, so the element is skipped. At most 10% of elements may be skipped.
    var kinkThreshold: Double? = nil

    /// Compares `analytic` with central differences of `loss` over `values[0..<count]`.
    func compare(_ name: String, analytic: [Float], values: UnsafeMutablePointer<Float>,
                 loss: () -> Double) -> GradientCheckResult {
        var result = GradientCheckResult(name: name, tolerance: tolerance)
        let rms = (analytic.reduce(0.0) { $0 + Double($1) * Double($1) } / Double(max(analytic.count, 1))).squareRoot()
        let floor = max(rms, 1e-3)
        let base = kinkThreshold == nil ? 0 : loss()
        for i in 0..<analytic.count {
            let original = values[i]
            let plus = original + step, minus = original - step
            values[i] = plus
            let lPlus = loss()
            values[i] = minus
            let lMinus = loss()
            values[i] = original
            let numeric = (lPlus - lMinus) / (Double(plus) - Double(minus))
            if let kink = kinkThreshold {
                let right = (lPlus - base) / (Double(plus) - Double(original))
                let left = (base - lMinus) / (Double(original) - Double(minus))
                if abs(right - left) > kink * floor {
                    result.skipped += 1
                    continue
                }
            }
            let a = Double(analytic[i])
            // NaN (a poisoned pool tensor read by mistake) must fail, not compare false.
            let relative = abs(a - numeric) / max(abs(a), abs(numeric), floor)
            let error = relative.isNaN ? .infinity : relative
            result.checked += 1
            if error > result.worstError || result.worstIndex < 0 {
                result.worstError = error
                result.worstIndex = i
                result.worstAnalytic = a
                result.worstNumeric = numeric
            }
        }
        return result
    }

    /// Checks the input gradient and every parameter gradient of `layer` at `input`, with
    /// L = Σ output·R. Parameters of `store` (all of them, so the store should hold only this
    /// layer's parameters) are perturbed in place and restored.
    ///
    /// Backward runs under Note [Gradient pool]: R is handed over as a tensor of `pool` (by
    /// default one that fills every tensor with NaN when acquired and when released, so a
    /// gradient read before it is written, or after it went back to the pool, shows up as a
    /// failed element), and a tensor still held after the returned gradient is released is
    /// reported as a failed result. `pool: nil` hands R over unmanaged, as a loss does.
    func check(_ layer: any Layer, store: ParameterStore?, input: Tensor, mode: Mode = .train,
               seed: UInt64 = 99, pool: TensorPool? = TensorPool(poisonsTensors: true)) -> [GradientCheckResult] {
        let probe = layer.forward(input, mode: mode)
        let r = randomTensor(n: probe.n, h: probe.h, w: probe.w, c: probe.c, seed: seed)
        let loss: () -> Double = {
            let y = layer.forward(input, mode: mode)
            precondition(y.shape == r.shape)
            var sum = 0.0
            for i in 0..<y.count { sum += Double(y.pointer[i]) * Double(r.pointer[i]) }
            return sum
        }
        // Analytic gradients from one forward/backward.
        store?.zeroGradients()
        _ = layer.forward(input, mode: mode)
        let outputGradient = pool.map { pooledCopy(r, in: $0) } ?? r
        let dInput = layer.backward(outputGradient)
        precondition(dInput.shape == input.shape, "input gradient shape \(dInput.shape) ≠ input shape \(input.shape)")
        let dInputValues = dInput.array
        dInput.release()
        var leaks: [GradientCheckResult] = []
        if let pool, pool.liveCount != 0 {
            var leak = GradientCheckResult(name: "pool: \(pool.liveCount) tensors still held after backward", tolerance: 0)
            leak.checked = 1
            leak.worstError = Double(pool.liveCount)
            leaks.append(leak)
        }
        var parameterGradients: [(ParameterEntry, [Float])] = []
        if let store {
            for p in store.parameters {
                parameterGradients.append((p, Array(UnsafeBufferPointer(start: store.gradient(p), count: p.count))))
            }
        }
        var results = [compare("input", analytic: dInputValues, values: input.pointer, loss: loss)]
        if let store {
            for (p, g) in parameterGradients {
                results.append(compare(p.name, analytic: g, values: store.value(p), loss: loss))
            }
        }
        return results + leaks
    }
}

/// Asserts every result passed, printing the worst element of each failure.
func assertGradients(_ results: [GradientCheckResult], _ label: String,
                     file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertFalse(results.isEmpty, file: file, line: line)
    if ProcessInfo.processInfo.environment["GRADCHECK_VERBOSE"] != nil {
        for r in results { print("\(label): \(r.summary)") }
    }
    for r in results where !r.passed {
        XCTFail("\(label): \(r.summary)", file: file, line: line)
    }
}

/// `t`'s values in a tensor of `pool` with one hold: a gradient as a model hands it to
/// backward (Note [Gradient pool]).
func pooledCopy(_ t: Tensor, in pool: TensorPool) -> Tensor {
    let copy = pool.acquire(like: t)
    copy.pointer.update(from: t.pointer, count: t.count)
    return copy
}

/// Uniform values in [-scale, scale) from a fixed seed.
func randomTensor(n: Int, h: Int, w: Int, c: Int, seed: UInt64, scale: Float = 1) -> Tensor {
    let t = Tensor(n: n, h: h, w: w, c: c)
    var rng = SplitMix64(seed: seed)
    for i in 0..<t.count { t.pointer[i] = (rng.nextUniform() * 2 - 1) * scale }
    return t
}

/// Values whose magnitudes are at least `gap` apart and away from zero (|x| ≥ gap): a random
/// permutation of ±(k + 1)·gap. Keeps max-pool windows and ReLU inputs away from kinks for
/// finite-difference steps smaller than gap / 2.
func distinctTensor(n: Int, h: Int, w: Int, c: Int, seed: UInt64, gap: Float = 0.05) -> Tensor {
    let t = Tensor(n: n, h: h, w: w, c: c)
    var rng = SplitMix64(seed: seed)
    var values = (0..<t.count).map { Float($0 + 1) * gap * ($0 % 2 == 0 ? 1 : -1) }
    values.shuffle(using: &rng)
    for i in 0..<t.count { t.pointer[i] = values[i] }
    return t
}

func maxAbsDifference(_ a: [Float], _ b: [Double]) -> Double {
    precondition(a.count == b.count, "sizes \(a.count) and \(b.count) differ")
    var worst = 0.0
    for i in 0..<a.count { worst = max(worst, abs(Double(a[i]) - b[i])) }
    return worst
}
