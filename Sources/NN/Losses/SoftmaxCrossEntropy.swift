#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif
import Kernels

// Shape letters: N batch, K classes. Logits are an [N, K] matrix (NHWC with H = W = 1).

/// Softmax followed by cross-entropy against integer labels, mean over the batch (PyTorch's
/// `F.cross_entropy(logits, labels, label_smoothing=ε)` with reduction="mean"), or against
/// soft targets (timm's `SoftTargetCrossEntropy`, what Mixup/CutMix train with).
///
/// `forward` keeps the log-probabilities and per-sample losses of the last batch so callers can
/// count top-k accuracy and sum exact evaluation losses without recomputing anything.
public final class SoftmaxCrossEntropy {
    public let labelSmoothing: Float

    /// log softmax of the last forward, [N, K]; valid until the next forward.
    public let logProbabilities = Tensor()
    private let dLogits = Tensor()
    /// The [N, K] targets of the last forward when it was the soft-target one.
    private let softTargets = FloatStorage()
    private var lastForwardWasSoft = false
    private var labels: UnsafeMutablePointer<Int32> = .allocate(capacity: 1)
    private var losses: UnsafeMutablePointer<Float> = .allocate(capacity: 1)
    private var capacity = 1

    /// Σ of per-sample losses of the last forward, accumulated in Double (the mean × N, exactly
    /// what an evaluation sum over a dataset wants).
    public private(set) var lossSum: Double = 0
    /// Batch size of the last forward.
    public private(set) var count = 0

    public init(labelSmoothing: Float = 0) {
        precondition(labelSmoothing >= 0 && labelSmoothing < 1, "label smoothing must be in [0, 1)")
        self.labelSmoothing = labelSmoothing
    }

    deinit { labels.deallocate(); losses.deallocate() }

    /// Returns the mean loss over the batch. `labels` holds N class indices in 0..<K.
    ///
    /// log p_j = z_j − max z − log Σ exp(z_i − max z) (stable log-softmax, sums in Double);
    /// loss = −(1 − ε)·log p_y − ε/K · Σ_j log p_j.
    public func forward(logits: Tensor, labels: UnsafePointer<Int32>) -> Float {
        let (n, k) = prepare(logits)
        lastForwardWasSoft = false
        let eps = Double(labelSmoothing)
        var total = 0.0
        var z = UnsafePointer(logits.pointer)
        var lp = logProbabilities.pointer
        for i in 0..<n {
            let y = Int(labels[i])
            precondition(y >= 0 && y < k, "label \(y) of sample \(i) outside 0..<\(k)")
            self.labels[i] = labels[i]
            let logSum = logSoftmaxRow(z, into: lp, count: k)
            var sumLogP = 0.0
            for j in 0..<k { sumLogP += Double(z[j]) - logSum }
            let nll = -(Double(z[y]) - logSum)
            let loss = eps == 0 ? nll : (1 - eps) * nll - eps / Double(k) * sumLogP
            losses[i] = Float(loss)
            total += loss
            z += k
            lp += k
        }
        lossSum = total
        return Float(total / Double(n))
    }

    /// Returns the mean over the batch of −Σ_j t_j·log p_j, where `targets` holds an [N, K]
    /// row-major distribution per sample (timm's SoftTargetCrossEntropy). `labelSmoothing` is
    /// not applied: soft targets carry their own (MixupCutmix folds it in, as timm's Mixup does).
    ///
    /// For `correctCount`/`isCorrect` a sample's label is its target's largest entry (the first
    /// on ties): the class with the larger share of a mixed pair.
    public func forward(logits: Tensor, targets: UnsafePointer<Float>) -> Float {
        let (n, k) = prepare(logits)
        lastForwardWasSoft = true
        softTargets.reserve(n * k)
        softTargets.pointer.update(from: targets, count: n * k)
        var total = 0.0
        var z = UnsafePointer(logits.pointer)
        var lp = logProbabilities.pointer
        var t = targets
        for i in 0..<n {
            let logSum = logSoftmaxRow(z, into: lp, count: k)
            var loss = 0.0
            var dominant = 0
            for j in 0..<k {
                loss -= Double(t[j]) * (Double(z[j]) - logSum)
                if t[j] > t[dominant] { dominant = j }
            }
            labels[i] = Int32(dominant)
            losses[i] = Float(loss)
            total += loss
            z += k
            lp += k
            t += k
        }
        lossSum = total
        return Float(total / Double(n))
    }

    /// Checks the shape, grows the per-sample buffers and sizes `logProbabilities`.
    private func prepare(_ logits: Tensor) -> (n: Int, k: Int) {
        precondition(logits.h == 1 && logits.w == 1, "SoftmaxCrossEntropy expects [N, K] logits, got NHWC \(logits.shape)")
        let n = logits.n, k = logits.c
        precondition(n > 0 && k > 0, "SoftmaxCrossEntropy: empty logits \(logits.shape)")
        if n > capacity {
            labels.deallocate(); losses.deallocate()
            labels = .allocate(capacity: n)
            losses = .allocate(capacity: n)
            capacity = n
        }
        count = n
        logProbabilities.resize(like: logits)
        return (n, k)
    }

    /// Writes log p_j = z_j − max z − log Σ exp(z_i − max z) (stable, sums in Double) and
    /// returns log Σ exp z, so callers can form losses in Double from z directly.
    private func logSoftmaxRow(_ z: UnsafePointer<Float>, into lp: UnsafeMutablePointer<Float>, count k: Int) -> Double {
        var zmax = z[0]
        for j in 1..<max(k, 1) where z[j] > zmax { zmax = z[j] }
        var sumExp = 0.0
        for j in 0..<k { sumExp += Double(_exp(z[j] - zmax)) }
        let logSum = Double(zmax) + _log(sumExp)
        for j in 0..<k { lp[j] = Float(Double(z[j]) - logSum) }
        return logSum
    }

    /// dLogits = (softmax − target)/N with target = (1 − ε)·onehot + ε/K, or the soft targets
    /// of the last forward.
    public func backward() -> Tensor {
        let n = count, k = logProbabilities.c
        precondition(n > 0, "SoftmaxCrossEntropy.backward before forward")
        dLogits.resize(like: logProbabilities)
        let invN = 1 / Float(n)
        if lastForwardWasSoft {
            let lp = UnsafePointer(logProbabilities.pointer), t = UnsafePointer(softTargets.pointer)
            let d = dLogits.pointer
            for i in 0..<(n * k) { d[i] = (_exp(lp[i]) - t[i]) * invN }
            return dLogits
        }
        let off = labelSmoothing / Float(k), on = 1 - labelSmoothing + off
        var lp = UnsafePointer(logProbabilities.pointer)
        var d = dLogits.pointer
        for i in 0..<n {
            for j in 0..<k { d[j] = (_exp(lp[j]) - off) * invN }
            d[Int(labels[i])] -= (on - off) * invN
            lp += k
            d += k
        }
        return dLogits
    }

    /// The loss of sample `i` of the last forward.
    public func loss(sample i: Int) -> Float {
        precondition(i >= 0 && i < count)
        return losses[i]
    }

    /// The arg-max class of sample `i` (first on ties).
    public func predictedClass(sample i: Int) -> Int {
        precondition(i >= 0 && i < count)
        let k = logProbabilities.c, lp = logProbabilities.pointer + i * k
        var best = 0
        for j in 1..<max(k, 1) where lp[j] > lp[best] { best = j }
        return best
    }

    /// Whether the label of sample `i` is among the `topK` highest scores. Ties are broken by
    /// class index (lower first), as a stable sort would, so a sample counts at most once.
    public func isCorrect(sample i: Int, topK: Int) -> Bool {
        precondition(i >= 0 && i < count && topK > 0)
        let k = logProbabilities.c, lp = logProbabilities.pointer + i * k
        let y = Int(labels[i]), target = lp[y]
        var rank = 0
        for j in 0..<k where lp[j] > target || (lp[j] == target && j < y) { rank += 1 }
        return rank < topK
    }

    /// How many samples of the last forward have their label in the top `topK` classes.
    public func correctCount(topK: Int) -> Int {
        var correct = 0
        for i in 0..<count where isCorrect(sample: i, topK: topK) { correct += 1 }
        return correct
    }
}

@inline(__always) private func _exp(_ x: Float) -> Float { expf(x) }
@inline(__always) private func _log(_ x: Double) -> Double { log(x) }
