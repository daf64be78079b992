import Kernels
import NN
import XCTest

/// Naive average pool in Double, PyTorch's window and divisor rules (ceil_mode = false).
func referenceAvgPool(_ x: Tensor, k: Int, s: Int, p: Int, countIncludePad: Bool) -> (values: [Double], ho: Int, wo: Int) {
    let ho = (x.h + 2 * p - k) / s + 1, wo = (x.w + 2 * p - k) / s + 1
    var y: [Double] = []
    for n in 0..<x.n { for oy in 0..<ho { for ox in 0..<wo { for c in 0..<x.c {
        var sum = 0.0, inBounds = 0
        for ky in 0..<k { for kx in 0..<k {
            let iy = oy * s - p + ky, ix = ox * s - p + kx
            if iy >= 0 && iy < x.h && ix >= 0 && ix < x.w {
                sum += Double(x.pointer[((n * x.h + iy) * x.w + ix) * x.c + c])
                inBounds += 1
            }
        } }
        // With padding ≤ k/2 and ceil_mode off, the padded window is always k×k.
        y.append(sum / Double(countIncludePad ? k * k : inBounds))
    } } } }
    return (y, ho, wo)
}

final class AvgPool2dTests: XCTestCase {
    static let cases = [(5, 5, 3, 1, 1), (6, 7, 3, 2, 1), (4, 4, 2, 2, 0), (7, 6, 3, 2, 0), (1, 1, 3, 1, 1)]

    func testForwardMatchesNaive() {
        for include in [false, true] {
            for (h, w, k, s, p) in Self.cases {
                let x = randomTensor(n: 2, h: h, w: w, c: 3, seed: UInt64(h * w + k))
                let y = AvgPool2d(kernelSize: k, stride: s, padding: p, countIncludePad: include).forward(x, mode: .train)
                let ref = referenceAvgPool(x, k: k, s: s, p: p, countIncludePad: include)
                XCTAssertEqual(y.shape, [2, ref.ho, ref.wo, 3])
                XCTAssertLessThan(maxAbsDifference(y.array, ref.values), 1e-6, "\(h)×\(w) k\(k) s\(s) p\(p) include \(include)")
            }
        }
    }

    /// count_include_pad = False: a corner of a 3×3/1/1 window averages its 4 in-bounds inputs.
    func testCornerDivisorExcludesPadding() {
        let x = Tensor(n: 1, h: 2, w: 2, c: 1, values: [1, 2, 3, 4])
        XCTAssertEqual(AvgPool2d(kernelSize: 3, stride: 1, padding: 1, countIncludePad: false).forward(x, mode: .eval).array,
                       [2.5, 2.5, 2.5, 2.5])
        XCTAssertEqual(AvgPool2d(kernelSize: 3, stride: 1, padding: 1, countIncludePad: true).forward(x, mode: .eval).array,
                       [Float](repeating: 10 / 9, count: 4))
    }

    func testGradients() {
        for include in [false, true] {
            for (i, (h, w, k, s, p)) in Self.cases.enumerated() {
                let x = randomTensor(n: 2, h: h, w: w, c: 3, seed: UInt64(i) + 40)
                let pool = AvgPool2d(kernelSize: k, stride: s, padding: p, countIncludePad: include)
                // Linear in x: a large step is exact up to rounding.
                assertGradients(GradientChecker(step: 0.1, tolerance: 2e-3).check(pool, store: nil, input: x),
                                "AvgPool2d \(h)×\(w) k\(k) s\(s) p\(p) include \(include)")
            }
        }
    }
}

final class ConcatTests: XCTestCase {
    /// Three branches of different widths (one parameterless) on the same input.
    func makeConcat(_ store: ParameterStore) -> Concat {
        Concat([
            Conv2d(store, name: "b0", inChannels: 3, outChannels: 2, kernelSize: 1, bias: true),
            Sequential([
                Conv2d(store, name: "b1.0", inChannels: 3, outChannels: 4, kernelSize: (1, 3), padding: (0, 1)),
                Conv2d(store, name: "b1.1", inChannels: 4, outChannels: 3, kernelSize: (3, 1), padding: (1, 0)),
            ]),
            AvgPool2d(kernelSize: 3, stride: 1, padding: 1, countIncludePad: false),
        ])
    }

    func testForwardConcatenatesChannelsInBranchOrder() {
        let store = ParameterStore()
        let concat = makeConcat(store)
        store.finalize(seed: 2)
        let x = randomTensor(n: 2, h: 4, w: 5, c: 3, seed: 3)
        let parts = concat.branches.map { $0.forward(x, mode: .eval).array }
        let y = concat.forward(x, mode: .eval)
        XCTAssertEqual(y.shape, [2, 4, 5, 2 + 3 + 3])
        let widths = [2, 3, 3]
        for row in 0..<(2 * 4 * 5) {
            var offset = 0
            for (b, c) in widths.enumerated() {
                for ch in 0..<c { XCTAssertEqual(y.pointer[row * 8 + offset + ch], parts[b][row * c + ch]) }
                offset += c
            }
        }
    }

    func testGradients() {
        let store = ParameterStore()
        let concat = makeConcat(store)
        store.finalize(seed: 5)
        let x = randomTensor(n: 2, h: 4, w: 5, c: 3, seed: 6)
        assertGradients(GradientChecker(step: 0.05, tolerance: 2e-3).check(concat, store: store, input: x), "Concat")
    }

    /// Stride-2 branches next to a max-pool (Mixed_6a's shape), where the pool is a kink.
    func testGradientsWithMaxPoolBranch() {
        let store = ParameterStore()
        let concat = Concat([
            Conv2d(store, name: "b0", inChannels: 2, outChannels: 3, kernelSize: 3, stride: 2),
            MaxPool2d(kernelSize: 3, stride: 2),
        ])
        store.finalize(seed: 7)
        let x = distinctTensor(n: 2, h: 5, w: 5, c: 2, seed: 8)
        assertGradients(GradientChecker(step: 1e-2, tolerance: 2e-3, kinkThreshold: 0.05).check(concat, store: store, input: x),
                        "Concat with max-pool")
    }
}

final class ScaledResidualBlockTests: XCTestCase {
    /// A Block17/Block8-shaped block at toy width: 1×1 | 1×1 → 1×3 → 3×1, each conv + BN + ReLU,
    /// then the 1×1 projection with bias.
    func makeBlock(_ store: ParameterStore, channels: Int, scale: Float, relu: Bool) -> ScaledResidualBlock {
        func cna(_ name: String, _ i: Int, _ o: Int, _ k: (Int, Int), _ p: (Int, Int)) -> Sequential {
            Sequential([
                Conv2d(store, name: "\(name).conv", inChannels: i, outChannels: o, kernelSize: k, padding: p,
                       weightInit: .pytorchDefault),
                BatchNorm2d(store, name: "\(name).bn", channels: o, eps: 1e-3, activation: .relu),
            ])
        }
        let branches = Concat([
            cna("branch0", channels, 2, (1, 1), (0, 0)),
            Sequential([cna("branch1.0", channels, 2, (1, 1), (0, 0)), cna("branch1.1", 2, 3, (1, 3), (0, 1)),
                        cna("branch1.2", 3, 3, (3, 1), (1, 0))]),
        ])
        let projection = Conv2d(store, name: "conv2d", inChannels: 5, outChannels: channels, kernelSize: 1, bias: true,
                                weightInit: .pytorchDefault)
        return ScaledResidualBlock(branches: branches, projection: projection, scale: scale, relu: relu)
    }

    func testForwardIsScaledResidual() {
        for relu in [true, false] {
            let store = ParameterStore()
            let block = makeBlock(store, channels: 4, scale: 0.17, relu: relu)
            store.finalize(seed: 1)
            let x = randomTensor(n: 2, h: 3, w: 3, c: 4, seed: 2)
            let branch = block.projection.forward(block.branches.forward(x, mode: .train), mode: .train).array
            let expected = (0..<x.count).map { i -> Double in
                let v = Double(x.pointer[i]) + 0.17 * Double(branch[i])
                return relu ? max(v, 0) : v
            }
            XCTAssertLessThan(maxAbsDifference(block.forward(x, mode: .train).array, expected), 1e-6)
        }
    }

    func testGradients() {
        for (scale, relu) in [(Float(0.17), true), (0.10, true), (1.0, false)] {
            let store = ParameterStore()
            let block = makeBlock(store, channels: 4, scale: scale, relu: relu)
            store.finalize(seed: 4)
            let x = randomTensor(n: 3, h: 4, w: 4, c: 4, seed: 21)
            var checker = GradientChecker(step: 1e-3, tolerance: 5e-2, kinkThreshold: 0.05)
            checker.step = 5e-4
            assertGradients(checker.check(block, store: store, input: x), "ScaledResidualBlock scale \(scale) relu \(relu)")
        }
    }

    /// Outputs live in tensors the layers own and gradients in the pool's: later steps reuse
    /// both (the pool's capacities settle within two steps, then it allocates nothing more).
    func testBuffersAreReusedAcrossSteps() {
        let store = ParameterStore()
        let block = makeBlock(store, channels: 4, scale: 0.2, relu: true)
        store.finalize(seed: 3)
        let pool = TensorPool()
        let x = randomTensor(n: 2, h: 4, w: 4, c: 4, seed: 5)
        let y = block.forward(x, mode: .train)
        for _ in 0..<2 {
            _ = block.forward(x, mode: .train)
            block.backward(pooledCopy(y, in: pool)).release()
        }
        let yp = y.pointer, (tensors, bytes) = (pool.tensorCount, pool.reservedBytes)
        for _ in 0..<3 {
            let y2 = block.forward(x, mode: .train)
            XCTAssertEqual(y2.pointer, yp)
            block.backward(pooledCopy(y2, in: pool)).release()
            XCTAssertEqual(pool.liveCount, 0)
            XCTAssertEqual(pool.tensorCount, tensors)
            XCTAssertEqual(pool.reservedBytes, bytes)
        }
    }
}
