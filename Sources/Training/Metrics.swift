import Foundation

/// An epoch line of `metrics.jsonl` (`"kind": "epoch"`). The validation fields are absent in
/// epochs that do not evaluate (`--eval-every`).
public struct EpochMetrics: Codable, Sendable {
    public var kind = "epoch"
    /// Completed epochs (1-based).
    public var epoch: Int
    /// Global optimizer steps taken so far.
    public var step: Int
    /// The learning rate of the epoch's last step.
    public var lr: Double
    public var trainLoss: Double
    public var trainTop1: Double
    public var valLoss: Double?
    public var valTop1: Double?
    public var valTop5: Double?
    /// Macro averages over classes (see `ConfusionMatrix`).
    public var valPrecision: Double?
    public var valRecall: Double?
    public var valF1: Double?
    public var valImages: Int?
    /// The EMA model's validation results (`--ema-decay`).
    public var emaValLoss: Double?
    public var emaValTop1: Double?
    public var emaValTop5: Double?
    public var imagesPerSecond: Double
    public var epochSeconds: Double
    /// Share of the epoch's training time spent waiting for the next batch.
    public var dataWait: Double
    /// Mean all-reduce time per step, seconds.
    public var commSeconds: Double
    public var skippedImages: Int
    public var worldSize: Int

    enum CodingKeys: String, CodingKey {
        case kind, epoch, step, lr
        case trainLoss = "train_loss", trainTop1 = "train_top1"
        case valLoss = "val_loss", valTop1 = "val_top1", valTop5 = "val_top5", valImages = "val_images"
        case valPrecision = "val_precision", valRecall = "val_recall", valF1 = "val_f1"
        case emaValLoss = "ema_val_loss", emaValTop1 = "ema_val_top1", emaValTop5 = "ema_val_top5"
        case imagesPerSecond = "images_per_second", epochSeconds = "epoch_seconds"
        case dataWait = "data_wait", commSeconds = "comm_seconds"
        case skippedImages = "skipped_images", worldSize = "world_size"
    }
}

/// A step line of `metrics.jsonl` (`"kind": "step"`), written every `--log-every` steps with
/// averages over all ranks since the previous step line.
public struct StepMetrics: Codable, Sendable {
    public var kind = "step"
    /// Global optimizer steps taken so far (1-based: the step just finished).
    public var step: Int
    /// Fractional epochs completed, e.g. 2.35.
    public var epoch: Double
    public var lr: Double
    public var loss: Double
    public var top1: Double
    /// Global images per second over the window (all ranks).
    public var imagesPerSecond: Double
    public var dataWait: Double
    public var commSeconds: Double
    /// ‖g‖ of the averaged gradient before clipping.
    public var gradNorm: Double

    enum CodingKeys: String, CodingKey {
        case kind, step, epoch, lr, loss, top1
        case imagesPerSecond = "images_per_second", dataWait = "data_wait", commSeconds = "comm_seconds"
        case gradNorm = "grad_norm"
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

/// Which validation number picks `best.safetensors` (`--save-best-by`).
public enum BestModelCriterion: String, CaseIterable, Sendable {
    case valTop1 = "val_top1", valLoss = "val_loss", valF1 = "val_f1"

    /// The number to maximise: loss is negated so that larger is always better.
    public func score(top1: Double, loss: Double, f1: Double) -> Double {
        switch self {
        case .valTop1: return top1
        case .valLoss: return -loss
        case .valF1: return f1
        }
    }
}
