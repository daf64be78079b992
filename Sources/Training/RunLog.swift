import Foundation

/// Rank 0's record of a run in its directory: `metrics.jsonl` (step and epoch lines) and a
/// TensorBoard event file with the same numbers as scalars. Lines and events reach the kernel
/// as they are written, so a crash loses nothing already reported.
final class RunLog {
    private let metrics: JSONLinesWriter
    private let events: TensorBoardWriter?

    init(directory: String, tensorBoard: Bool) throws {
        metrics = try JSONLinesWriter(path: directory + "/metrics.jsonl")
        events = tensorBoard ? try TensorBoardWriter(directory: directory) : nil
    }

    var eventFile: String? { events?.path }

    func step(_ line: StepMetrics) throws {
        try metrics.append(line)
        try events?.addScalars([
            ("train/loss", line.loss), ("train/top1", line.top1), ("train/images_per_second", line.imagesPerSecond),
            ("train/data_wait", line.dataWait), ("train/comm_seconds", line.commSeconds), ("train/grad_norm", line.gradNorm),
        ], step: line.step)
    }

    func epoch(_ line: EpochMetrics) throws {
        try metrics.append(line)
        var scalars: [(String, Double)] = [
            ("epoch/train_loss", line.trainLoss), ("epoch/train_top1", line.trainTop1),
            ("epoch/images_per_second", line.imagesPerSecond), ("epoch/data_wait", line.dataWait),
            ("epoch/comm_seconds", line.commSeconds),
        ]
        let validation: [(String, Double?)] = [
            ("val/loss", line.valLoss), ("val/top1", line.valTop1), ("val/top5", line.valTop5),
            ("val/precision", line.valPrecision), ("val/recall", line.valRecall), ("val/f1", line.valF1),
            ("val_ema/loss", line.emaValLoss), ("val_ema/top1", line.emaValTop1), ("val_ema/top5", line.emaValTop5),
        ]
        scalars += validation.compactMap { tag, value in value.map { (tag, $0) } }
        // Epoch scalars share the step axis with the step scalars, so the curves line up.
        try events?.addScalars(scalars, step: line.step)
        try events?.flush()
    }

    /// The learning rate of every step (`step` = steps taken, 1-based).
    func learningRate(_ lr: Double, step: Int) throws {
        try events?.addScalar("train/lr", lr, step: step)
    }
}
