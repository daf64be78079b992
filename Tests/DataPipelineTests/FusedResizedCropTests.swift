import DataPipeline
import Kernels
import XCTest

/// The fast path's float resize + flip + normalise (Note [Float resize]) against the exact
/// path, Pillow's 8-bit resample followed by `cropFlipNormalize`.
final class FusedResizedCropTests: XCTestCase {
    /// Pillow rounds to bytes after each pass: at most 0.5 each, and the second pass (weights
    /// ≥ 0, summing to 1) carries the first's error through at most unchanged, so the float
    /// result lies within 1 level of Pillow's bytes (plus float and fixed-point slack).
    func testWithinOneLevelOfPillowsBytesForEveryShape() {
        var rng = SplitMix64(seed: 11)
        let scratch = ResizeScratch()
        let std = [imagenetStd.0, imagenetStd.1, imagenetStd.2]
        // Shrinking and enlarging on each axis, odd sizes, 1-pixel sides, Pillow's vertical-first case.
        let shapes = [(300, 250, 224), (500, 375, 224), (224, 224, 224), (100, 61, 224), (1, 1, 5), (7, 300, 16), (300, 7, 16),
                      (97, 450, 64), (64, 64, 64), (33, 17, 9), (448, 460, 224)]
        for (width, height, size) in shapes {
            var pixels = [UInt8](repeating: 0, count: width * height * 3)
            for i in pixels.indices { pixels[i] = UInt8(truncatingIfNeeded: (i / 3 % width) * 7 + (i / 3 / width) * 3 + rng.nextInt(below: 90)) }
            let image = RGBImage(width: width, height: height, pixels: pixels)
            var exact = [Float](repeating: 0, count: size * size * 3), ours = exact, flipped = exact
            exact.withUnsafeMutableBufferPointer {
                cropFlipNormalize(resize(image, width: size, height: size), CropChoice(top: 0, left: 0, flip: false), size: size,
                                  into: $0.baseAddress!)
            }
            ours.withUnsafeMutableBufferPointer { resizeFlipNormalize(image, size: size, flip: false, scratch: scratch, into: $0.baseAddress!) }
            flipped.withUnsafeMutableBufferPointer { resizeFlipNormalize(image, size: size, flip: true, scratch: scratch, into: $0.baseAddress!) }
            var worst = 0.0, total = 0.0
            for i in exact.indices {
                let levels = abs(Double(ours[i]) - Double(exact[i])) * Double(std[i % 3]) * 255
                worst = max(worst, levels)
                total += levels
            }
            print(String(format: "%d×%d → %d: max %.3f, mean %.3f levels from Pillow's bytes", width, height, size, worst,
                         total / Double(exact.count)))
            XCTAssertLessThanOrEqual(worst, 1.001, "\(width)×\(height) → \(size)")
            XCTAssertLessThan(total / Double(exact.count), 0.35, "\(width)×\(height) → \(size)")
            // The flip mirrors the very same floats.
            for y in 0..<size {
                for x in 0..<size {
                    for c in 0..<3 {
                        let a = ours[(y * size + x) * 3 + c], b = flipped[(y * size + size - 1 - x) * 3 + c]
                        if a != b { XCTFail("\(width)×\(height) → \(size): flip differs at \(x), \(y)"); return }
                    }
                }
            }
        }
    }

    /// A view with a row stride wider than its pixels (the region decoder's buffer) reads only
    /// its own columns.
    func testRowStrideIsHonoured() {
        let (width, height, stride, size) = (40, 30, 57 * 3, 24)
        var padded = [UInt8](repeating: 255, count: height * stride)
        var tight = [UInt8](repeating: 0, count: width * height * 3)
        for y in 0..<height { for b in 0..<(width * 3) { let v = UInt8((y * 31 + b * 7) % 256); padded[y * stride + b] = v; tight[y * width * 3 + b] = v } }
        let scratch = ResizeScratch()
        var a = [Float](repeating: 0, count: size * size * 3), b = a
        a.withUnsafeMutableBufferPointer { out in
            padded.withUnsafeBufferPointer {
                resizeFlipNormalize(PixelView(base: $0.baseAddress!, width: width, height: height, rowStride: stride), size: size,
                                    flip: true, scratch: scratch, into: out.baseAddress!)
            }
        }
        b.withUnsafeMutableBufferPointer {
            resizeFlipNormalize(RGBImage(width: width, height: height, pixels: tight), size: size, flip: true, scratch: scratch,
                                into: $0.baseAddress!)
        }
        XCTAssertEqual(a, b)
    }
}
