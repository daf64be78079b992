import Foundation
import TestSupport
import Training
import XCTest

/// Event files: CRC32C, TFRecord framing and Event encoding, read back by our own decoder and,
/// when Python's `tensorboard` is installed, by TensorBoard's EventAccumulator.
final class TensorBoardTests: XCTestCase {
    func testCRC32CCheckValues() {
        XCTAssertEqual(crc32c(Array("123456789".utf8)), 0xE306_9283)
        XCTAssertEqual(crc32c([UInt8](repeating: 0, count: 32)), 0x8A91_36AA)
        XCTAssertEqual(crc32c([UInt8](repeating: 0xFF, count: 32)), 0x62A8_AB43)
        XCTAssertEqual(crc32c([UInt8]()), 0)
        let crc = crc32c(Array("123456789".utf8))
        XCTAssertEqual(maskedCRC32C(Array("123456789".utf8)), ((crc >> 15) | (crc << 17)) &+ 0xA282_EAD8)
    }

    /// The scalars a short run would log: several tags, steps out of order across tags, values
    /// negative, tiny (subnormal in float32) and large.
    static let sample: [(step: Int, values: [(String, Double)])] = [
        (0, [("train/loss", 2.302585), ("train/lr", 0.1)]),
        (10, [("train/loss", 1.75), ("train/lr", 0.0999)]),
        (20, [("train/loss", -0.5), ("train/lr", 1e-7), ("weird/tiny", 1e-40)]),
        (20, [("val/top1", 0.6125), ("val/loss", 123456.5)]),
        (1_000_000_000_000, [("train/loss", 0.25)]),
    ]

    private func writeSample(in directory: URL) throws -> (path: String, start: Date) {
        let start = Date(timeIntervalSince1970: 1_700_000_000.25)
        let writer = try TensorBoardWriter(directory: directory.appendingPathComponent("tb").path, hostname: "testhost",
                                           wallTime: start)
        for (i, event) in Self.sample.enumerated() {
            let time = start.addingTimeInterval(Double(i) + 0.5)
            if event.values.count == 1 {
                try writer.addScalar(event.values[0].0, event.values[0].1, step: event.step, wallTime: time)
            } else {
                try writer.addScalars(event.values, step: event.step, wallTime: time)
            }
        }
        try writer.flush()
        writer.close()
        return (writer.path, start)
    }

    func testRoundTrip() throws {
        let dir = try makeTemporaryDirectory("sdt-tensorboard")
        defer { try? FileManager.default.removeItem(at: dir) }
        let (path, start) = try writeSample(in: dir)
        XCTAssertEqual(URL(fileURLWithPath: path).lastPathComponent, "events.out.tfevents.1700000000.testhost")

        let (version, scalars) = try TensorBoardReader.readScalars(path: path)
        XCTAssertEqual(version, "brain.Event:2")
        var expected: [TensorBoardScalar] = []
        for (i, event) in Self.sample.enumerated() {
            for (tag, value) in event.values {
                expected.append(TensorBoardScalar(tag: tag, step: event.step, value: Float(value),
                                                  wallTime: start.timeIntervalSince1970 + Double(i) + 0.5))
            }
        }
        XCTAssertEqual(scalars, expected)
        XCTAssertTrue(scalars.contains { $0.tag == "weird/tiny" && $0.value > 0 && $0.value < 1e-38 })

        // A second writer in the same second gets its own file instead of interleaving records.
        let second = try TensorBoardWriter(directory: dir.appendingPathComponent("tb").path, hostname: "testhost",
                                           wallTime: start)
        XCTAssertEqual(second.path, path + ".1")
        second.close()
        XCTAssertThrowsError(try second.addScalar("late", 1, step: 1)) { XCTAssertTrue("\($0)".contains("closed")) }
    }

    /// Byte-level check against what TensorFlow writes for the same events, worked out by hand
    /// from the wire format: a reader sharing our encoder's mistakes would not catch them.
    /// (Re-serialising our events with Python's protobuf gives the same bytes, too.)
    func testRecordBytesMatchTensorFlow() throws {
        let dir = try makeTemporaryDirectory("sdt-tensorboard")
        defer { try? FileManager.default.removeItem(at: dir) }
        let writer = try TensorBoardWriter(directory: dir.path, hostname: "h", wallTime: Date(timeIntervalSince1970: 1.5))
        try writer.addScalar("a", 1, step: 3, wallTime: Date(timeIntervalSince1970: 2))
        writer.close()
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: writer.path)))

        let versionEvent: [UInt8] = [0x09, 0, 0, 0, 0, 0, 0, 0xF8, 0x3F,  // wall_time = 1.5 (double)
                                     // step = 0 is left out, as proto3 (and so TensorFlow) does
                                     0x1A, 13] + Array("brain.Event:2".utf8)  // file_version
        let scalarEvent: [UInt8] = [0x09, 0, 0, 0, 0, 0, 0, 0x00, 0x40,  // wall_time = 2.0
                                    0x10, 0x03,                          // step = 3
                                    0x2A, 10,                            // summary, 10 bytes
                                    0x0A, 8,                             //   value, 8 bytes
                                    0x0A, 1, 0x61,                       //     tag = "a"
                                    0x15, 0x00, 0x00, 0x80, 0x3F]        //     simple_value = 1.0 (float)
        func frame(_ data: [UInt8]) -> [UInt8] {
            let length: [UInt8] = [UInt8(data.count), 0, 0, 0, 0, 0, 0, 0]
            return length + littleEndian(maskedCRC32C(length)) + data + littleEndian(maskedCRC32C(data))
        }
        func littleEndian(_ value: UInt32) -> [UInt8] { (0..<4).map { UInt8(truncatingIfNeeded: value >> (8 * $0)) } }
        XCTAssertEqual(bytes, frame(versionEvent) + frame(scalarEvent))
    }

    /// Length and its CRC, wall_time (tag + double), file_version (tag, length, 13 bytes), data CRC.
    static let firstRecordSize = 12 + (9 + 15) + 4

    func testCorruptedByteIsReportedWithItsRecord() throws {
        let dir = try makeTemporaryDirectory("sdt-tensorboard")
        defer { try? FileManager.default.removeItem(at: dir) }
        let (path, _) = try writeSample(in: dir)
        let original = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        let firstRecordSize = Self.firstRecordSize

        // A flipped byte in the second record's data.
        var corrupted = original
        corrupted[firstRecordSize + 20] ^= 0x40
        try Data(corrupted).write(to: URL(fileURLWithPath: path))
        XCTAssertThrowsError(try TensorBoardReader.readScalars(path: path)) {
            XCTAssertEqual("\($0)", "\(path): record 1 at byte \(firstRecordSize): bad data CRC (corrupted record data)")
        }

        // A flipped byte in the second record's length.
        corrupted = original
        corrupted[firstRecordSize + 1] ^= 0x01
        try Data(corrupted).write(to: URL(fileURLWithPath: path))
        XCTAssertThrowsError(try TensorBoardReader.readScalars(path: path)) {
            XCTAssertEqual("\($0)", "\(path): record 1 at byte \(firstRecordSize): bad length CRC (corrupted length field)")
        }
    }

    func testTruncatedFile() throws {
        let dir = try makeTemporaryDirectory("sdt-tensorboard")
        defer { try? FileManager.default.removeItem(at: dir) }
        let (path, _) = try writeSample(in: dir)
        let original = try Data(contentsOf: URL(fileURLWithPath: path))

        // Cut inside the last record's data: the header is intact and announces more than is left.
        try original.prefix(original.count - 3).write(to: URL(fileURLWithPath: path))
        XCTAssertThrowsError(try TensorBoardReader.readScalars(path: path)) {
            let message = "\($0)"
            XCTAssertTrue(message.hasPrefix("\(path): record 5 at byte "), message)
            XCTAssertTrue(message.contains("truncated record: header announces"), message)
        }
        // Cut inside the second record's header.
        try original.prefix(Self.firstRecordSize + 5).write(to: URL(fileURLWithPath: path))
        XCTAssertThrowsError(try TensorBoardReader.readScalars(path: path)) {
            XCTAssertEqual("\($0)", "\(path): record 1 at byte \(Self.firstRecordSize): truncated record: 5 of the 12 header bytes")
        }
    }

    /// TensorBoard's own reader (EventAccumulator) must see exactly the scalars we wrote.
    /// Runs when `python3 -c "import tensorboard"` works; see scripts/check_tensorboard.py.
    func testTensorBoardEventAccumulatorReadsOurFile() throws {
        guard let python = findExecutable("python3"),
              let probe = try? runProcess(python, ["-c", "import tensorboard"], timeout: 60), probe.status == 0 else {
            throw XCTSkip("""
                Python's tensorboard is not installed: `pip install tensorboard` (in a venv put first on PATH) \
                to have this test check our event files with TensorBoard's EventAccumulator
                """)
        }
        let dir = try makeTemporaryDirectory("sdt-tensorboard")
        defer { try? FileManager.default.removeItem(at: dir) }
        let (path, start) = try writeSample(in: dir)

        var expected: [String: [[Double]]] = [:]
        for (i, event) in Self.sample.enumerated() {
            for (tag, value) in event.values {
                expected[tag, default: []].append([Double(event.step), value, start.timeIntervalSince1970 + Double(i) + 0.5])
            }
        }
        let expectedPath = dir.appendingPathComponent("expected.json")
        try JSONSerialization.data(withJSONObject: expected).write(to: expectedPath)
        let script = packageRoot.appendingPathComponent("scripts/check_tensorboard.py").path
        let outcome = try runProcess(python, [script, path, expectedPath.path], timeout: 120)
        XCTAssertEqual(outcome.status, 0, outcome.output)
        XCTAssertTrue(outcome.stdout.contains("all as expected"), outcome.output)

        // And it notices a difference: the check is not vacuous.
        expected["train/loss"]?[1][1] = 1.7501
        try JSONSerialization.data(withJSONObject: expected).write(to: expectedPath)
        let mismatch = try runProcess(python, [script, path, expectedPath.path], timeout: 120)
        XCTAssertEqual(mismatch.status, 1, mismatch.output)
        XCTAssertTrue(mismatch.stderr.contains("train/loss[1]"), mismatch.output)
    }
}
