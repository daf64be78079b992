import Kernels

// Shape letters: N batch, H/W height/width, C channels.

/// torchvision.ops.StochasticDepth(p, mode="row"): in training each image (row of the batch)
/// is zeroed with probability p and the survivors are scaled by 1/(1 − p); in evaluation, or
/// with p = 0, it is the identity. Applied to a residual branch before the shortcut is added,
/// it drops the whole block for that image.
///
/// The Bernoulli draws come from `randomSeed` (set by the model every step), one per image in
/// batch order, so a fixed seed makes the layer linear in its input and finite differences apply.
public final class StochasticDepth: StochasticLayer {
    public var probability: Float {
        didSet { precondition(probability >= 0 && probability <= 1, "stochastic depth probability must be in [0, 1]") }
    }
    public var randomSeed: UInt64 = 0
    private let output = Tensor()
    /// Per image: 0 when dropped, 1/(1 − p) when kept.
    private let factors = Tensor()
    private var applied = false

    public init(probability: Float) {
        precondition(probability >= 0 && probability <= 1, "stochastic depth probability must be in [0, 1]")
        self.probability = probability
    }

    public func forward(_ x: Tensor, mode: Mode) -> Tensor {
        guard drawFactors(x, mode: mode) else { return x }
        output.resize(like: x)
        scaleImages(x.pointer, factors.pointer, output.pointer, images: x.n, perImage: x.h * x.w * x.c)
        return output
    }

    /// `forward` written over `x` itself, for an owner whose `x` is scratch it may overwrite
    /// (MBConv: its block's last BatchNorm output, which the shortcut is added to next). Saves
    /// the activation-sized copy; backward is the same.
    public func forwardInPlace(_ x: Tensor, mode: Mode) {
        guard drawFactors(x, mode: mode) else { return }
        scaleImages(x.pointer, factors.pointer, x.pointer, images: x.n, perImage: x.h * x.w * x.c)
    }

    /// Draws this step's per-image factors; false when the layer is the identity.
    private func drawFactors(_ x: Tensor, mode: Mode) -> Bool {
        applied = mode == .train && probability > 0
        guard applied else { return false }
        let n = x.n
        factors.resize(n: n, h: 1, w: 1, c: 1)
        var rng = SplitMix64(seed: randomSeed)
        let survival = 1 - probability
        // torch: noise.bernoulli_(survival); noise /= survival when survival > 0.
        let keepScale: Float = survival > 0 ? 1 / survival : 0
        let f = factors.pointer
        for i in 0..<n { f[i] = rng.nextUniform() < survival ? keepScale : 0 }
        return true
    }

    public func backward(_ dy: Tensor) -> Tensor {
        guard applied else { return dy }
        precondition(dy.n == factors.n, "StochasticDepth.backward: gradient batch \(dy.n) ≠ forward batch \(factors.n)")
        let dx = dy.inPlaceOrNew()
        scaleImages(dy.pointer, factors.pointer, dx.pointer, images: dy.n, perImage: dy.h * dy.w * dy.c)
        dy.release(unlessItIs: dx)
        return dx
    }

    /// y = x·f per image; `y` may alias `x` (Note [In-place loops]).
    private func scaleImages(_ x: UnsafePointer<Float>, _ f: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>,
                             images: Int, perImage: Int) {
        inPlaceAware(x, y) { x, y in
            for i in 0..<images {
                let factor = f[i], src = x + i &* perImage, dst = y + i &* perImage
                if factor == 0 { dst.update(repeating: 0, count: perImage); continue }
                for j in 0..<perImage { dst[j] = src[j] * factor }
            }
        }
    }
}
