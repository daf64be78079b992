import DataPipeline
import Kernels
import XCTest

/// The fast training decode: DCT-scaled JPEG decoding at 1/8, 1/4 or 1/2 when the crop allows.
final class ScaledDecodeTests: XCTestCase {
    func testScaleChoiceKeepsTheCropAtLeastTheOutputSize() {
        XCTAssertEqual(decodeEighths(for: CropRegion(top: 0, left: 0, height: 400, width: 500), size: 224), 8)
        XCTAssertEqual(decodeEighths(for: CropRegion(top: 0, left: 0, height: 460, width: 500), size: 224), 4)
        XCTAssertEqual(decodeEighths(for: CropRegion(top: 0, left: 0, height: 1000, width: 900), size: 224), 2)
        XCTAssertEqual(decodeEighths(for: CropRegion(top: 0, left: 0, height: 2000, width: 1800), size: 224), 1)
        // Scaled region stays inside the scaled image and keeps its place.
        let r = scaleRegion(CropRegion(top: 10, left: 33, height: 200, width: 301), width: 500, height: 375,
                            scaledWidth: 250, scaledHeight: 188)
        XCTAssertEqual(r, CropRegion(top: 5, left: 16, height: 101, width: 151))
    }

    /// A JPEG decoded at 4/8 has half the size (rounded up) and nearly the pixels of a full
    /// decode resized to that size (smooth content: within a few levels on average).
    func testHalfScaleDecodeMatchesFullDecodeResized() throws {
        let (w, h) = (97, 64)
        var pixels = [UInt8](repeating: 0, count: w * h * 3)
        for y in 0..<h { for x in 0..<w {
            pixels[(y * w + x) * 3] = UInt8(x * 255 / w)
            pixels[(y * w + x) * 3 + 1] = UInt8(y * 255 / h)
            pixels[(y * w + x) * 3 + 2] = UInt8((x + y) * 255 / (w + h))
        } }
        let jpeg = try JPEGEncoder().encode(pixels, width: w, height: h, quality: 95)
        let decoder = ImageDecoder()
        XCTAssertTrue(try decoder.imageSize(jpeg) == (97, 64))
        var half = RGBImage(width: 0, height: 0, pixels: [])
        try decoder.decode(jpeg, into: &half, eighths: 4)
        XCTAssertEqual([half.width, half.height], [49, 32])
        let reference = resize(try decoder.decode(jpeg), width: 49, height: 32)
        let meanDifference = zip(half.pixels, reference.pixels).map { abs(Int($0) - Int($1)) }.reduce(0, +)
        XCTAssertLessThan(Double(meanDifference) / Double(half.pixels.count), 3.0)
    }
}
