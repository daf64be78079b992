import XCTest
import Kernels

private func values(_ count: Int, seed: UInt64) -> [Float] {
    var rng = SplitMix64(seed: seed)
    return (0..<count).map { _ in rng.nextUniform() * 2 - 1 }
}

final class Im2colTests: XCTestCase {
    private let geometries = [
        ConvGeometry(inHeight: 5, inWidth: 4, channels: 3, kernelHeight: 3, kernelWidth: 3, stride: 1,
                     paddingHeight: 1, paddingWidth: 1),
        ConvGeometry(inHeight: 7, inWidth: 6, channels: 2, kernelHeight: 3, kernelWidth: 2, stride: 2,
                     paddingHeight: 1, paddingWidth: 0),
        ConvGeometry(inHeight: 5, inWidth: 5, channels: 4, kernelHeight: 3, kernelWidth: 3, stride: 2,
                     paddingHeight: 1, paddingWidth: 1, groups: 2),
    ]

    /// Every column entry equals the input at (iy, ix, g·Cg + ci) for column (g, ky, kx, ci).
    func testForwardMatchesNaiveGather() {
        for g in geometries {
            let images = 2, cg = g.channels / g.groups
            let x = values(images * g.inHeight * g.inWidth * g.channels, seed: 1)
            var col = [Float](repeating: .nan, count: images * g.outHeight * g.outWidth * g.columns)
            x.withUnsafeBufferPointer { xp in col.withUnsafeMutableBufferPointer { cp in
                im2colForward(xp.baseAddress!, images: images, geometry: g, columns: cp.baseAddress!)
            } }
            var row = 0
            for n in 0..<images { for oy in 0..<g.outHeight { for ox in 0..<g.outWidth {
                for gi in 0..<g.groups { for ky in 0..<g.kernelHeight { for kx in 0..<g.kernelWidth { for ci in 0..<cg {
                    let iy = oy * g.stride - g.paddingHeight + ky, ix = ox * g.stride - g.paddingWidth + kx
                    let inside = iy >= 0 && iy < g.inHeight && ix >= 0 && ix < g.inWidth
                    let expected = inside ? x[((n * g.inHeight + iy) * g.inWidth + ix) * g.channels + gi * cg + ci] : 0
                    let column = gi * g.columnsPerGroup + (ky * g.kernelWidth + kx) * cg + ci
                    XCTAssertEqual(col[row * g.columns + column], expected, "\(g) row \(row) column \(column)")
                } } } }
                row += 1
            } } }
        }
    }

    /// col2im is the adjoint of im2col: ⟨im2col(x), c⟩ = ⟨x, col2im(c)⟩.
    func testBackwardIsAdjoint() {
        for g in geometries {
            let images = 2
            let x = values(images * g.inHeight * g.inWidth * g.channels, seed: 2)
            let c = values(images * g.outHeight * g.outWidth * g.columns, seed: 3)
            var col = [Float](repeating: 0, count: c.count)
            var back = [Float](repeating: 0, count: x.count)
            x.withUnsafeBufferPointer { xp in col.withUnsafeMutableBufferPointer { cp in
                im2colForward(xp.baseAddress!, images: images, geometry: g, columns: cp.baseAddress!)
            } }
            c.withUnsafeBufferPointer { cp in back.withUnsafeMutableBufferPointer { bp in
                im2colBackward(cp.baseAddress!, images: images, geometry: g, dInput: bp.baseAddress!)
            } }
            let lhs = zip(col, c).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
            let rhs = zip(x, back).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
            XCTAssertEqual(lhs, rhs, accuracy: 1e-4, "\(g)")
        }
    }

    func testOutputSizeFollowsPyTorch() {
        let g = ConvGeometry(inHeight: 224, inWidth: 224, channels: 3, kernelHeight: 7, kernelWidth: 7,
                             stride: 2, paddingHeight: 3, paddingWidth: 3)
        XCTAssertEqual(g.outHeight, 112)
        XCTAssertEqual(ConvGeometry(inHeight: 112, inWidth: 112, channels: 1, kernelHeight: 3, kernelWidth: 3,
                                    stride: 2, paddingHeight: 1, paddingWidth: 1).outWidth, 56)
    }
}

final class ElementwiseTests: XCTestCase {
    func testReLUForwardBackward() {
        let x: [Float] = [-2, 0, 3, -0.5, 1]
        var y = [Float](repeating: 0, count: 5), dx = [Float](repeating: 9, count: 5)
        x.withUnsafeBufferPointer { reluForward($0.baseAddress!, &y, count: 5) }
        XCTAssertEqual(y, [0, 0, 3, 0, 1])
        let dy: [Float] = [1, 2, 3, 4, 5]
        dy.withUnsafeBufferPointer { d in y.withUnsafeBufferPointer { reluBackward(d.baseAddress!, output: $0.baseAddress!, &dx, count: 5) } }
        XCTAssertEqual(dx, [0, 0, 3, 0, 5])
    }

    func testSumRowsAccumulates() {
        let x: [Float] = [1, 2, 3, 4, 5, 6]
        var sums: [Float] = [10, 20]
        let scratch = UnsafeMutablePointer<Double>.allocate(capacity: 2)
        defer { scratch.deallocate() }
        x.withUnsafeBufferPointer { sumRowsAccumulate($0.baseAddress!, rows: 3, columns: 2, into: &sums, scratch: scratch) }
        XCTAssertEqual(sums, [19, 32])
    }

    func testBroadcastRows() {
        let row: [Float] = [1, 2]
        var y = [Float](repeating: 0, count: 6)
        row.withUnsafeBufferPointer { broadcastRows($0.baseAddress!, &y, rows: 3, columns: 2) }
        XCTAssertEqual(y, [1, 2, 1, 2, 1, 2])
    }
}

final class ReductionTests: XCTestCase {
    /// Matches a plain Double sum (odd lengths exercise the tail) and turns non-finite on one NaN or ∞.
    func testSumOfSquares() {
        for count in [1, 7, 4097, 10_001] {
            let x = values(count, seed: UInt64(count))
            let expected = x.reduce(0.0) { $0 + Double($1) * Double($1) }
            XCTAssertEqual(x.withUnsafeBufferPointer { sumOfSquares($0.baseAddress!, count: count) }, expected,
                           accuracy: 1e-5 * max(expected, 1))
        }
        for bad in [Float.nan, .infinity] {
            var x = values(9000, seed: 3)
            x[8191] = bad
            XCTAssertFalse(x.withUnsafeBufferPointer { sumOfSquares($0.baseAddress!, count: x.count) }.isFinite)
        }
    }
}

final class ActivationTests: XCTestCase {
    /// The lane sigmoid and SiLU against Double references over the whole float range that
    /// matters (|x| ≤ 100 in steps of 1/64, odd counts for the tail), within 4 float ulps of σ,
    /// subnormal results included.
    func testSigmoidAndSiLUAgainstDouble() {
        let xs = stride(from: -100.0, through: 100.0, by: 1.0 / 64).map { Float($0) } + [0, -0.0, 1e-30, -1e-30, 87.5, -87.5, 200, -200]
        var sig = [Float](repeating: 0, count: xs.count), silu = sig
        xs.withUnsafeBufferPointer { x in
            sig.withUnsafeMutableBufferPointer { sigmoidForward(x.baseAddress!, $0.baseAddress!, count: xs.count) }
            silu.withUnsafeMutableBufferPointer { siluForward(x.baseAddress!, $0.baseAddress!, count: xs.count) }
        }
        for (i, x) in xs.enumerated() {
            let s = 1 / (1 + exp(-Double(x)))
            XCTAssertEqual(Double(sig[i]), s, accuracy: 4 * Double(Float(s).ulp) + 1e-45, "σ(\(x))")
            // x·σ(x) multiplies by a subnormal σ for x < −87: |x| × σ's half-ulp (1.4e-45 / 2) on top.
            XCTAssertEqual(Double(silu[i]), Double(x) * s,
                           accuracy: 4 * Double(Float(Double(x) * s).ulp) + Double(abs(x)) * 1.5e-45, "silu(\(x))")
            XCTAssertEqual(sigmoid(x), sig[i], "the scalar form computes the same")
        }
    }
}

/// Note [In-place loops]: the kernels a backward runs with dx over dy (or a residual sum over
/// one operand) give, in place, exactly the bits they give into a separate buffer; counts that
/// are not multiples of the vector width exercise the tails.
final class InPlaceKernelTests: XCTestCase {
    /// `kernel(source, destination)` run into a fresh buffer and over a copy of `source` itself.
    private func assertInPlaceMatches(_ name: String, _ source: [Float],
                                      _ kernel: (UnsafePointer<Float>, UnsafeMutablePointer<Float>) -> Void) {
        var separate = [Float](repeating: .nan, count: source.count)
        source.withUnsafeBufferPointer { s in
            separate.withUnsafeMutableBufferPointer { kernel(s.baseAddress!, $0.baseAddress!) }
        }
        var inPlace = source
        inPlace.withUnsafeMutableBufferPointer { kernel(UnsafePointer($0.baseAddress!), $0.baseAddress!) }
        XCTAssertEqual(inPlace, separate, "\(name), \(source.count) elements")
    }

    func testInPlaceEqualsOutOfPlace() {
        for count in [1, 7, 8, 29, 1037] {
            let a = values(count, seed: 1), b = values(count, seed: 2)
            let reluOutput = values(count, seed: 3).map { max($0, 0) }
            let sigmoidOutput = values(count, seed: 4).map { 1 / (1 + exp(-4 * $0)) }
            let input = values(count, seed: 5).map { 6 * $0 }
            assertInPlaceMatches("addForward over a", a) { x, out in addForward(x, b, out, count: count) }
            assertInPlaceMatches("addForward over b", b) { x, out in addForward(a, x, out, count: count) }
            assertInPlaceMatches("addReLUForward over a", a) { x, out in addReLUForward(x, b, out, count: count) }
            assertInPlaceMatches("addReLUForward over b", b) { x, out in addReLUForward(a, x, out, count: count) }
            assertInPlaceMatches("reluBackward", a) { dy, dx in reluBackward(dy, output: reluOutput, dx, count: count) }
            assertInPlaceMatches("sigmoidBackward", a) { dy, dx in
                sigmoidBackward(dy, output: sigmoidOutput, dx, count: count)
            }
            assertInPlaceMatches("siluBackward", a) { dy, dx in siluBackward(dy, input: input, dx, count: count) }
            assertInPlaceMatches("siluForward", input) { x, y in siluForward(x, y, count: count) }
        }
    }
}
