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
    private let dInput = Tensor()
    /// Per image: 0 when dropped, 1/(1 − p) when kept.
    private let factors = Tensor()
    private var applied = false

    public init(probability: Float) {
        precondition(probability >= 0 && probability <= 1, "stochastic depth probability must be in [0, 1]")
        self.probability = probability
    }

    public func forward(_ x: Tensor, mode: Mode) -> Tensor {
        applied = mode == .train && probability > 0
        guard applied else { return x }
        let n = x.n, perImage = x.h * x.w * x.c
        factors.resize(n: n, h: 1, w: 1, c: 1)
        var rng = SplitMix64(seed: randomSeed)
        let survival = 1 - probability
        // torch: noise.bernoulli_(survival); noise /= survival when survival > 0.
        let keepScale: Float = survival > 0 ? 1 / survival : 0
        let f = factors.pointer
        for i in 0..<n { f[i] = rng.nextUniform() < survival ? keepScale : 0 }
        output.resize(like: x)
        scaleImages(x.pointer, f, output.pointer, images: n, perImage: perImage)
        return output
    }

    public func backward(_ dy: Tensor) -> Tensor {
        guard applied else { return dy }
        precondition(dy.shape == output.shape, "StochasticDepth.backward: gradient shape \(dy.shape) ≠ \(output.shape)")
        dInput.resize(like: dy)
        scaleImages(dy.pointer, factors.pointer, dInput.pointer, images: dy.n, perImage: dy.h * dy.w * dy.c)
        return dInput
    }

    private func scaleImages(_ x: UnsafePointer<Float>, _ f: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>,
                             images: Int, perImage: Int) {
        for i in 0..<images {
            let factor = f[i], src = x + i &* perImage, dst = y + i &* perImage
            if factor == 0 { dst.update(repeating: 0, count: perImage); continue }
            for j in 0..<perImage { dst[j] = src[j] * factor }
        }
    }
}
