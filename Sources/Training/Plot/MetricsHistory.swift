import Foundation

/// What `metrics.jsonl` says about a run, for plotting. Two kinds of lines: `"kind": "epoch"`
/// (one per completed epoch; lines without `kind`, from older runs, are epoch lines) and
/// `"kind": "step"` (every few steps). Unknown keys and unknown kinds are ignored, so the
/// trainer can log more without breaking old plotters; missing values leave gaps in the curves.
public struct MetricsHistory: Equatable, Sendable {
    public struct Epoch: Equatable, Sendable {
        /// Completed epochs, 1-based: the x position of the end-of-epoch markers.
        public var epoch: Double
        public var step: Int?
        public var lr: Double?
        public var trainLoss: Double?
        public var trainTop1: Double?
        public var valLoss: Double?
        public var valTop1: Double?
        public var valTop5: Double?
    }

    public struct Step: Equatable, Sendable {
        /// Fractional epochs done (2.35: 35% into the third epoch).
        public var epoch: Double
        public var step: Int?
        public var lr: Double?
        public var loss: Double?
        public var top1: Double?
    }

    public var epochs: [Epoch] = []
    public var steps: [Step] = []

    public init(epochs: [Epoch] = [], steps: [Step] = []) {
        self.epochs = epochs
        self.steps = steps
    }

    /// Reads `metrics.jsonl`; errors are one line naming the file (and the line, for a bad one).
    public static func read(path: String) throws -> MetricsHistory {
        guard FileManager.default.fileExists(atPath: path) else { throw TrainingError("\(path): no such file") }
        guard let data = FileManager.default.contents(atPath: path) else { throw TrainingError("\(path): unreadable") }
        return try parse(String(decoding: data, as: UTF8.self), source: path)
    }

    /// `source` names the text in errors: "runs/x/metrics.jsonl: line 7: …".
    public static func parse(_ text: String, source: String) throws -> MetricsHistory {
        var history = MetricsHistory()
        let decoder = JSONDecoder()
        var lineNumber = 0
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            lineNumber += 1
            let trimmed = line.trimmingCharacters(in: .whitespacesAndNewlines)
            if trimmed.isEmpty { continue }
            let fields: MetricsLineFields
            do {
                fields = try decoder.decode(MetricsLineFields.self, from: Data(trimmed.utf8))
            } catch {
                throw TrainingError("\(source): line \(lineNumber): \(problem(error, line: trimmed))")
            }
            guard fields.kind == "epoch" || fields.kind == "step" || fields.kind == nil else { continue }
            guard let epoch = fields.epoch else { throw TrainingError("\(source): line \(lineNumber): no \"epoch\"") }
            if fields.kind == "step" {
                history.add(Step(epoch: epoch, step: fields.step, lr: fields.lr, loss: fields.loss, top1: fields.top1))
            } else {
                history.add(Epoch(epoch: epoch, step: fields.step, lr: fields.lr, trainLoss: fields.trainLoss,
                                  trainTop1: fields.trainTop1, valLoss: fields.valLoss, valTop1: fields.valTop1,
                                  valTop5: fields.valTop5))
            }
        }
        guard !history.epochs.isEmpty || !history.steps.isEmpty else {
            let why = text.allSatisfy(\.isWhitespace) ? "the file is empty" : "it has no epoch or step lines"
            throw TrainingError("\(source): nothing to plot: \(why)")
        }
        return history
    }

    /// A resumed run appends lines for epochs the interrupted run had partly logged; the later
    /// lines win, as TensorBoard does with steps that go backwards.
    private mutating func add(_ epoch: Epoch) {
        while let last = epochs.last, last.epoch >= epoch.epoch { epochs.removeLast() }
        epochs.append(epoch)
    }

    private mutating func add(_ step: Step) {
        while let last = steps.last, last.epoch >= step.epoch { steps.removeLast() }
        steps.append(step)
    }
}

/// The keys plots use; JSONDecoder ignores the rest, and a number where a string is expected
/// (or the reverse) is an error naming the key.
private struct MetricsLineFields: Decodable {
    var kind: String?
    var epoch: Double?
    var step: Int?
    var lr: Double?
    var trainLoss: Double?
    var trainTop1: Double?
    var valLoss: Double?
    var valTop1: Double?
    var valTop5: Double?
    var loss: Double?
    var top1: Double?

    enum CodingKeys: String, CodingKey {
        case kind, epoch, step, lr, loss, top1
        case trainLoss = "train_loss", trainTop1 = "train_top1"
        case valLoss = "val_loss", valTop1 = "val_top1", valTop5 = "val_top5"
    }
}

/// One line's worth of "what is wrong", without the decoder's coding-path jargon.
private func problem(_ error: Error, line: String) -> String {
    switch error {
    case DecodingError.typeMismatch(let type, let context), DecodingError.valueNotFound(let type, let context):
        guard let key = context.codingPath.last?.stringValue else { return "not a JSON object" }
        return "\"\(key)\" is not \(type == String.self ? "a string" : type == Int.self ? "an integer" : "a number")"
    default:
        let excerpt = line.count > 60 ? line.prefix(60) + "…" : Substring(line)
        return "not valid JSON: \(excerpt)"
    }
}
