import Kernels
import NN
import XCTest

/// Gradients of a convolution in Double: dX and dW (OHWI) for dY, PyTorch semantics.
private func referenceConvBackward(_ x: Tensor, _ dy: Tensor, weight: UnsafePointer<Float>, _ c: ConvCase)
    -> (dx: [Double], dw: [Double]) {
    var dx = [Double](repeating: 0, count: x.count)
    var dw = [Double](repeating: 0, count: c.cout * c.kh * c.kw * c.cin)
    for n in 0..<c.n {
        for oy in 0..<c.outH {
            for ox in 0..<c.outW {
                for o in 0..<c.cout {
                    let g = Double(dy.pointer[((n * c.outH + oy) * c.outW + ox) * c.cout + o])
                    for ky in 0..<c.kh {
                        for kx in 0..<c.kw {
                            let iy = oy * c.stride - c.ph + ky, ix = ox * c.stride - c.pw + kx
                            guard iy >= 0, iy < c.h, ix >= 0, ix < c.w else { continue }
                            for ci in 0..<c.cin {
                                let xi = ((n * c.h + iy) * c.w + ix) * c.cin + ci
                                let wi = ((o * c.kh + ky) * c.kw + kx) * c.cin + ci
                                dx[xi] += g * Double(weight[wi])
                                dw[wi] += g * Double(x.pointer[xi])
                            }
                        }
                    }
                }
            }
        }
    }
    return (dx, dw)
}

private func relativeError(_ a: [Float], _ reference: [Double]) -> Double {
    let scale = reference.reduce(0) { max($0, abs($1)) }
    return maxAbsDifference(a, reference) / max(scale, 1e-30)
}

final class WinogradConvolutionTests: XCTestCase {
    /// 3×3 stride-1 shapes that exercise the tiling: odd and even outputs (a last tile half
    /// outside), outputs smaller than a tile, padding 0 to 2 and unequal on the two axes,
    /// channel counts that are not multiples of the 8 SIMD lanes, bias, and chunks of images.
    let cases: [ConvCase] = [
        ConvCase(n: 2, h: 6, w: 6, cin: 8, cout: 8),
        ConvCase(n: 2, h: 7, w: 5, cin: 3, cout: 5, bias: true),
        ConvCase(n: 1, h: 1, w: 1, cin: 9, cout: 4),                            // 1×1 output: one tile, mostly padding
        ConvCase(n: 3, h: 2, w: 3, cin: 16, cout: 17),
        ConvCase(n: 2, h: 9, w: 8, cin: 13, cout: 6, padding: 0),              // valid convolution, 7×6 output
        ConvCase(n: 2, h: 4, w: 5, cin: 5, cout: 7, padding: 2, bias: true),   // output larger than the input
        ConvCase(n: 2, h: 5, w: 6, cin: 4, cout: 20, pad: (1, 0)),             // unequal padding
        ConvCase(n: 5, h: 6, w: 7, cin: 12, cout: 10, bias: true, workspaceBytes: 1), // one image per chunk
        ConvCase(n: 7, h: 8, w: 8, cin: 24, cout: 32, workspaceBytes: 3 * 16 * 16 * 56 * 4), // chunks of 3, 3, 1
    ]

    private func make(_ c: ConvCase, _ algorithm: ConvolutionAlgorithm, seed: UInt64 = 3) -> (Conv2d, ParameterStore) {
        let (conv, store) = c.make(seed: seed)
        conv.algorithm = algorithm
        return (conv, store)
    }

    /// Forward and both gradients against the Double reference, for every case, with the
    /// error scaled by the largest reference value. F(2×2, 3×3) stays within a few ulps of
    /// that scale, as the direct path does.
    func testForwardAndGradientsMatchDoubleReference() {
        for algorithm in [ConvolutionAlgorithm.winogradF2, .winogradF4] { check(algorithm, tolerance: algorithm == .winogradF2 ? 1e-6 : 5e-6) }
    }

    private func check(_ algorithm: ConvolutionAlgorithm, tolerance: Double) {
        let pool = TensorPool()
        for (i, c) in cases.enumerated() {
            let (conv, store) = make(c, algorithm)
            let x = randomTensor(n: c.n, h: c.h, w: c.w, c: c.cin, seed: UInt64(i) + 40)
            let dy = randomTensor(n: c.n, h: c.outH, w: c.outW, c: c.cout, seed: UInt64(i) + 80)
            let y = conv.forward(x, mode: .train)
            XCTAssertEqual(y.shape, [c.n, c.outH, c.outW, c.cout], "\(c)")
            let expected = referenceConv(x, weight: store.value(conv.weight),
                                         bias: conv.bias.map { UnsafePointer(store.value($0)) }, c)
            XCTAssertLessThan(relativeError(y.array, expected), tolerance, "\(algorithm) forward \(c)")

            let dx = conv.backward(pooledCopy(dy, in: pool))
            let reference = referenceConvBackward(x, dy, weight: store.value(conv.weight), c)
            XCTAssertLessThan(relativeError(dx.array, reference.dx), tolerance, "\(algorithm) dX \(c)")
            dx.release()
            let dw = Array(UnsafeBufferPointer(start: store.gradient(conv.weight), count: reference.dw.count))
            XCTAssertLessThan(relativeError(dw, reference.dw), tolerance, "\(algorithm) dW \(c)")
            if let bias = conv.bias {
                var db = [Double](repeating: 0, count: c.cout)
                for r in 0..<(c.n * c.outH * c.outW) { for o in 0..<c.cout { db[o] += Double(dy.pointer[r * c.cout + o]) } }
                let got = Array(UnsafeBufferPointer(start: store.gradient(bias), count: c.cout))
                XCTAssertLessThan(relativeError(got, db), tolerance, "\(algorithm) db \(c)")
            }
        }
    }

    /// The algorithm really is taken (its kernels run) for 3×3 stride 1, and not for stride 2,
    /// grouped, or when `im2col` is asked for.
    func testWinogradRunsExactlyWhereItApplies() {
        func ranWinograd(_ c: ConvCase, _ algorithm: ConvolutionAlgorithm) -> Bool {
            let (conv, _) = make(c, algorithm)
            Profiler.reset()
            Profiler.isEnabled = true
            defer { Profiler.isEnabled = false }
            _ = conv.forward(randomTensor(n: c.n, h: c.h, w: c.w, c: c.cin, seed: 1), mode: .eval)
            return Profiler.snapshot().contains { $0.name == "Winograd transforms" }
        }
        XCTAssertTrue(ranWinograd(ConvCase(cin: 4, cout: 4), .automatic))
        XCTAssertFalse(ranWinograd(ConvCase(cin: 4, cout: 4), .im2col))
        XCTAssertFalse(ranWinograd(ConvCase(h: 6, w: 6, cin: 4, cout: 4, stride: 2), .automatic))
        XCTAssertFalse(ranWinograd(ConvCase(cin: 4, cout: 6, groups: 2), .automatic))
        XCTAssertFalse(ranWinograd(ConvCase(cin: 4, cout: 4, k: 1, padding: 0), .automatic))
    }

    /// Finite differences on the Winograd paths themselves (not only agreement with Double).
    func testGradientCheck() {
        for algorithm in [ConvolutionAlgorithm.winogradF2, .winogradF4] {
            for (i, c) in [ConvCase(n: 2, h: 5, w: 4, cin: 3, cout: 4, bias: true),
                           ConvCase(n: 1, h: 3, w: 3, cin: 9, cout: 2, padding: 2)].enumerated() {
                let (conv, store) = make(c, algorithm, seed: UInt64(i) + 11)
                let x = randomTensor(n: c.n, h: c.h, w: c.w, c: c.cin, seed: UInt64(i) + 12)
                let results = GradientChecker(step: 0.1, tolerance: 2e-3).check(conv, store: store, input: x)
                assertGradients(results, "\(algorithm) Conv2d \(c)")
            }
        }
    }

    /// Parameter gradients accumulate across backward calls and chunks, and a first
    /// convolution (no input gradient) still gets its weight gradient.
    func testWeightGradientAccumulatesAndSkipsInputGradient() {
        for algorithm in [ConvolutionAlgorithm.winogradF2, .winogradF4] { checkAccumulation(algorithm) }
    }

    private func checkAccumulation(_ algorithm: ConvolutionAlgorithm) {
        let c = ConvCase(n: 3, h: 6, w: 6, cin: 8, cout: 8, bias: true, workspaceBytes: 1)
        let (conv, store) = make(c, algorithm)
        let pool = TensorPool()
        let x = randomTensor(n: 3, h: 6, w: 6, c: 8, seed: 5)
        let dy = randomTensor(n: 3, h: 6, w: 6, c: 8, seed: 6)
        _ = conv.forward(x, mode: .train)
        conv.backward(pooledCopy(dy, in: pool)).release()
        let once = Array(UnsafeBufferPointer(start: store.gradients, count: store.parameterCount))
        conv.computesInputGradient = false
        _ = conv.forward(x, mode: .train)
        conv.backward(pooledCopy(dy, in: pool)).release()
        let twice = Array(UnsafeBufferPointer(start: store.gradients, count: store.parameterCount))
        XCTAssertLessThan(maxAbsDifference(twice, once.map { 2 * Double($0) }), 1e-4, "\(algorithm)")
    }

    /// The numerical error the README states, on a layer of ResNet's size and scale (64
    /// channels, 16×16, Kaiming-initialised weights, unit inputs), relative to the largest
    /// output against Double: F(2×2) within 4× the direct path's and below 1e-6, F(4×4) below 1e-5.
    func testErrorOnAResNetLayerIsCloseToTheDirectPath() {
        let c = ConvCase(n: 2, h: 16, w: 16, cin: 64, cout: 64)
        let x = randomTensor(n: c.n, h: c.h, w: c.w, c: c.cin, seed: 21)
        var errors: [ConvolutionAlgorithm: Double] = [:]
        var reference: [Double] = []
        for algorithm in [ConvolutionAlgorithm.im2col, .winogradF2, .winogradF4] {
            let (conv, store) = make(c, algorithm)  // the same seed: the same weights
            if reference.isEmpty { reference = referenceConv(x, weight: store.value(conv.weight), bias: nil, c) }
            errors[algorithm] = relativeError(conv.forward(x, mode: .eval).array, reference)
        }
        let direct = errors[.im2col]!, f2 = errors[.winogradF2]!, f4 = errors[.winogradF4]!
        XCTAssertLessThan(f2, max(4 * direct, 1e-7), "F(2×2) \(f2) vs direct \(direct)")
        XCTAssertLessThan(f2, 1e-6)
        XCTAssertLessThan(f4, 1e-5, "F(4×4) \(f4) vs direct \(direct)")
    }
}
