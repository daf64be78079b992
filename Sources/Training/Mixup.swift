import Foundation
import Kernels
import NN

/// Mixup and CutMix over a whole batch with label-smoothed soft targets: timm's `Mixup` with
/// mode="batch", correct_lam=True and no cutmix_minmax (`--mixup-alpha`, `--cutmix-alpha`,
/// `--label-smoothing`). Sample i is mixed with sample N−1−i (timm's `x.flip(0)`):
///   mixup:   x_i ← λ·x_i + (1 − λ)·x_{N−1−i},   λ ~ Beta(mixupAlpha, mixupAlpha)
///   cutmix:  a box of x_i is replaced by the same box of x_{N−1−i}, λ ~ Beta(cutmixAlpha,
///            cutmixAlpha) sets the box size and is then corrected to the share of pixels kept
///   targets: λ·smooth(y_i) + (1 − λ)·smooth(y_{N−1−i}), smooth(y) = one-hot with on = 1 − ε +
///            ε/K, off = ε/K
/// Each batch mixes with probability `mixProbability`; with both alphas > 0 it is CutMix with
/// probability `switchProbability`, else Mixup. timm requires an even batch; here the middle
/// sample of an odd one (the last, short batch of an epoch) is paired with itself, so it stays
/// as it is and keeps its own target.
///
/// The draws come from our SplitMix64, not numpy's generator, so the randomness is timm's in
/// distribution, not bit for bit; everything after the draws is timm's arithmetic.
public struct MixupCutmix: Sendable, Equatable {
    public let mixupAlpha: Float
    public let cutmixAlpha: Float
    public let switchProbability: Float
    public let mixProbability: Float
    public let labelSmoothing: Float
    public let numClasses: Int

    /// A CutMix box in pixel rows yl..<yh and columns xl..<xh (timm's rand_bbox order).
    public struct Box: Sendable, Equatable {
        public let yl: Int, yh: Int, xl: Int, xh: Int
        public init(yl: Int, yh: Int, xl: Int, xh: Int) {
            self.yl = yl; self.yh = yh; self.xl = xl; self.xh = xh
        }
        public var area: Int { max(yh - yl, 0) * max(xh - xl, 0) }
    }

    public init(mixupAlpha: Float, cutmixAlpha: Float, switchProbability: Float = 0.5, mixProbability: Float = 1,
                labelSmoothing: Float, numClasses: Int) {
        precondition(mixupAlpha >= 0 && cutmixAlpha >= 0, "mixup and cutmix alphas must be ≥ 0")
        precondition((0...1).contains(switchProbability) && (0...1).contains(mixProbability),
                     "probabilities must be in [0, 1]")
        precondition(labelSmoothing >= 0 && labelSmoothing < 1, "label smoothing must be in [0, 1)")
        precondition(numClasses > 0)
        self.mixupAlpha = mixupAlpha
        self.cutmixAlpha = cutmixAlpha
        self.switchProbability = switchProbability
        self.mixProbability = mixProbability
        self.labelSmoothing = labelSmoothing
        self.numClasses = numClasses
    }

    /// Whether any mixing can happen (otherwise `apply` only smooths the targets).
    public var isActive: Bool { mixupAlpha > 0 || cutmixAlpha > 0 }

    /// Mixes `images` (NHWC, one batch) in place and returns λ (after CutMix's correction; 1
    /// when this batch was not mixed) and the [N, K] row-major soft targets.
    public func apply(images: Tensor, labels: [Int32], rng: inout SplitMix64) -> (lambda: Float, targets: [Float]) {
        precondition(labels.count == images.n, "\(labels.count) labels for a batch of \(images.n)")
        guard isActive, mixProbability >= 1 || Double(rng.nextUniform()) < Double(mixProbability) else {
            return (1, targets(labels: labels, lambda: 1))
        }
        let useCutmix: Bool
        if mixupAlpha > 0 && cutmixAlpha > 0 {
            useCutmix = rng.nextUniform() < switchProbability
        } else {
            useCutmix = cutmixAlpha > 0
        }
        let alpha = Double(useCutmix ? cutmixAlpha : mixupAlpha)
        let lambda = rng.nextBeta(alpha, alpha)
        if lambda == 1 { return (1, targets(labels: labels, lambda: 1)) }
        if useCutmix {
            let box = Self.cutmixBox(height: images.h, width: images.w, lambda: lambda, rng: &rng)
            return applyCutmix(images: images, labels: labels, box: box)
        }
        return applyMixup(images: images, labels: labels, lambda: lambda)
    }

    /// x_i ← λ·x_i + (1 − λ)·x_{N−1−i} for every sample, in place, and the mixed targets.
    public func applyMixup(images: Tensor, labels: [Int32], lambda: Double) -> (lambda: Float, targets: [Float]) {
        precondition(labels.count == images.n)
        // timm: x.flip(0).mul_(1 − λ), x.mul_(λ).add_(…), each factor a Python float cast to float32.
        let keep = Float(lambda), take = Float(1 - lambda)
        let n = images.n, size = images.h * images.w * images.c
        for i in 0..<(n / 2) {
            let a = images.pointer + i * size, b = images.pointer + (n - 1 - i) * size
            for e in 0..<size {
                let ae = a[e], be = b[e]
                a[e] = ae * keep + be * take
                b[e] = be * keep + ae * take
            }
        }
        // The middle sample of an odd batch mixes with itself: λ·x + (1 − λ)·x, as timm's flip would.
        if n % 2 == 1 {
            let m = images.pointer + (n / 2) * size
            for e in 0..<size { m[e] = m[e] * keep + m[e] * take }
        }
        return (Float(lambda), targets(labels: labels, lambda: lambda))
    }

    /// Copies `box` of sample N−1−i into sample i for every i (a swap within each pair), and
    /// returns λ corrected to the share of pixels kept, 1 − area/(H·W), with its targets.
    public func applyCutmix(images: Tensor, labels: [Int32], box: Box) -> (lambda: Float, targets: [Float]) {
        precondition(labels.count == images.n)
        let n = images.n, h = images.h, w = images.w, c = images.c
        precondition(box.yl >= 0 && box.yh <= h && box.xl >= 0 && box.xh <= w, "box \(box) outside \(h)×\(w)")
        let size = h * w * c, span = max(box.xh - box.xl, 0) * c
        for i in 0..<(n / 2) {
            let a = images.pointer + i * size, b = images.pointer + (n - 1 - i) * size
            for y in box.yl..<max(box.yh, box.yl) {
                let offset = (y * w + box.xl) * c
                let ra = a + offset, rb = b + offset
                for e in 0..<span { let t = ra[e]; ra[e] = rb[e]; rb[e] = t }
            }
        }
        let lambda = 1 - Double(box.area) / Double(h * w)
        return (Float(lambda), targets(labels: labels, lambda: lambda))
    }

    /// timm's rand_bbox: side ratio √(1 − λ), centre uniform over the image, clipped to it.
    public static func cutmixBox(height: Int, width: Int, lambda: Double, rng: inout SplitMix64) -> Box {
        let cy = rng.nextInt(below: height), cx = rng.nextInt(below: width)
        return cutmixBox(height: height, width: width, lambda: lambda, centerY: cy, centerX: cx)
    }

    /// The box rand_bbox makes around a given centre: int(H·√(1 − λ)) × int(W·√(1 − λ)), the
    /// odd pixel after the centre, clipped to the image.
    public static func cutmixBox(height: Int, width: Int, lambda: Double, centerY cy: Int, centerX cx: Int) -> Box {
        let ratio = (1 - lambda).squareRoot()
        let cutH = Int(Double(height) * ratio), cutW = Int(Double(width) * ratio)
        return Box(yl: min(max(cy - cutH / 2, 0), height), yh: min(max(cy + (cutH + 1) / 2, 0), height),
                   xl: min(max(cx - cutW / 2, 0), width), xh: min(max(cx + (cutW + 1) / 2, 0), width))
    }

    /// λ·smooth(y_i) + (1 − λ)·smooth(y_{N−1−i}), [N, K] row-major (timm's mixup_target, float32).
    public func targets(labels: [Int32], lambda: Double) -> [Float] {
        let k = numClasses, n = labels.count
        let smoothing = labelSmoothing.pythonFloat
        let off = Float(smoothing / Double(k)), on = Float(1 - smoothing + smoothing / Double(k))
        let keep = Float(lambda), take = Float(1 - lambda)
        var result = [Float](repeating: 0, count: n * k)
        result.withUnsafeMutableBufferPointer { t in
            for i in 0..<n {
                let own = Int(labels[i]), other = Int(labels[n - 1 - i])
                precondition(own >= 0 && own < k, "label \(own) outside 0..<\(k)")
                let row = t.baseAddress! + i * k
                for j in 0..<k {
                    row[j] = (j == own ? on : off) * keep + (j == other ? on : off) * take
                }
            }
        }
        return result
    }
}
