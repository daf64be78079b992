import Foundation

/// Rank 0's live progress line. On a terminal it rewrites one line in place; otherwise (logs,
/// CI) it prints a line every `interval` seconds so the log stays readable.
public final class ProgressLine {
    private let isTerminal = isatty(STDOUT_FILENO) != 0
    private var lastPrint = Date.distantPast
    private let interval: TimeInterval

    public init(interval: TimeInterval = 10) { self.interval = interval }

    public func update(epoch: Int, epochs: Int, step: Int, steps: Int, loss: Double, imagesPerSecond: Double,
                       secondsLeft: Double) {
        let now = Date()
        let last = step == steps
        guard isTerminal ? (now.timeIntervalSince(lastPrint) > 0.2 || last) : (now.timeIntervalSince(lastPrint) >= interval && !last) else { return }
        lastPrint = now
        let text = String(format: "epoch %d/%d  step %d/%d  loss %.4f  %.1f img/s  ETA %@",
                          epoch, epochs, step, steps, loss, imagesPerSecond, formatDuration(secondsLeft))
        if isTerminal {
            FileHandle.standardOutput.write(Data(("\r\u{1B}[K" + text + (last ? "\n" : "")).utf8))
        } else {
            print(text)
        }
    }
}

public func formatDuration(_ seconds: Double) -> String {
    guard seconds.isFinite, seconds >= 0 else { return "--:--" }
    let s = Int(seconds.rounded())
    return s >= 3600 ? String(format: "%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60)
                     : String(format: "%d:%02d", s / 60, s % 60)
}
