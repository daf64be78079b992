import Foundation

/// Rank 0's live progress line. On a terminal it rewrites one line in place; otherwise (logs
/// under Slurm, CI) it prints a plain line every `interval` seconds so the log stays readable;
/// `quiet` prints nothing (the per-epoch summaries still appear).
public final class ProgressLine {
    public struct Snapshot {
        public var epoch: Int, epochs: Int, step: Int, steps: Int
        public var loss: Double, top1: Double, imagesPerSecond: Double
        /// Share of the time spent waiting for data, 0…1.
        public var dataWait: Double
        public var secondsLeft: Double
    }

    private let isTerminal = isatty(STDOUT_FILENO) != 0
    private var lastPrint = Date.distantPast
    private let interval: TimeInterval
    private let quiet: Bool

    public init(interval: TimeInterval = 10, quiet: Bool = false) {
        self.interval = interval
        self.quiet = quiet
    }

    public func update(_ s: Snapshot) {
        guard !quiet else { return }
        let now = Date()
        let last = s.step == s.steps
        guard isTerminal ? (now.timeIntervalSince(lastPrint) > 0.2 || last) : (now.timeIntervalSince(lastPrint) >= interval && !last) else { return }
        lastPrint = now
        let text = String(format: "epoch %d/%d  step %d/%d  loss %.4f  top-1 %.1f%%  %.1f img/s  data-wait %.0f%%  ETA %@",
                          s.epoch, s.epochs, s.step, s.steps, s.loss, s.top1 * 100, s.imagesPerSecond, s.dataWait * 100,
                          formatDuration(s.secondsLeft))
        if isTerminal {
            let bar = Self.bar(fraction: Double(s.step) / Double(max(s.steps, 1)), width: 20)
            FileHandle.standardOutput.write(Data(("\r\u{1B}[K" + bar + " " + text + (last ? "\n" : "")).utf8))
        } else {
            print(text)
        }
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
