#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif
import Kernels

// Shape letters: N batch, K classes. Logits are an [N, K] matrix (NHWC with H = W = 1).

/// Softmax followed by cross-entropy against integer labels, mean over the batch (PyTorch's
/// `F.cross_entropy(logits, labels, label_smoothing=ε)` with reduction="mean").
///
/// `forward` keeps the log-probabilities and per-sample losses of the last batch so callers can
/// count top-k accuracy and sum exact evaluation losses without recomputing anything.
public final class SoftmaxCrossEntropy {
    public let labelSmoothing: Float

    /// log softmax of the last forward, [N, K]; valid until the next forward.
    public let logProbabilities = Tensor()
    private let dLogits = Tensor()
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
        precondition(logits.h == 1 && logits.w == 1, "SoftmaxCrossEntropy expects [N, K] logits, got NHWC \(logits.shape)")
        let n = logits.n, k = logits.c
        precondition(n > 0 && k > 0, "SoftmaxCrossEntropy: empty logits \(logits.shape)")
        if n > capacity {
            self.labels.deallocate(); losses.deallocate()
            self.labels = .allocate(capacity: n)
            losses = .allocate(capacity: n)
            capacity = n
        }
        count = n
        logProbabilities.resize(like: logits)
        let eps = Double(labelSmoothing)
        var total = 0.0
        var z = UnsafePointer(logits.pointer)
        var lp = logProbabilities.pointer
        for i in 0..<n {
            let y = Int(labels[i])
            precondition(y >= 0 && y < k, "label \(y) of sample \(i) outside 0..<\(k)")
            self.labels[i] = labels[i]
            var zmax = z[0]
            for j in 1..<max(k, 1) where z[j] > zmax { zmax = z[j] }
            var sumExp = 0.0
            for j in 0..<k { sumExp += Double(_exp(z[j] - zmax)) }
            let logSum = Double(zmax) + _log(sumExp)
            var sumLogP = 0.0
            for j in 0..<k {
                let v = Double(z[j]) - logSum
                lp[j] = Float(v)
                sumLogP += v
            }
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

    /// dLogits = (softmax − target)/N with target = (1 − ε)·onehot + ε/K.
    public func backward() -> Tensor {
        let n = count, k = logProbabilities.c
        precondition(n > 0, "SoftmaxCrossEntropy.backward before forward")
        dLogits.resize(like: logProbabilities)
        let invN = 1 / Float(n)
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
