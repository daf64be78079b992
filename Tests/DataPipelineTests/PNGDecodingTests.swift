import DataPipeline
import Foundation
import XCTest

/// The fixtures and their golden RGB bytes come from Fixtures/png/make_fixtures.py (Pillow).
let pngFixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/png")

func pngFixture(_ name: String) throws -> (png: [UInt8], rgb: [UInt8]) {
    let png = try Data(contentsOf: pngFixtures.appendingPathComponent("\(name).png"))
    let rgb = try Data(contentsOf: pngFixtures.appendingPathComponent("\(name).rgb"))
    return ([UInt8](png), [UInt8](rgb))
}

/// (offset, length) of each chunk's data, in file order.
func pngChunks(_ png: [UInt8]) -> [(type: String, offset: Int, length: Int)] {
    var chunks: [(String, Int, Int)] = []
    var i = 8
    while i + 8 <= png.count {
        let length = png[i..<(i + 4)].reduce(0) { $0 << 8 | Int($1) }
        chunks.append((String(decoding: png[(i + 4)..<(i + 8)], as: UTF8.self), i + 8, length))
        i += 12 + length
    }
    return chunks
}

final class PNGDecodingTests: XCTestCase {
    static let kinds = ["gray1", "gray4", "gray8", "gray8_trns", "gray16", "gray16_interlaced", "graya8", "graya16",
                        "palette4", "palette8", "palette8_trns", "palette_short", "rgb8", "rgb8_trns", "rgb8_interlaced",
                        "rgb16_gama", "rgba8", "rgba16", "rgba16_interlaced"]

    func testEveryKindMatchesPillowByteForByte() throws {
        let decoder = ImageDecoder()
        for name in Self.kinds {
            let (png, rgb) = try pngFixture(name)
            let image = try decoder.decode(png)
            XCTAssertEqual(image.width, 7, name)
            XCTAssertEqual(image.height, 5, name)
            let firstDifference = zip(image.pixels, rgb).enumerated().first { $0.element.0 != $0.element.1 }
            XCTAssertEqual(image.pixels.count, rgb.count, name)
            XCTAssertNil(firstDifference, "\(name): byte \(firstDifference?.offset ?? -1) is \(firstDifference?.element.0 ?? 0), Pillow gives \(firstDifference?.element.1 ?? 0)")
        }
    }

    /// Pillow clips 16-bit gray to 255 and drops (does not composite) alpha: the fixtures are
    /// chosen so that the obvious alternatives (high byte, compositing onto black) differ.
    func testFixturesTellTheConversionRulesApart() throws {
        let gray16 = try pngFixture("gray16").rgb
        XCTAssertGreaterThan(gray16.filter { $0 == 255 }.count, gray16.count / 2)
        XCTAssertTrue(gray16.contains { $0 > 0 && $0 < 255 })
        let (rgba, rgbaGolden) = try pngFixture("rgba8")
        XCTAssertEqual(rgbaGolden, try pngFixture("rgb8").rgb, "alpha dropped: the colours of rgb8")
        XCTAssertEqual(try ImageDecoder().decode(rgba).pixels, rgbaGolden)
    }

    func testSniffsBytesAndReusesStorage() throws {
        let decoder = ImageDecoder()
        var image = RGBImage(width: 64, height: 64, pixels: [UInt8](repeating: 9, count: 64 * 64 * 3))
        let (png, rgb) = try pngFixture("palette8")
        try decoder.decode(png, into: &image)
        XCTAssertEqual(image.pixels, rgb)
        // A JPEG after a PNG (and after a failed PNG) with the same decoder.
        _ = try? decoder.decode(Array(png.prefix(30)))
        let jpeg = try JPEGEncoder().encode([UInt8](repeating: 128, count: 8 * 8 * 3), width: 8, height: 8)
        XCTAssertEqual(try decoder.decode(jpeg).width, 8)
        try decoder.decode(png, into: &image)
        XCTAssertEqual(image.pixels, rgb)
    }

    /// Like Pillow: a file cut inside the image data fails; one that lacks only what follows the
    /// image data (IEND) still decodes, because neither reader looks there. In between (cut
    /// inside the zlib checksum or the last IDAT's CRC) Pillow still decodes, having all the
    /// pixels, while libpng reads the whole chunk first and fails: that window is not asserted.
    func testTruncatedFilesFailCleanly() throws {
        let decoder = ImageDecoder()
        for name in ["rgb8", "rgb8_interlaced", "gray16", "palette4"] {
            let (png, rgb) = try pngFixture(name)
            let idat = pngChunks(png).first { $0.type == "IDAT" }!
            for length in 0..<png.count {
                let prefix = Array(png.prefix(length))
                if length < idat.offset + idat.length - 4 {
                    XCTAssertThrowsError(try decoder.decode(prefix), "\(name) cut at \(length)") {
                        let expected = length == 0 ? "empty file" : "PNG"
                        XCTAssertTrue($0 is ImageDecodeError && "\($0)".contains(expected), "\(name) cut at \(length): \($0)")
                    }
                } else if length >= idat.offset + idat.length + 4 {
                    XCTAssertEqual(try decoder.decode(prefix).pixels, rgb, "\(name) cut at \(length)")
                }
            }
        }
    }

    func testDamagedBytesNeverCrash() throws {
        let decoder = ImageDecoder()
        let (png, rgb) = try pngFixture("rgba16_interlaced")
        for offset in 8..<png.count {
            for mask: UInt8 in [0x01, 0x80, 0xFF] {
                var damaged = png
                damaged[offset] ^= mask
                if let image = try? decoder.decode(damaged) {
                    XCTAssertEqual(image.pixels.count, image.width * image.height * 3)
                }
            }
        }
        XCTAssertEqual(try decoder.decode(png).pixels, rgb)
    }

    /// Pillow checks the CRCs of the chunks before the image data (a bad one: "cannot identify
    /// image file") but not of IDAT.
    func testChecksumsAreCheckedWherePillowChecksThem() throws {
        let (png, rgb) = try pngFixture("rgb8")
        let chunks = pngChunks(png)
        let ihdr = chunks.first { $0.type == "IHDR" }!, idat = chunks.first { $0.type == "IDAT" }!
        var badHeader = png
        badHeader[ihdr.offset + ihdr.length] ^= 1
        XCTAssertThrowsError(try ImageDecoder().decode(badHeader)) { XCTAssertTrue("\($0)".contains("CRC"), "\($0)") }
        var badData = png
        badData[idat.offset + idat.length] ^= 1
        XCTAssertEqual(try ImageDecoder().decode(badData).pixels, rgb)
    }
}
