import Foundation

/// The learning rate at a given step: optional linear warm-up, then cosine decay to 0 over the
/// remaining steps (stepped per iteration, like timm's per-step schedulers), or constant.
public struct LearningRateSchedule: Sendable {
    public let baseLR: Float
    public let totalSteps: Int
    public let warmupSteps: Int
    public let cosine: Bool

    public init(baseLR: Float, totalSteps: Int, warmupSteps: Int, cosine: Bool) {
        self.baseLR = baseLR
        self.totalSteps = max(totalSteps, 1)
        self.warmupSteps = max(warmupSteps, 0)
        self.cosine = cosine
    }

    public func learningRate(atStep step: Int) -> Float {
        if step < warmupSteps {
            return baseLR * Float(step + 1) / Float(warmupSteps)
        }
        guard cosine else { return baseLR }
        let span = max(totalSteps - warmupSteps, 1)
        let progress = Double(min(step - warmupSteps, span)) / Double(span)
        return Float(Double(baseLR) * 0.5 * (1 + cos(Double.pi * progress)))
    }
}
