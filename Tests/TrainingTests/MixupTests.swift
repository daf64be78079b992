import Foundation
import Kernels
import Training
import XCTest

/// timm's batch Mixup/CutMix: the arithmetic with λ and the box given, then the draws.
final class MixupTests: XCTestCase {
    /// Sample s, pixel e holds 100·s + e/1000, so every value says where it came from.
    func makeImages(n: Int, h: Int = 6, w: Int = 5, c: Int = 3) -> Tensor {
        let t = Tensor(n: n, h: h, w: w, c: c)
        let size = h * w * c
        for s in 0..<n { for e in 0..<size { t.pointer[s * size + e] = Float(100 * s) + Float(e) / 1000 } }
        return t
    }

    func testTargetsAreSmoothedOneHotsMixedWithTheFlippedBatch() {
        let mixer = MixupCutmix(mixupAlpha: 0.8, cutmixAlpha: 1, labelSmoothing: 0.1, numClasses: 5)
        let labels: [Int32] = [0, 3, 3, 1]
        let lambda = 0.3
        let t = mixer.targets(labels: labels, lambda: lambda)
        XCTAssertEqual(t.count, 4 * 5)
        let off = 0.1 / 5, on = 1 - 0.1 + off
        for i in 0..<4 {
            let row = t[(i * 5)..<(i * 5 + 5)]
            XCTAssertEqual(row.reduce(0, +), 1, accuracy: 1e-6)
            let own = Int(labels[i]), other = Int(labels[3 - i])
            for j in 0..<5 {
                let expected = ((j == own) ? on : off) * lambda + ((j == other) ? on : off) * (1 - lambda)
                XCTAssertEqual(Double(row[row.startIndex + j]), expected, accuracy: 1e-7)
            }
        }
    }

    func testMixupBlendsEachSampleWithItsMirror() {
        let mixer = MixupCutmix(mixupAlpha: 1, cutmixAlpha: 0, labelSmoothing: 0, numClasses: 10)
        for n in [4, 5] {
            let images = makeImages(n: n)
            let original = images.array
            let size = images.count / n
            let labels = (0..<n).map { Int32($0) }
            let (lambda, targets) = mixer.applyMixup(images: images, labels: labels, lambda: 0.3)
            XCTAssertEqual(lambda, 0.3)
            for s in 0..<n {
                for e in 0..<size {
                    let expected = original[s * size + e] * Float(0.3) + original[(n - 1 - s) * size + e] * Float(0.7)
                    XCTAssertEqual(images.pointer[s * size + e], expected, accuracy: 1e-4, "n \(n) sample \(s)")
                }
                XCTAssertEqual(targets[s * 10 + s], s == n - 1 - s ? 1 : 0.3, accuracy: 1e-7)
                XCTAssertEqual(targets[s * 10 + (n - 1 - s)], s == n - 1 - s ? 1 : 0.7, accuracy: 1e-7)
            }
        }
    }

    func testCutmixTakesTheBoxFromTheMirrorAndCorrectsLambda() {
        let mixer = MixupCutmix(mixupAlpha: 0, cutmixAlpha: 1, labelSmoothing: 0, numClasses: 4)
        let (h, w, c) = (6, 5, 3)
        let images = makeImages(n: 4, h: h, w: w, c: c)
        let original = images.array
        let box = MixupCutmix.Box(yl: 1, yh: 4, xl: 2, xh: 5)
        let (lambda, targets) = mixer.applyCutmix(images: images, labels: [0, 1, 2, 3], box: box)
        XCTAssertEqual(Double(lambda), 1 - 9.0 / 30.0, accuracy: 1e-7)
        for s in 0..<4 {
            for y in 0..<h { for x in 0..<w { for ch in 0..<c {
                let e = (y * w + x) * c + ch
                let inBox = (box.yl..<box.yh).contains(y) && (box.xl..<box.xh).contains(x)
                let source = inBox ? 3 - s : s
                XCTAssertEqual(images.pointer[s * h * w * c + e], original[source * h * w * c + e])
            } } }
            XCTAssertEqual(Double(targets[s * 4 + s]), 0.7, accuracy: 1e-6)
            XCTAssertEqual(Double(targets[s * 4 + 3 - s]), 0.3, accuracy: 1e-6)
        }
    }

    /// rand_bbox: a cut of int(H·√(1 − λ)) × int(W·√(1 − λ)) around a uniform centre, clipped.
    func testCutmixBoxesHaveTheCutSizeUnlessClipped() {
        var rng = SplitMix64(seed: 8)
        var clipped = 0
        for _ in 0..<500 {
            let box = MixupCutmix.cutmixBox(height: 32, width: 24, lambda: 0.75, rng: &rng)
            XCTAssertTrue(box.yl >= 0 && box.yl <= box.yh && box.yh <= 32 && box.xl >= 0 && box.xl <= box.xh && box.xh <= 24)
            XCTAssertLessThanOrEqual(box.yh - box.yl, 16)
            XCTAssertLessThanOrEqual(box.xh - box.xl, 12)
            if box.yh - box.yl == 16 && box.xh - box.xl == 12 { continue }
            clipped += 1
            XCTAssertTrue(box.yl == 0 || box.yh == 32 || box.xl == 0 || box.xh == 24, "\(box) is short but not clipped")
        }
        XCTAssertGreaterThan(clipped, 0)
        XCTAssertLessThan(clipped, 500)
    }

    /// With both alphas on, a batch is CutMix with the switch probability: a CutMix of
    /// 0-and-1 images keeps only 0s and 1s, a Mixup makes values in between.
    func testSwitchProbabilityPicksCutmixAboutHalfTheTime() {
        let mixer = MixupCutmix(mixupAlpha: 1, cutmixAlpha: 1, switchProbability: 0.5, labelSmoothing: 0.1, numClasses: 3)
        var rng = SplitMix64(seed: 21)
        var cutmix = 0
        let trials = 2000
        for _ in 0..<trials {
            let images = Tensor(n: 2, h: 8, w: 8, c: 1, values: [Float](repeating: 0, count: 64) + [Float](repeating: 1, count: 64))
            let (lambda, targets) = mixer.apply(images: images, labels: [0, 2], rng: &rng)
            XCTAssertEqual(targets[0] + targets[1] + targets[2], 1, accuracy: 1e-6)
            let values = images.array
            if values.allSatisfy({ $0 == 0 || $0 == 1 }) {
                cutmix += 1
                let kept = values[0..<64].filter { $0 == 0 }.count
                XCTAssertEqual(Double(lambda), Double(kept) / 64, accuracy: 1e-6)
            } else {
                XCTAssertEqual(Double(values[0]), 1 - Double(lambda), accuracy: 1e-6)
            }
        }
        XCTAssertEqual(Double(cutmix) / Double(trials), 0.5, accuracy: 0.05)
    }

    func testUnmixedBatchKeepsImagesAndSmoothsTargets() {
        let mixer = MixupCutmix(mixupAlpha: 1, cutmixAlpha: 1, mixProbability: 0, labelSmoothing: 0.2, numClasses: 4)
        let images = makeImages(n: 2)
        let original = images.array
        var rng = SplitMix64(seed: 1)
        let (lambda, targets) = mixer.apply(images: images, labels: [1, 3], rng: &rng)
        XCTAssertEqual(lambda, 1)
        XCTAssertEqual(images.array, original)
        XCTAssertEqual(targets, [0.05, 0.85, 0.05, 0.05, 0.05, 0.05, 0.05, 0.85])
    }

    /// Beta(a, b) from two Marsaglia–Tsang Gamma draws: mean a/(a+b), variance
    /// ab/((a+b)²(a+b+1)), over 20k draws (tolerances several standard errors wide).
    func testBetaSamplerMoments() {
        var rng = SplitMix64(seed: 2024)
        for (a, b) in [(0.2, 0.2), (0.8, 0.8), (1.0, 1.0), (2.0, 5.0)] {
            let count = 20_000
            var sum = 0.0, sumSquares = 0.0
            for _ in 0..<count {
                let x = rng.nextBeta(a, b)
                XCTAssertTrue(x >= 0 && x <= 1 && x.isFinite)
                sum += x
                sumSquares += x * x
            }
            let mean = sum / Double(count), variance = sumSquares / Double(count) - mean * mean
            let expectedMean = a / (a + b), expectedVariance = a * b / ((a + b) * (a + b) * (a + b + 1))
            XCTAssertEqual(mean, expectedMean, accuracy: 0.01, "Beta(\(a), \(b)) mean")
            XCTAssertEqual(variance, expectedVariance, accuracy: 0.05 * expectedVariance, "Beta(\(a), \(b)) variance")
        }
    }

    func testGammaSamplerMoments() {
        var rng = SplitMix64(seed: 7)
        for shape in [0.3, 1.0, 4.5] {
            let count = 20_000
            var sum = 0.0, sumSquares = 0.0
            for _ in 0..<count {
                let x = rng.nextGamma(shape: shape)
                sum += x
                sumSquares += x * x
            }
            let mean = sum / Double(count), variance = sumSquares / Double(count) - mean * mean
            XCTAssertEqual(mean, shape, accuracy: 0.03 * shape + 0.01, "Gamma(\(shape)) mean")
            XCTAssertEqual(variance, shape, accuracy: 0.08 * shape, "Gamma(\(shape)) variance")
        }
    }

    struct TimmFixture: Decodable {
        struct Case: Decodable {
            let name: String
            let cutmix: Bool
            let lam: Double
            let smoothing: Float
            let center: [Int]?
            let box: [Int]?
            let corrected_lambda: Double?
            let mixed_nhwc: [Float]
            let targets: [Float]
        }
        let n: Int, h: Int, w: Int, c: Int, num_classes: Int
        let labels: [Int32]
        let images_nhwc: [Float]
        let cases: [Case]
    }

    /// What follows the draws, against timm itself (Fixtures/mixup/make_mixup_fixtures.py pins
    /// λ and the box centre): the mixed batch, the box, the corrected λ and the targets.
    func testArithmeticMatchesTimm() throws {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("Fixtures/mixup/mixup_fixtures.json")
        let fixture = try JSONDecoder().decode(TimmFixture.self, from: Data(contentsOf: url))
        XCTAssertEqual(fixture.cases.count, 4)
        for c in fixture.cases {
            let mixer = MixupCutmix(mixupAlpha: 1, cutmixAlpha: 1, labelSmoothing: c.smoothing,
                                    numClasses: fixture.num_classes)
            let images = Tensor(n: fixture.n, h: fixture.h, w: fixture.w, c: fixture.c, values: fixture.images_nhwc)
            let result: (lambda: Float, targets: [Float])
            if c.cutmix {
                let box = MixupCutmix.cutmixBox(height: fixture.h, width: fixture.w, lambda: c.lam,
                                                centerY: c.center![0], centerX: c.center![1])
                XCTAssertEqual([box.yl, box.yh, box.xl, box.xh], c.box!, c.name)
                result = mixer.applyCutmix(images: images, labels: fixture.labels, box: box)
                XCTAssertEqual(Double(result.lambda), c.corrected_lambda!, accuracy: 1e-7, c.name)
            } else {
                result = mixer.applyMixup(images: images, labels: fixture.labels, lambda: c.lam)
                XCTAssertEqual(Double(result.lambda), c.lam, accuracy: 1e-7, c.name)
            }
            let pixels = zip(images.array, c.mixed_nhwc).map { abs($0 - $1) }.max()!
            let targets = zip(result.targets, c.targets).map { abs($0 - $1) }.max()!
            XCTAssertLessThanOrEqual(pixels, 1e-6, c.name)
            XCTAssertLessThanOrEqual(targets, 1e-7, c.name)
            print("\(c.name): max |ours − timm| pixels \(pixels), targets \(targets)")
        }
    }
}
