/// What a rank is doing, for the stall report (`--collective-timeout`): the trainer sets it
/// as it goes, and every collective carries it. Static text and integers only, so setting it
/// every step allocates nothing.
public struct CollectivePhase: Sendable, CustomStringConvertible {
    public var name: StaticString
    /// 1-based; 0 when the phase has none.
    public var epoch: Int
    public var step: Int
    /// The gradient bucket being reduced (1-based) and how many there are; 0 outside buckets.
    public var bucket = 0
    public var buckets = 0
    /// Waiting here is expected to last as long as rank 0's own work (an evaluation on rank 0
    /// alone): not a stall while rank 0 keeps reporting.
    public var patient = false

    public init(_ name: StaticString, epoch: Int = 0, step: Int = 0) {
        self.name = name
        self.epoch = epoch
        self.step = step
    }

    public static let setUp = CollectivePhase("set-up")
    public static let finished = CollectivePhase("finished")

    public var description: String {
        var text = "\(name)"
        if step > 0 { text += " \(step)" }
        if epoch > 0 { text += " of epoch \(epoch)" }
        if buckets > 0 { text += ", gradient bucket \(bucket) of \(buckets)" }
        return text
    }
}

/// The trainer's phases (one place, so the report's wording stays consistent).
extension CollectivePhase {
    public static let startingState = CollectivePhase("broadcast of the starting weights")
    public static func trainStep(epoch: Int, step: Int) -> CollectivePhase { .init("train step", epoch: epoch, step: step) }
    public static func stepLine(epoch: Int, step: Int) -> CollectivePhase { .init("metrics after step", epoch: epoch, step: step) }
    public static func midEpochCheckpoint(epoch: Int, step: Int) -> CollectivePhase {
        .init("checkpoint after step", epoch: epoch, step: step)
    }
    public static func epochEnd(epoch: Int) -> CollectivePhase { .init("end of training", epoch: epoch) }
    public static func evaluation(epoch: Int) -> CollectivePhase { .init("evaluation", epoch: epoch) }
    public static func rootWrites(epoch: Int) -> CollectivePhase { .init("logging and checkpoints (rank 0)", epoch: epoch) }
    public static func waitingForRootEvaluation() -> CollectivePhase {
        var phase = CollectivePhase("waiting for rank 0's evaluation (--eval-on rank0)")
        phase.patient = true
        return phase
    }
}
