import Foundation

/// One line of `metrics.jsonl`: what happened in one epoch.
public struct EpochMetrics: Codable, Sendable {
    public var epoch: Int
    public var lr: Double
    public var trainLoss: Double
    public var trainTop1: Double
    public var valLoss: Double
    public var valTop1: Double
    public var valTop5: Double
    public var valImages: Int
    public var imagesPerSecond: Double
    public var epochSeconds: Double
    public var skippedImages: Int
    public var worldSize: Int

    enum CodingKeys: String, CodingKey {
        case epoch, lr
        case trainLoss = "train_loss", trainTop1 = "train_top1"
        case valLoss = "val_loss", valTop1 = "val_top1", valTop5 = "val_top5", valImages = "val_images"
        case imagesPerSecond = "images_per_second", epochSeconds = "epoch_seconds"
        case skippedImages = "skipped_images", worldSize = "world_size"
    }
}

/// Appends one JSON object per line; each line is flushed so a crash loses nothing written.
public final class JSONLinesWriter {
    private let handle: FileHandle
    private let encoder: JSONEncoder

    public init(path: String) throws {
        if !FileManager.default.fileExists(atPath: path) {
            guard FileManager.default.createFile(atPath: path, contents: nil) else {
                throw TrainingError("\(path): cannot create file")
            }
        }
        guard let handle = FileHandle(forWritingAtPath: path) else {
            throw TrainingError("\(path): cannot open for writing")
        }
        handle.seekToEndOfFile()
        self.handle = handle
        encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
    }

    public func append<T: Encodable>(_ value: T) throws {
        var data = try encoder.encode(value)
        data.append(0x0A)
        handle.write(data)
        try handle.synchronize()
    }

    deinit { try? handle.close() }
}

/// A user-facing error: one line, naming the file and the problem.
public struct TrainingError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
