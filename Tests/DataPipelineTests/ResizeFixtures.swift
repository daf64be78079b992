import DataPipeline
import Foundation
import XCTest

// Reading the Pillow golden files (Fixtures/resize, made by make_fixtures.py) and comparing
// images byte for byte with a report that says how far off a mismatch is.

let resizeFixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .appendingPathComponent("Fixtures/resize")

/// A raw RGB fixture; its size is in its name, and a file of another length is a failure.
func loadResizeFixture(_ name: String, width: Int, height: Int) throws -> RGBImage {
    let bytes = try [UInt8](Data(contentsOf: resizeFixtures.appendingPathComponent(name)))
    XCTAssertEqual(bytes.count, width * height * 3, "\(name) has the wrong size")
    return RGBImage(width: width, height: height, pixels: bytes)
}

/// Fails with the count of differing bytes, the largest difference and the first position.
func assertSameBytes(_ actual: RGBImage, _ expected: RGBImage, _ label: String,
                     file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(actual.width, expected.width, "\(label): width", file: file, line: line)
    XCTAssertEqual(actual.height, expected.height, "\(label): height", file: file, line: line)
    guard actual.pixels.count == expected.pixels.count else {
        XCTFail("\(label): \(actual.pixels.count) bytes, expected \(expected.pixels.count)", file: file, line: line)
        return
    }
    var differing = 0, worst = 0, firstIndex = -1
    for i in 0..<actual.pixels.count where actual.pixels[i] != expected.pixels[i] {
        differing += 1
        worst = max(worst, abs(Int(actual.pixels[i]) - Int(expected.pixels[i])))
        if firstIndex < 0 { firstIndex = i }
    }
    if differing > 0 {
        let pixel = firstIndex / 3
        XCTFail("\(label): \(differing) of \(actual.pixels.count) bytes differ, max |diff| \(worst); first at "
                + "x \(pixel % expected.width), y \(pixel / expected.width), channel \(firstIndex % 3): "
                + "\(actual.pixels[firstIndex]) vs Pillow \(expected.pixels[firstIndex])", file: file, line: line)
    }
}
