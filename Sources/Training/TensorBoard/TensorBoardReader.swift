import Foundation

/// One scalar read back from an event file.
public struct TensorBoardScalar: Equatable, Sendable {
    public var tag: String
    public var step: Int
    public var value: Float
    public var wallTime: Double

    public init(tag: String, step: Int, value: Float, wallTime: Double) {
        self.tag = tag
        self.step = step
        self.value = value
        self.wallTime = wallTime
    }
}

/// Reads event files back, checking the framing: our tests' independent check of what
/// `TensorBoardWriter` writes, and a quick look at a run without installing TensorBoard.
/// Reads `simple_value` scalars only (what the writer and TF 1 write); TF 2's tensor-form
/// scalars and every other summary kind are skipped.
public enum TensorBoardReader {
    /// The file version of the first record that has one, and every scalar in file order.
    /// Throws one line naming the file, the record (index and byte offset) and the problem.
    public static func readScalars(path: String) throws -> (fileVersion: String?, scalars: [TensorBoardScalar]) {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw TrainingError("\(path): missing or unreadable")
        }
        let records: [TFRecord]
        do {
            records = try splitTFRecords([UInt8](data))
        } catch {
            throw TrainingError("\(path): record \(error.recordIndex) at byte \(error.offset): \(error.problem)")
        }
        var fileVersion: String?
        var scalars: [TensorBoardScalar] = []
        for (index, record) in records.enumerated() {
            let event: TensorBoardEvent
            do {
                event = try TensorBoardEvent(decoding: record.data)
            } catch {
                throw TrainingError("\(path): record \(index) at byte \(record.offset): malformed Event: \(error)")
            }
            if fileVersion == nil { fileVersion = event.fileVersion }
            scalars += event.scalars.map {
                TensorBoardScalar(tag: $0.tag, step: Int(event.step), value: $0.value, wallTime: event.wallTime)
            }
        }
        return (fileVersion, scalars)
    }
}
