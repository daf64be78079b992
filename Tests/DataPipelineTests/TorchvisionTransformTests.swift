import DataPipeline
import Foundation
import Kernels
import XCTest

/// Each pixel says where it came from: (x, y, x + y) mod 251, never 0 so padding stands out.
func labelledImage(width: Int, height: Int) -> RGBImage {
    var pixels = [UInt8](repeating: 0, count: width * height * 3)
    for y in 0..<height {
        for x in 0..<width {
            pixels[(y * width + x) * 3] = UInt8(x % 251 + 1)
            pixels[(y * width + x) * 3 + 1] = UInt8(y % 251 + 1)
            pixels[(y * width + x) * 3 + 2] = UInt8((x + y) % 251 + 1)
        }
    }
    return RGBImage(width: width, height: height, pixels: pixels)
}

final class TorchvisionResizeTests: XCTestCase {
    func testShorterSideRuleTruncatesTheLongerSide() {
        XCTAssertTrue(resizedSize(width: 500, height: 375, shorterSide: 256) == (341, 256))  // 341.33
        XCTAssertTrue(resizedSize(width: 375, height: 500, shorterSide: 256) == (256, 341))
        XCTAssertTrue(resizedSize(width: 300, height: 300, shorterSide: 224) == (224, 224))
        // 2 · 7 / 3 = 4.67: torchvision truncates to 4 (rounding would give 5).
        XCTAssertTrue(resizedSize(width: 3, height: 7, shorterSide: 2) == (2, 4))
        XCTAssertTrue(resizedSize(width: 7, height: 3, shorterSide: 2) == (4, 2))
        XCTAssertTrue(resizedSize(width: 300, height: 200, shorterSide: 256) == (384, 256))
    }

    func testMaxSizeCapsTheLongerSide() {
        // 1000×200 → 1280×256 exceeds 800: long 800, short int(800 · 256 / 1280) = 160.
        XCTAssertTrue(resizedSize(width: 1000, height: 200, shorterSide: 256, maxSize: 800) == (800, 160))
        XCTAssertTrue(resizedSize(width: 200, height: 1000, shorterSide: 256, maxSize: 800) == (160, 800))
        // int(500 · 256 / 683) = 187.4 → 187 (683 = int(256 · 1000 / 375)).
        XCTAssertTrue(resizedSize(width: 1000, height: 375, shorterSide: 256, maxSize: 500) == (500, 187))
        // Under the cap: unchanged.
        XCTAssertTrue(resizedSize(width: 500, height: 375, shorterSide: 256, maxSize: 342) == (341, 256))
    }

    func testResizeShorterSideMatchesPillowGolden() throws {
        let image = try loadResizeFixture("photo300x200.rgb", width: 300, height: 200)
        for (filter, name) in [(ResampleFilter.bilinear, "bilinear"), (.bicubic, "bicubic")] {
            let expected = try loadResizeFixture("photo300x200_\(name)_384x256.rgb", width: 384, height: 256)
            assertSameBytes(resize(image, shorterSide: 256, filter: filter), expected, "Resize(256) \(name)")
        }
    }

    func testEqualSizeReturnsTheImageUntouched() {
        let image = labelledImage(width: 37, height: 23)
        let same = resize(image, shorterSide: 23, filter: .bicubic)
        XCTAssertEqual(same.width, 37)
        XCTAssertEqual(same.height, 23)
        XCTAssertEqual(same.pixels, image.pixels)
        // One pixel less is a real resize: int(22 · 37 / 23) = 35 wide.
        let smaller = resize(image, shorterSide: 22, filter: .bicubic)
        XCTAssertTrue((smaller.width, smaller.height) == (35, 22))
        XCTAssertEqual(smaller.pixels.count, 35 * 22 * 3)
    }
}

final class CenterCropTests: XCTestCase {
    /// torchvision's center_crop written out literally: zero-pad the axes the crop exceeds
    /// ((c − n) // 2 before, (c − n + 1) // 2 after), then crop at int(round((n − c) / 2)).
    func torchvisionCenterCrop(_ image: RGBImage, height ch: Int, width cw: Int) -> RGBImage {
        var padded = image
        if cw > image.width || ch > image.height {
            let left = cw > image.width ? (cw - image.width) / 2 : 0
            let top = ch > image.height ? (ch - image.height) / 2 : 0
            let right = cw > image.width ? (cw - image.width + 1) / 2 : 0
            let bottom = ch > image.height ? (ch - image.height + 1) / 2 : 0
            let pw = image.width + left + right, ph = image.height + top + bottom
            var pixels = [UInt8](repeating: 0, count: pw * ph * 3)
            for y in 0..<image.height {
                for x in 0..<image.width {
                    for c in 0..<3 { pixels[((y + top) * pw + x + left) * 3 + c] = image.pixels[(y * image.width + x) * 3 + c] }
                }
            }
            padded = RGBImage(width: pw, height: ph, pixels: pixels)
        }
        // Python round(): half to even.
        let top = Int((Double(padded.height - ch) / 2).rounded(.toNearestOrEven))
        let left = Int((Double(padded.width - cw) / 2).rounded(.toNearestOrEven))
        var pixels = [UInt8](repeating: 0, count: cw * ch * 3)
        for y in 0..<ch {
            for x in 0..<cw {
                for c in 0..<3 { pixels[(y * cw + x) * 3 + c] = padded.pixels[((y + top) * padded.width + x + left) * 3 + c] }
            }
        }
        return RGBImage(width: cw, height: ch, pixels: pixels)
    }

    func testOffsetsRoundHalfToEven() {
        // Even differences: exact halves.
        XCTAssertEqual(centerCropRegion(height: 8, width: 10, cropHeight: 4, cropWidth: 4),
                       CropRegion(top: 2, left: 3, height: 4, width: 4))
        // (37 − 6) / 2 = 15.5 → 16; (35 − 2) / 2 = 16.5 → 16 (half up would give 17).
        XCTAssertEqual(centerCropRegion(height: 37, width: 35, cropHeight: 6, cropWidth: 2),
                       CropRegion(top: 16, left: 16, height: 6, width: 2))
        // 256 → 224: 16; 257 → 224: 16.5 → 16; 259 → 224: 17.5 → 18.
        XCTAssertEqual(centerCropRegion(height: 257, width: 259, cropHeight: 224, cropWidth: 224).top, 16)
        XCTAssertEqual(centerCropRegion(height: 257, width: 259, cropHeight: 224, cropWidth: 224).left, 18)
    }

    func testSmallerImageIsZeroPaddedLeftHeavyOnTheRight() {
        // 5×3 image, 8×6 crop: pad left 1, right 2, top 1, bottom 2.
        let image = labelledImage(width: 5, height: 3)
        XCTAssertEqual(centerCropRegion(height: 3, width: 5, cropHeight: 6, cropWidth: 8),
                       CropRegion(top: -1, left: -1, height: 6, width: 8))
        let out = centerCrop(image, height: 6, width: 8)
        func pixel(_ x: Int, _ y: Int) -> [UInt8] { Array(out.pixels[(y * 8 + x) * 3..<(y * 8 + x) * 3 + 3]) }
        XCTAssertEqual(pixel(0, 0), [0, 0, 0])
        XCTAssertEqual(pixel(1, 1), [1, 1, 1])       // image (0, 0)
        XCTAssertEqual(pixel(5, 3), [5, 3, 7])       // image (4, 2)
        XCTAssertEqual(pixel(6, 3), [0, 0, 0])       // two columns of padding on the right
        XCTAssertEqual(pixel(5, 4), [0, 0, 0])       // two rows at the bottom
        // One axis padded, the other cropped: 10×3 → 4×6 crops x at 3, pads y by 1 above.
        XCTAssertEqual(centerCropRegion(height: 3, width: 10, cropHeight: 6, cropWidth: 4),
                       CropRegion(top: -1, left: 3, height: 6, width: 4))
    }

    func testMatchesLiteralTorchvisionForAllSmallSizes() {
        for w in 1...9 {
            for h in 1...9 {
                let image = labelledImage(width: w, height: h)
                for cw in 1...12 {
                    for ch in 1...12 {
                        let ours = centerCrop(image, height: ch, width: cw)
                        let reference = torchvisionCenterCrop(image, height: ch, width: cw)
                        XCTAssertEqual(ours.pixels, reference.pixels, "\(w)×\(h) → \(cw)×\(ch)")
                    }
                }
            }
        }
    }

    /// The region works with cropFlipNormalize (its zero fill normalises to −mean/std, which
    /// is what torchvision's zero padding becomes after Normalize).
    func testRegionFeedsCropFlipNormalize() {
        let image = labelledImage(width: 7, height: 5)
        let region = centerCropRegion(height: 5, width: 7, cropHeight: 8, cropWidth: 8)
        var viaChoice = [Float](repeating: 0, count: 8 * 8 * 3)
        cropFlipNormalize(image, region.cropChoice(), size: 8, into: &viaChoice)
        var viaImage = [Float](repeating: 0, count: 8 * 8 * 3)
        let cropped = centerCrop(image, height: 8, width: 8)
        cropFlipNormalize(cropped, CropChoice(top: 0, left: 0, flip: false), size: 8, into: &viaImage)
        XCTAssertEqual(viaChoice, viaImage)
    }
}

final class RandomResizedCropTests: XCTestCase {
    func testParametersAlwaysLieInsideTheImage() {
        var sizes = SplitMix64(seed: 11)
        for trial in 0..<3000 {
            // Mostly ordinary sizes, sometimes extreme aspect ratios and 1-pixel sides.
            let height = trial % 10 == 0 ? 1 + sizes.nextInt(below: 3) : 1 + sizes.nextInt(below: 600)
            let width = trial % 10 == 5 ? 1 + sizes.nextInt(below: 3) : 1 + sizes.nextInt(below: 600)
            var rng = SplitMix64(seed: UInt64(trial), 3)
            let r = randomResizedCropParameters(height: height, width: width, rng: &rng)
            XCTAssertTrue(r.height > 0 && r.width > 0 && r.top >= 0 && r.left >= 0
                          && r.top + r.height <= height && r.left + r.width <= width,
                          "\(r) outside \(width)×\(height)")
        }
    }

    func testExtremeAspectFallsBackToTheDocumentedCentralCrop() {
        // 1000 wide × 10 high: any accepted try needs h ≥ √(0.08 · 10⁴ · 3/4) ≈ 24.5 > 10, so all
        // ten fail: h = 10, w = round(10 · 4/3) = 13, top = 0, left = (1000 − 13) // 2 = 493.
        for seed in 0..<50 as Range<UInt64> {
            var rng = SplitMix64(seed: seed)
            XCTAssertEqual(randomResizedCropParameters(height: 10, width: 1000, rng: &rng),
                           CropRegion(top: 0, left: 493, height: 10, width: 13))
            var tall = SplitMix64(seed: seed)
            XCTAssertEqual(randomResizedCropParameters(height: 1000, width: 10, rng: &tall),
                           CropRegion(top: 493, left: 0, height: 13, width: 10))
        }
        // Round half to even in the fallback: 100×5, ratio (0.4, 2.5) and scale (0.5, 1) (so
        // h ≥ √(250 / 2.5) = 10 > 5 always fails): w = round(5 · 2.5 = 12.5) = 12, left 44.
        var rng = SplitMix64(seed: 5)
        XCTAssertEqual(randomResizedCropParameters(height: 5, width: 100, scale: (0.5, 1), ratio: (0.4, 2.5), rng: &rng),
                       CropRegion(top: 0, left: 44, height: 5, width: 12))
        // An image inside the ratio range whose tries all fail keeps the whole image.
        var whole = SplitMix64(seed: 9)
        XCTAssertEqual(randomResizedCropParameters(height: 3, width: 3, scale: (1.5, 2), rng: &whole),
                       CropRegion(top: 0, left: 0, height: 3, width: 3))
    }

    func testChoiceDependsOnlyOnSeedEpochAndIndex() {
        let a = trainResizedCropChoice(height: 375, width: 500, seed: 42, epoch: 3, sampleIndex: 1234)
        XCTAssertEqual(a, trainResizedCropChoice(height: 375, width: 500, seed: 42, epoch: 3, sampleIndex: 1234))
        // Other samples, epochs and seeds draw differently (almost always).
        var differentIndex = 0, differentEpoch = 0, differentSeed = 0, flips = 0
        for k in 0..<200 {
            let base = trainResizedCropChoice(height: 375, width: 500, seed: 42, epoch: 3, sampleIndex: k)
            if base != trainResizedCropChoice(height: 375, width: 500, seed: 42, epoch: 3, sampleIndex: k + 1) { differentIndex += 1 }
            if base != trainResizedCropChoice(height: 375, width: 500, seed: 42, epoch: 4, sampleIndex: k) { differentEpoch += 1 }
            if base != trainResizedCropChoice(height: 375, width: 500, seed: 43, epoch: 3, sampleIndex: k) { differentSeed += 1 }
            if base.flip { flips += 1 }
        }
        XCTAssertGreaterThan(differentIndex, 195)
        XCTAssertGreaterThan(differentEpoch, 195)
        XCTAssertGreaterThan(differentSeed, 195)
        XCTAssertTrue((70...130).contains(flips), "\(flips) flips in 200")  // Binomial(200, ½): ±4.2σ
    }

    /// On a square image a try with area fraction s and aspect r is kept iff s·max(r, 1/r) ≤ 1.
    /// With t = |log r| ~ U(0, L), L = log(4/3), and s ~ U(a, 1), a = 0.08:
    ///   P(keep) = ((1 − e^{−L}) / L − a) / (1 − a)
    ///   E[s; keep] = ((1 − e^{−2L}) / (2L) − a²) / (2 (1 − a))
    /// and the kept area fraction has mean E[s; keep] / P(keep) ≈ 0.4778 (all ten tries fail
    /// with probability ≈ 0.14¹⁰, negligible). Uniform s without the rejection would give 0.54.
    func testAreaFractionMatchesTheAnalyticExpectation() {
        let a = 0.08, L = Foundation.log(4.0 / 3.0)
        let keep = ((1 - Foundation.exp(-L)) / L - a) / (1 - a)
        let expected = ((1 - Foundation.exp(-2 * L)) / (2 * L) - a * a) / (2 * (1 - a)) / keep
        let side = 1000, n = 20_000
        var sum = 0.0, sumSquares = 0.0, smallest = 1.0, largest = 0.0, logAspectSum = 0.0
        var rng = SplitMix64(seed: 2024)
        for _ in 0..<n {
            let r = randomResizedCropParameters(height: side, width: side, rng: &rng)
            let fraction = Double(r.width * r.height) / Double(side * side)
            sum += fraction; sumSquares += fraction * fraction
            smallest = min(smallest, fraction); largest = max(largest, fraction)
            logAspectSum += Foundation.log(Double(r.width) / Double(r.height))
        }
        let mean = sum / Double(n)
        let standardError = ((sumSquares / Double(n) - mean * mean) / Double(n)).squareRoot()
        // 5 standard errors (≈ 0.009) plus 0.002 for rounding w and h to whole pixels (≤ 0.5 px
        // on sides ≥ 280 px moves a fraction by under 0.2 %, and the rounding is unbiased).
        XCTAssertEqual(mean, expected, accuracy: 5 * standardError + 0.002, "mean area fraction")
        XCTAssertLessThan(smallest, 0.085)   // the scale range is covered at both ends
        XCTAssertGreaterThan(largest, 0.98)
        // log aspect is symmetric about 0 (U(−L, L) restricted symmetrically): σ ≈ 0.15 per draw.
        XCTAssertEqual(logAspectSum / Double(n), 0, accuracy: 5 * 0.15 / Double(n).squareRoot())
    }

    func testResizedCropIsCropThenPillowResize() throws {
        let image = try loadResizeFixture("photo300x200.rgb", width: 300, height: 200)
        for k in 0..<20 {
            let choice = trainResizedCropChoice(height: 200, width: 300, seed: 7, epoch: 0, sampleIndex: k)
            let out = resizedCrop(image, region: choice.region, size: 224)
            XCTAssertEqual(out.width, 224)
            XCTAssertEqual(out.height, 224)
            XCTAssertEqual(out.pixels, resize(crop(image, choice.region), width: 224, height: 224).pixels, "\(choice)")
        }
    }
}
