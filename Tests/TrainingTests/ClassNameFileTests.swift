import Foundation
import TestSupport
import Training
import XCTest

/// `predict --classes FILE`: each kind of class-name file gives names in model output order.
final class ClassNameFileTests: XCTestCase {
    func testEveryKindOfClassFile() throws {
        let dir = try makeTemporaryDirectory("sdt-classes")
        defer { try? FileManager.default.removeItem(at: dir) }
        func write(_ name: String, _ text: String) throws -> String {
            let url = dir.appendingPathComponent(name)
            try text.write(to: url, atomically: true, encoding: .utf8)
            return url.path
        }
        // One name per line, CRLF and trailing spaces tolerated.
        let plain = try write("names.txt", "cat \r\ndog\r\n\r\nbird\n")
        XCTAssertEqual(try ClassNameFile.read(path: plain).map(\.name), ["cat", "dog", "bird"])

        // LOC_synset_mapping.txt / synsets.txt: line order, wnid then description.
        let mapping = try write("LOC_synset_mapping.txt", "n01440764 tench, Tinca tinca\nn01443537 goldfish, Carassius auratus\n")
        XCTAssertEqual(try ClassNameFile.read(path: mapping),
                       [ClassLabel(name: "n01440764", description: "tench, Tinca tinca"),
                        ClassLabel(name: "n01443537", description: "goldfish, Carassius auratus")])

        // words.txt alone lists every synset: the order must come from wnids.txt beside it.
        let words = try write("words.txt", "n02000000\tzebra\nn01000000\taardvark\nn09999999\tunused\n")
        XCTAssertThrowsError(try ClassNameFile.read(path: words)) { XCTAssertTrue("\($0)".contains("wnids.txt")) }
        // wnids.txt is unsorted on disk; the class order is the sorted one.
        _ = try write("wnids.txt", "n02000000\nn01000000\n")
        let expected = [ClassLabel(name: "n01000000", description: "aardvark"), ClassLabel(name: "n02000000", description: "zebra")]
        XCTAssertEqual(try ClassNameFile.read(path: words), expected)
        XCTAssertEqual(try ClassNameFile.read(path: dir.appendingPathComponent("wnids.txt").path), expected)

        XCTAssertThrowsError(try ClassNameFile.read(path: dir.appendingPathComponent("missing.txt").path)) {
            XCTAssertTrue("\($0)".contains("missing.txt: missing or unreadable"))
        }
    }
}
