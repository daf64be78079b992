import DataPipeline
import Foundation
import TestSupport
import XCTest

/// Builds small dataset trees of real images in a temporary directory.
final class DatasetTree {
    let root: URL
    private let encoder = JPEGEncoder()

    init(_ name: String) throws { root = try makeTemporaryDirectory("sdt-\(name)") }

    func remove() { try? FileManager.default.removeItem(at: root) }

    func url(_ relative: String) -> URL { root.appendingPathComponent(relative) }
    func path(_ relative: String) -> String { root.path + "/" + relative }

    /// An 8×8 JPEG whose colour encodes `shade`, creating folders on the way.
    func jpeg(_ relative: String, shade: Int = 0) throws {
        let pixels = (0..<(8 * 8 * 3)).map { UInt8(truncatingIfNeeded: shade * 40 + $0 % 3 * 60) }
        try write(relative, Data(try encoder.encode(pixels, width: 8, height: 8)))
    }

    /// A copy of Fixtures/png/<fixture>.png under any name (the decoder sniffs, so .JPEG works).
    func png(_ relative: String, fixture: String = "rgb8") throws {
        try write(relative, Data(try pngFixture(fixture).png))
    }

    func text(_ relative: String, _ contents: String) throws { try write(relative, Data(contents.utf8)) }

    func folder(_ relative: String) throws {
        try FileManager.default.createDirectory(at: url(relative), withIntermediateDirectories: true)
    }

    func symlink(_ relative: String, to destination: String) throws {
        try folder((relative as NSString).deletingLastPathComponent)
        try FileManager.default.createSymbolicLink(atPath: path(relative), withDestinationPath: destination)
    }

    private func write(_ relative: String, _ data: Data) throws {
        try folder((relative as NSString).deletingLastPathComponent)
        try data.write(to: url(relative))
    }

    /// Sample paths relative to the root, for readable expectations.
    func relative(_ dataset: ImageDataset) -> [String] {
        dataset.samples.map { String($0.path.dropFirst(root.path.count + 1)) }
    }
}

/// Names as UTF-8 bytes: XCTAssertEqual on Strings treats "é" and "e\u{301}" as equal.
func utf8(_ names: [String]) -> [[UInt8]] { names.map { Array($0.utf8) } }

func XCTAssertThrowsDatasetError(_ expression: @autoclosure () throws -> some Any, containing parts: [String],
                                 file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertThrowsError(try expression(), file: file, line: line) { error in
        XCTAssertTrue(error is DatasetError, "\(type(of: error)): \(error)", file: file, line: line)
        for part in parts { XCTAssertTrue("\(error)".contains(part), "'\(error)' lacks '\(part)'", file: file, line: line) }
    }
}
