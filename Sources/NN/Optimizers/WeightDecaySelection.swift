/// Which parameters weight decay applies to, as a predicate on the parameter's entry.
public enum WeightDecaySelection {
    /// Decay on every parameter (torch.optim with one parameter group).
    public static func everyParameter(_ p: ParameterEntry) -> Bool { true }

    /// timm's `param_groups_weight_decay` rule behind `--no-wd-on-norm-and-bias`: no decay for
    /// parameters with at most one dimension (biases, BatchNorm weight and bias) or a name
    /// ending in ".bias"; decay for the rest (convolution and linear weights).
    public static func noDecayOnNormAndBias(_ p: ParameterEntry) -> Bool {
        !(p.shape.count <= 1 || p.name.hasSuffix(".bias"))
    }
}

/// The flat buffer cut into maximal runs of parameters that do or do not decay, so an
/// optimizer's loop runs over a few long stretches instead of asking per parameter.
struct WeightDecayRuns {
    private var runs: [(range: Range<Int>, decays: Bool)] = []

    init(store: ParameterStore, applies: (ParameterEntry) -> Bool) {
        // Entries tile 0..<parameterCount in registration order.
        for p in store.parameters where p.count > 0 {
            let decays = applies(p), range = p.offset..<(p.offset + p.count)
            if let last = runs.last, last.decays == decays, last.range.upperBound == range.lowerBound {
                runs[runs.count - 1].range = last.range.lowerBound..<range.upperBound
            } else {
                runs.append((range, decays))
            }
        }
    }

    /// Calls `body` for each stretch of `range`, in order, with whether it decays.
    func forEach(in range: Range<Int>, _ body: (Range<Int>, Bool) -> Void) {
        for run in runs where run.range.overlaps(range) {
            body(run.range.clamped(to: range), run.decays)
        }
    }
}
