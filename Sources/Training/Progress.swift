import Foundation

/// Rank 0's progress: `bar` rewrites one line in place (a terminal), `lines` prints a plain
/// line with every step line of metrics.jsonl (logs: under Slurm, CI), `none` nothing (the
/// per-epoch summaries still appear). `auto` picks `bar` on a terminal, else `lines`; under
/// mpirun a rank's stdout is always a pseudo-terminal, so batch jobs should say `lines`.
public final class ProgressLine {
    public enum Mode: String, CaseIterable, Sendable { case auto, bar, lines, none }

    public struct Snapshot {
        public var epoch: Int, epochs: Int, step: Int, steps: Int
        public var loss: Double, top1: Double, imagesPerSecond: Double
        /// Share of the time spent waiting for data, 0…1.
        public var dataWait: Double
        public var secondsLeft: Double
    }

    private var lastPrint = Date.distantPast
    public let mode: Mode

    public init(mode: Mode) {
        self.mode = mode == .auto ? (isatty(STDOUT_FILENO) != 0 ? .bar : .lines) : mode
    }

    /// Every step, rank 0's running figures; drawn at most 5 times a second in `bar` mode.
    public func update(_ s: Snapshot) {
        guard mode == .bar else { return }
        let now = Date()
        let last = s.step == s.steps
        guard now.timeIntervalSince(lastPrint) > 0.2 || last else { return }
        lastPrint = now
        let bar = Self.bar(fraction: Double(s.step) / Double(max(s.steps, 1)), width: 20)
        FileHandle.standardOutput.write(Data(("\r\u{1B}[K" + bar + " " + Self.text(s) + (last ? "\n" : "")).utf8))
    }

    /// With every step line: the same figures (all ranks', since the last line) in `lines` mode.
    public func stepLine(_ s: Snapshot) {
        guard mode == .lines else { return }
        print(Self.text(s))
    }

    static func text(_ s: Snapshot) -> String {
        String(format: "epoch %d/%d  step %d/%d  loss %.4f  top-1 %.1f%%  %.1f img/s  data-wait %.0f%%  ETA %@",
               s.epoch, s.epochs, s.step, s.steps, s.loss, s.top1 * 100, s.imagesPerSecond, s.dataWait * 100,
               formatDuration(s.secondsLeft))
    }

    /// `[#######.............]`
    static func bar(fraction: Double, width: Int) -> String {
        let filled = min(width, max(0, Int((fraction * Double(width)).rounded(.down))))
        return "[" + String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled) + "]"
    }
}

public func formatDuration(_ seconds: Double) -> String {
    guard seconds.isFinite, seconds >= 0 else { return "--:--" }
    let s = Int(seconds.rounded())
    return s >= 3600 ? String(format: "%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60)
                     : String(format: "%d:%02d", s / 60, s % 60)
}
