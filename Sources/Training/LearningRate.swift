import Foundation
import NN

/// The learning rate of every iteration, as torch.optim.lr_scheduler would set it in
/// torchvision's and timm's recipes (fixture-tested against the real schedulers).
///
/// Warm-up: torchvision's `LinearLR(start_factor, total_iters=W)` stepped per iteration, where
/// W = warmupEpochs·stepsPerEpoch rounded to whole iterations: lr = base·(f + (1 − f)·k/W) at
/// iteration k < W, so it starts at f·base and reaches base at iteration W. Then the main
/// schedule starts at its own iteration 0 (torch's `SequentialLR`), so its milestones and its
/// cosine period count from the end of warm-up, as in torchvision's reference scripts.
///
/// Main schedules, with s = iterations since warm-up and e = s / stepsPerEpoch (whole epochs):
///   constant   base
///   multistep  base·γ^(number of milestones ≤ e)      (`MultiStepLR`, stepped per epoch)
///   step       base·γ^⌊e / stepSize⌋                   (`StepLR`, stepped per epoch)
///   cosine     minLR + (base − minLR)·(1 + cos(π·s/T))/2 with T = total − W iterations
///              (`CosineAnnealingLR(T_max=T, eta_min=minLR)` per iteration; minLR from s = T on)
///   onecycle   `OneCycleLR(max_lr=base, total_steps=epochs·stepsPerEpoch, pct_start,
///              div_factor, final_div_factor, anneal_strategy="cos", three_phase=False)` per
///              iteration. It warms up by itself (from base/divFactor), so warmupEpochs is
///              ignored for it (`warmupSteps` is 0).
/// Past the last iteration the formulas go on where torch's would (step keeps decaying), except
/// that cosine holds minLR instead of rising again and onecycle holds its final value (torch
/// refuses to step it further).
public struct LearningRateSchedule: Sendable, Equatable {
    public enum Kind: String, CaseIterable, Sendable {
        case constant, multistep, step, cosine, onecycle

        /// A kind from its name (`--lr-schedule`), with an error listing the valid ones.
        public static func parse(_ name: String) throws -> Kind {
            guard let kind = Kind(rawValue: name.lowercased()) else {
                let valid = allCases.map(\.rawValue).joined(separator: ", ")
                throw TrainingError("unknown --lr-schedule '\(name)': use one of \(valid)")
            }
            return kind
        }
    }

    public let kind: Kind
    public let baseLR: Float
    public let stepsPerEpoch: Int
    public let epochs: Int
    /// Warm-up length in iterations (0 for onecycle).
    public let warmupSteps: Int
    public let warmupStartFactor: Float
    /// multistep: the epochs (counted after warm-up) at which the rate is multiplied by gamma.
    public let milestones: [Int]
    /// step: the rate is multiplied by gamma every stepSize epochs (counted after warm-up).
    public let stepSize: Int
    public let gamma: Float
    /// cosine: the rate at the end.
    public let minLR: Float
    /// onecycle: share of the iterations spent rising from base/divFactor to base; the rest
    /// anneals to base/(divFactor·finalDivFactor).
    public let pctStart: Float
    public let divFactor: Float
    public let finalDivFactor: Float

    /// Iterations in the whole run.
    public var totalSteps: Int { stepsPerEpoch * epochs }

    /// Defaults: torchvision's reference-script defaults (`--lr-warmup-decay` 0.01 as the warm-up
    /// start factor, `--lr-step-size` 30, `--lr-gamma` 0.1) and torch's `OneCycleLR` defaults
    /// (pct_start 0.3, div_factor 25, final_div_factor 1e4). Milestones have no sensible default
    /// (torchvision's 16,22 belong to one recipe): none means multistep never decays.
    public init(kind: Kind, baseLR: Float, stepsPerEpoch: Int, epochs: Int, warmupEpochs: Float = 0,
                warmupStartFactor: Float = 0.01, milestones: [Int] = [], stepSize: Int = 30, gamma: Float = 0.1,
                minLR: Float = 0, pctStart: Float = 0.3, divFactor: Float = 25, finalDivFactor: Float = 1e4) {
        precondition(stepsPerEpoch > 0 && epochs > 0, "a schedule needs at least one step and one epoch")
        precondition(warmupEpochs >= 0 && warmupStartFactor > 0 && warmupStartFactor <= 1,
                     "warm-up needs warmupEpochs ≥ 0 and a start factor in (0, 1] (as LinearLR)")
        precondition(kind != .step || stepSize > 0, "the step schedule needs a step size > 0")
        precondition(kind != .onecycle || (pctStart > 0 && pctStart < 1 && divFactor > 0 && finalDivFactor > 0),
                     "onecycle needs pctStart in (0, 1) and positive div factors")
        self.kind = kind
        self.baseLR = baseLR
        self.stepsPerEpoch = stepsPerEpoch
        self.epochs = epochs
        // Rounded, not truncated: 0.3 epochs × 10 steps is 2.9999998 in Float.
        let warmup = Int((Double(warmupEpochs) * Double(stepsPerEpoch)).rounded())
        self.warmupSteps = kind == .onecycle ? 0 : warmup
        self.warmupStartFactor = warmupStartFactor
        self.milestones = milestones
        self.stepSize = stepSize
        self.gamma = gamma
        self.minLR = minLR
        self.pctStart = pctStart
        self.divFactor = divFactor
        self.finalDivFactor = finalDivFactor
    }

    /// The former schedule's initializer (cosine or constant over `totalSteps` iterations),
    /// kept so existing callers build; warm-up now follows the LinearLR rule above.
    public init(baseLR: Float, totalSteps: Int, warmupSteps: Int, cosine: Bool) {
        self.init(kind: cosine ? .cosine : .constant, baseLR: baseLR, stepsPerEpoch: 1, epochs: max(totalSteps, 1),
                  warmupEpochs: Float(max(warmupSteps, 0)))
    }

    /// Parses `--milestones 30,60` (epochs, comma separated).
    public static func parseMilestones(_ text: String) throws -> [Int] {
        let parts = text.split(separator: ",", omittingEmptySubsequences: false)
        let values = parts.map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !parts.isEmpty, values.allSatisfy({ $0 != nil && $0! >= 0 }) else {
            throw TrainingError("--milestones '\(text)': expected epochs separated by commas, e.g. 30,60")
        }
        return values.map { $0! }
    }

    /// The rate iteration `step` (0-based, counted over the whole run) trains with.
    public func learningRate(atStep step: Int) -> Float {
        let step = max(step, 0)
        if step < warmupSteps {
            let f = warmupStartFactor.pythonFloat
            return Float(Double(baseLR) * (f + (1 - f) * Double(step) / Double(warmupSteps)))
        }
        let s = step - warmupSteps
        let base = Double(baseLR)
        switch kind {
        case .constant:
            return baseLR
        case .multistep:
            let epoch = s / stepsPerEpoch
            let decays = milestones.filter { $0 <= epoch }.count
            return Float(base * pow(gamma.pythonFloat, Double(decays)))
        case .step:
            let epoch = s / stepsPerEpoch
            return Float(base * pow(gamma.pythonFloat, Double(epoch / stepSize)))
        case .cosine:
            let period = max(totalSteps - warmupSteps, 1)
            let progress = Double(min(s, period)) / Double(period)
            let floor = minLR.pythonFloat
            return Float(floor + (base - floor) * (1 + cos(Double.pi * progress)) / 2)
        case .onecycle:
            return oneCycle(atStep: min(s, totalSteps - 1))
        }
    }

    /// torch's OneCycleLR.get_lr, two phases: cos from initial to max over iterations
    /// 0…pctStart·total − 1, then cos from max to the minimum at iteration total − 1.
    private func oneCycle(atStep step: Int) -> Float {
        let maxLR = Double(baseLR)
        let initialLR = maxLR / divFactor.pythonFloat
        let finalLR = initialLR / finalDivFactor.pythonFloat
        let peak = pctStart.pythonFloat * Double(totalSteps) - 1
        let last = Double(totalSteps - 1)
        let t = Double(step)
        func anneal(_ start: Double, _ end: Double, _ pct: Double) -> Double {
            end + (start - end) / 2 * (cos(Double.pi * pct) + 1)
        }
        if t <= peak {
            // peak = 0 (pctStart·total = 1): torch divides by zero; the one rising step is the peak.
            return Float(anneal(initialLR, maxLR, peak > 0 ? t / peak : 1))
        }
        return Float(anneal(maxLR, finalLR, (t - peak) / (last - peak)))
    }
}
