import Kernels

/// Stochastic gradient descent with torch.optim.SGD's update rule (maximize=False):
///   g ← scale·grad + wd·p                 (wd = 0 where the weight-decay selection says so)
///   buf ← g                                on the first step
///   buf ← momentum·buf + (1 − dampening)·g after it
///   d ← nesterov ? g + momentum·buf : buf  (d = g without momentum)
///   p ← p − lr·d
/// `scale` folds the 1/worldSize of gradient averaging into the same pass.
///
/// torch's CPU kernels fuse some of these multiply-adds (FMA); ours round each product (a
/// fused loop would call libm's fmaf per element here), so results differ by about an ulp per
/// operation, far inside the 1e-6 the parity test asks for.
public final class SGD: Optimizer {
    public var momentum: Float
    public var dampening: Float
    public var weightDecay: Float
    public var nesterov: Bool
    public let store: ParameterStore
    public var stepCount = 0
    private let buffer: FloatStorage
    private let decayRuns: WeightDecayRuns

    /// `weightDecayApplies` picks the parameters that decay (all by default; see
    /// `WeightDecaySelection.noDecayOnNormAndBias`).
    public init(store: ParameterStore, momentum: Float = 0.9, dampening: Float = 0, weightDecay: Float = 0,
                nesterov: Bool = false,
                weightDecayApplies: (ParameterEntry) -> Bool = WeightDecaySelection.everyParameter) {
        precondition(!nesterov || (momentum > 0 && dampening == 0),
                     "Nesterov momentum requires a momentum and zero dampening (as torch.optim.SGD)")
        self.store = store
        self.momentum = momentum
        self.dampening = dampening
        self.weightDecay = weightDecay
        self.nesterov = nesterov
        buffer = FloatStorage(capacity: store.parameterCount)
        buffer.pointer.update(repeating: 0, count: store.parameterCount)
        decayRuns = WeightDecayRuns(store: store, applies: weightDecayApplies)
    }

    /// The momentum buffer, laid out like the parameters (saved in checkpoints).
    public var momentumBuffer: UnsafeMutablePointer<Float> { buffer.pointer }

    /// Always present (zeros without momentum), so the checkpoint layout does not depend on
    /// hyperparameters.
    public var stateBuffers: [OptimizerStateBuffer] {
        [OptimizerStateBuffer(name: "momentum_buffer", pointer: buffer.pointer)]
    }

    /// Updates the parameters in `range` of the flat buffers (all of them by default; a frozen
    /// backbone passes the head's range, so frozen weights see no update and no weight decay).
    public func step(learningRate: Float, gradientScale: Float = 1, range: Range<Int>? = nil) {
        let range = range ?? 0..<store.parameterCount
        // torch starts the buffer at g. With dampening 0 the general rule from a zero buffer
        // gives exactly that, and keeps working when a checkpoint restored the buffer but not
        // the step count, so only dampening needs the first step told apart.
        let firstWithDampening = stepCount == 0 && dampening != 0
        stepCount += 1
        let m = momentum, lr = learningRate, scale = gradientScale
        let gradientWeight = Float(1 - dampening.pythonFloat)
        decayRuns.forEach(in: range) { run, decays in
            let count = run.count
            let p = store.values + run.lowerBound, grad = store.gradients + run.lowerBound
            let buf = buffer.pointer + run.lowerBound
            let wd = decays ? weightDecay : 0
            if m == 0 {
                for i in 0..<count {
                    let g = grad[i] * scale + wd * p[i]
                    p[i] -= lr * g
                }
            } else if firstWithDampening {
                // Nesterov is excluded with dampening, so d = buf = g.
                for i in 0..<count {
                    let g = grad[i] * scale + wd * p[i]
                    buf[i] = g
                    p[i] -= lr * g
                }
            } else if nesterov {
                for i in 0..<count {
                    let g = grad[i] * scale + wd * p[i]
                    let b = m * buf[i] + g
                    buf[i] = b
                    p[i] -= lr * (g + m * b)
                }
            } else {
                for i in 0..<count {
                    let g = grad[i] * scale + wd * p[i]
                    let b = m * buf[i] + gradientWeight * g
                    buf[i] = b
                    p[i] -= lr * b
                }
            }
        }
    }
}
