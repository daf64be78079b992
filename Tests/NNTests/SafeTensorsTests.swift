import Foundation
import NN
import TestSupport
import XCTest

final class SafeTensorsTests: XCTestCase {
    var dir: URL!
    override func setUpWithError() throws { dir = try makeTemporaryDirectory("sdt-st") }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    func golden() -> [SafeTensorRecord] {
        [SafeTensorRecord(name: "fc.weight", shape: [2, 3], floats: [1, 2, 3, 4, 5, 6]),
         SafeTensorRecord(name: "fc.bias", shape: [2], floats: [0.5, -0.5]),
         SafeTensorRecord(name: "bn.num_batches_tracked", shape: [], int64s: [7])]
    }

    /// safetensors 0.8's `save_file` of the same dict (../shared/formats.md): N = 232, 280 bytes.
    func testGoldenBytesMatchTheRustWriter() throws {
        let bytes = try SafeTensorsWriter.encode(tensors: golden(), metadata: ["format": "pt"])
        XCTAssertEqual(bytes.count, 280)
        XCTAssertEqual(Array(bytes.prefix(8)), [232, 0, 0, 0, 0, 0, 0, 0])
        let header = String(decoding: bytes[8..<240], as: UTF8.self)
        XCTAssertEqual(header, #"{"__metadata__":{"format":"pt"},"bn.num_batches_tracked":{"dtype":"I64","shape":[],"data_offsets":[0,8]},"fc.bias":{"dtype":"F32","shape":[2],"data_offsets":[8,16]},"fc.weight":{"dtype":"F32","shape":[2,3],"data_offsets":[16,40]}}"# + "  ")
    }

    func testRoundTrip() throws {
        let path = dir.appendingPathComponent("a.safetensors").path
        try SafeTensorsWriter.write(tensors: golden(), metadata: ["k": "v \"quoted\""], to: path)
        let file = try SafeTensorsFile.read(path: path)
        XCTAssertEqual(file.metadata, ["k": "v \"quoted\""])
        XCTAssertEqual(try file.tensors["fc.weight"]!.floats(), [1, 2, 3, 4, 5, 6])
        XCTAssertEqual(file.tensors["fc.weight"]!.shape, [2, 3])
        XCTAssertEqual(try file.tensors["bn.num_batches_tracked"]!.int64s(), [7])
        XCTAssertEqual(file.names, ["bn.num_batches_tracked", "fc.bias", "fc.weight"])
    }

    /// Writes a file with a hand-made header (padded to 8) and `data` bytes of buffer.
    func file(header: String, data: Int, declaredLength: UInt64? = nil) throws -> String {
        var h = Array(header.utf8)
        while h.count % 8 != 0 { h.append(0x20) }
        let n = declaredLength ?? UInt64(h.count)
        var bytes = (0..<8).map { UInt8(truncatingIfNeeded: n >> (8 * UInt64($0))) }
        bytes += h + [UInt8](repeating: 0, count: data)
        let path = dir.appendingPathComponent("bad-\(UUID().uuidString.prefix(6)).safetensors").path
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return path
    }

    func assertRejected(_ path: String, _ fragment: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try SafeTensorsFile.read(path: path), file: file, line: line) { error in
            let text = "\(error)"
            XCTAssertTrue(text.hasPrefix(path + ": ") && text.contains(fragment), text, file: file, line: line)
        }
    }

    func testMalformedFilesAreRejectedWithAReason() throws {
        let t = #""t":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}"#
        assertRejected(try file(header: "{\(t)}", data: 8, declaredLength: 200_000_000), "exceeds")
        assertRejected(try file(header: "{\(t)}", data: 8, declaredLength: 4096), "past the end")
        assertRejected(try file(header: "[\(t)]", data: 8), "does not start with '{'")
        assertRejected(try file(header: "{\(t)", data: 8), "not a valid JSON")
        assertRejected(try file(header: #"{"t":{"dtype":"F32","shape":[2],"data_offsets":[0,16]}}"#, data: 8), "outside")
        assertRejected(try file(header: #"{"t":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#, data: 8), "needs 12 bytes")
        assertRejected(try file(header: "{\(t)}", data: 12), "trailing bytes")
        assertRejected(try file(header: #"{"t":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#, data: 12), "hole")
        assertRejected(try file(header: #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#, data: 8), "overlaps")
        assertRejected(try file(header: #"{"t":{"dtype":"Q7","shape":[2],"data_offsets":[0,8]}}"#, data: 8), "unknown dtype 'Q7'")
        assertRejected(try file(header: #"{"__metadata__":{"a":1},"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#, data: 8), "not a string")
        assertRejected(try file(header: #"{"t":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}"#, data: 8), "malformed shape")
        let truncated = dir.appendingPathComponent("short.safetensors").path
        try Data([1, 2, 3]).write(to: URL(fileURLWithPath: truncated))
        assertRejected(truncated, "too small")
    }

    /// A failed write leaves the previous file untouched and no temporary file behind.
    func testFailedWriteKeepsTheOldFile() throws {
        let path = dir.appendingPathComponent("w.safetensors").path
        try SafeTensorsWriter.write(tensors: golden(), metadata: [:], to: path)
        let before = try Data(contentsOf: URL(fileURLWithPath: path))
        let inconsistent = SafeTensorRecord(name: "x", dtype: .f32, shape: [3], data: [0, 0, 0, 0])
        XCTAssertThrowsError(try SafeTensorsWriter.write(tensors: [inconsistent], metadata: [:], to: path))
        XCTAssertThrowsError(try SafeTensorsWriter.write(tensors: golden(), metadata: [:],
                                                         to: dir.appendingPathComponent("missing/dir/w.safetensors").path))
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: path)), before)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path), ["w.safetensors"])
    }
}
