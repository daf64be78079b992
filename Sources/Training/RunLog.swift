import Foundation

/// Rank 0's record of a run in its directory: `metrics.jsonl` (step and epoch lines).
/// Each line is flushed as written, so a crash loses nothing already reported.
final class RunLog {
    private let metrics: JSONLinesWriter

    init(directory: String) throws {
        metrics = try JSONLinesWriter(path: directory + "/metrics.jsonl")
    }

    func step(_ line: StepMetrics) throws { try metrics.append(line) }

    func epoch(_ line: EpochMetrics) throws { try metrics.append(line) }

    /// The learning rate of every step (`step` = steps taken, 1-based).
    func learningRate(_ lr: Double, step: Int) {}
}
