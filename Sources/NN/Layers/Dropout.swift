import Kernels

/// Layers that draw random numbers in training. The model hands each one a fresh seed before
/// every training step, derived from (run seed, step, rank), so a run is reproducible and a
/// resumed run draws exactly what the uninterrupted one would have.
public protocol StochasticLayer: Layer {
    var randomSeed: UInt64 { get set }
    /// The drop probability; 0 makes the layer the identity in training too (what parity tests
    /// with a reference set on both sides, since the two sides' random draws differ).
    var probability: Float { get set }
}

/// torch.nn.Dropout: in training, each element is zeroed with probability p and the survivors
/// are scaled by 1/(1 − p); in evaluation it is the identity.
public final class Dropout: StochasticLayer {
    public var probability: Float {
        didSet { precondition(probability >= 0 && probability < 1, "dropout probability must be in [0, 1)") }
    }
    public var randomSeed: UInt64 = 0
    private let output = Tensor()
    /// Per element: 0 for dropped, 1/(1 − p) for kept (the factor backward multiplies by).
    private let mask = Tensor()
    private var lastMode = Mode.eval

    public init(probability: Float) {
        precondition(probability >= 0 && probability < 1, "dropout probability must be in [0, 1)")
        self.probability = probability
    }

    public func forward(_ x: Tensor, mode: Mode) -> Tensor {
        lastMode = mode
        guard mode == .train, probability > 0 else { return x }
        output.resize(like: x)
        mask.resize(like: x)
        var rng = SplitMix64(seed: randomSeed)
        let keepScale = 1 / (1 - probability), p = probability
        let m = mask.pointer, y = output.pointer, input = x.pointer
        for i in 0..<x.count {
            let factor: Float = rng.nextUniform() < p ? 0 : keepScale
            m[i] = factor
            y[i] = input[i] * factor
        }
        return output
    }

    public func backward(_ dy: Tensor) -> Tensor {
        guard lastMode == .train, probability > 0 else { return dy }
        precondition(dy.hasSameShape(as: mask), "Dropout.backward: gradient shape \(dy.shape) ≠ \(mask.shape)")
        let dx = dy.inPlaceOrNew()
        let m = UnsafePointer(mask.pointer), count = dy.count
        inPlaceAware(dy.pointer, dx.pointer) { g, d in  // Note [In-place loops]
            for i in 0..<count { d[i] = g[i] * m[i] }
        }
        dy.release(unlessItIs: dx)
        return dx
    }
}
