import DataPipeline
import Foundation
import XCTest

/// `readImageFile`: the exact bytes, the buffer's storage reused, and the system's reason for
/// a file that cannot be read.
final class ImageFileReadingTests: XCTestCase {
    func testReadsExactBytesAndReusesTheBuffer() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("sdt-read-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let large = (0..<100_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }, small: [UInt8] = [0xFF, 0xD8, 0xFF]
        let largeURL = directory.appendingPathComponent("large.jpg"), smallURL = directory.appendingPathComponent("small.jpg")
        let emptyURL = directory.appendingPathComponent("empty.jpg")
        try Data(large).write(to: largeURL)
        try Data(small).write(to: smallURL)
        try Data().write(to: emptyURL)

        var buffer: [UInt8] = []
        try readImageFile(largeURL.path, into: &buffer)
        XCTAssertEqual(buffer, large)
        let storage = buffer.withUnsafeBufferPointer { $0.baseAddress }
        try readImageFile(smallURL.path, into: &buffer)
        XCTAssertEqual(buffer, small)
        XCTAssertEqual(buffer.withUnsafeBufferPointer { $0.baseAddress }, storage, "a smaller file reuses the storage")
        try readImageFile(emptyURL.path, into: &buffer)
        XCTAssertEqual(buffer, [])

        XCTAssertThrowsError(try readImageFile(directory.appendingPathComponent("missing.jpg").path, into: &buffer)) {
            XCTAssertEqual("\($0)", "cannot read the file (No such file or directory)")
        }
        XCTAssertThrowsError(try readImageFile(directory.path, into: &buffer)) {
            XCTAssertEqual("\($0)", "cannot read the file (not a regular file)")
        }
    }
}
