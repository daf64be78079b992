import Kernels

// Shape letters: N batch, Ho/Wo output height/width, O output channels (the BatchNorm's C),
// R = Kh·Kw·Cg weights of one output channel (one OHWI row), M = N·Ho·Wo output rows.

// Note [BatchNorm folding]
// ~~~~~~~~~~~~~~~~~~~~~~~~
// In eval, BatchNorm is a fixed affine map per channel, z = x·s + (β − μ·s) with
// s = γ/√(σ² + eps) from the running statistics, so BatchNorm(conv(x)) is one convolution:
//   W'[o] = W[o]·s[o],   b'[o] = β[o] + (b[o] − μ[o])·s[o]      (b = 0 without a conv bias)
// (Jacob et al. 2018, "Quantization and Training of Neural Networks for Efficient
// Integer-Arithmetic-Only Inference", §3.2; torch.fx's fuse_conv_bn_eval does the same).
// A convolution paired with the BatchNorm that reads its output (`Conv2d.foldInEval(_:)`,
// called where a model builds the pair) runs its eval forward with W' and a bias-free GEMM;
// after each chunk's GEMM, while that chunk of the output is still in cache, `finish` adds b'
// and applies the BatchNorm's fused activation (Note [Fused activation]) in place. The
// BatchNorm's eval forward then finds its input already normalised and returns it as is: no
// pass over the activations of its own. Depthwise convolutions fold the same way (R = Kh·Kw).
// Train mode never looks at any of this.
//
// Staleness. W' and b' are cached and recomputed when the store's `version` differs from the
// one they were folded at. Every write to parameters or running statistics (optimizer step,
// weights or checkpoint load, EMA, broadcasts, the running-statistics average, BatchNorm's
// training forward, a test poking a value) goes through an accessor that bumps it (Note
// [Parameter version]), so a stale fold cannot be used by construction, not by convention.
//
// The hand-off. The BatchNorm skips its work only when the tensor it is given is the one its
// convolution produced in this eval forward with W' and finished over every row; otherwise
// (folding off, a tensor from elsewhere) it normalises as usual. A convolution forward that
// took W' but did not finish every row stops the BatchNorm with a message instead of letting a
// half-folded output through (a kernel path added to Conv2d.forward must call `finish` too).
//
// Numerics: the folded eval is not bit-identical to the unfolded one, only equal to rounding:
// W·s is rounded to float once, before the GEMM sums it, where BatchNorm scales and shifts the
// rounded sum (and the sums run in another order). The tests hold whole networks' logits to
// the unfolded ones within 1e-5 relative to their largest magnitude.

/// The folded weight and bias of one convolution + BatchNorm pair, cached, with the hand-off
/// from the convolution's eval forward to the BatchNorm's (Note [BatchNorm folding]).
public final class BatchNormFold {
    public let channels: Int
    public let activation: FusedActivation
    /// How many times W' and b' were computed (tests check that they are cached).
    public private(set) var foldCount = 0

    private let store: ParameterStore
    private let convWeight: ParameterEntry
    private let convBias: ParameterEntry?
    private let gamma: ParameterEntry
    private let beta: ParameterEntry
    private let runningMean: BufferEntry
    private let runningVar: BufferEntry
    private let eps: Float
    /// Weights per output channel: Kh·Kw·Cg.
    private let rowLength: Int
    private let weight = FloatStorage()
    private let bias = FloatStorage()
    /// The store's version W' and b' were computed at; nil before the first fold.
    private var foldedVersion: UInt64?
    private enum State { case idle, running(output: ObjectIdentifier, rowsFinished: Int) }
    private var state = State.idle
    private static let profileCategory = Profiler.category("folded BN: bias+activation", isKernel: true)

    init(convolution conv: Conv2d, batchNorm bn: BatchNorm2d, store: ParameterStore) {
        precondition(conv.outChannels == bn.channels,
                     "\(conv.weight.name) has \(conv.outChannels) output channels, its BatchNorm \(bn.channels)")
        self.store = store
        channels = bn.channels
        activation = bn.activation
        convWeight = conv.weight
        convBias = conv.bias
        gamma = bn.weight
        beta = bn.bias
        runningMean = bn.runningMean
        runningVar = bn.runningVar
        eps = bn.eps
        rowLength = conv.weight.count / conv.outChannels
    }

    /// The pointers a convolution's eval forward works with: W' (OHWI, like the weight) and
    /// `finish` for each finished chunk of output rows.
    public struct Folded {
        public let weight: UnsafePointer<Float>
        let fold: BatchNormFold
        /// Adds b' and applies the activation to `rows` finished output rows at `y` (in place).
        @inline(__always) public func finish(_ y: UnsafeMutablePointer<Float>, rows: Int) { fold.finish(y, rows: rows) }
    }

    /// Called by the paired convolution at the start of every forward into `output`: in eval
    /// with folding on, W' (refolded first if the store changed since) and the `finish` hook;
    /// nil otherwise, and the convolution computes the plain convolution.
    func begin(_ output: Tensor, mode: Mode) -> Folded? {
        guard mode == .eval, store.foldsBatchNormInEval else {
            state = .idle
            return nil
        }
        if foldedVersion != store.version { refold() }
        state = .running(output: ObjectIdentifier(output), rowsFinished: 0)
        return Folded(weight: UnsafePointer(weight.pointer), fold: self)
    }

    /// True when `x` is the paired convolution's output of this eval forward, finished over
    /// every row: then the BatchNorm has nothing left to do.
    func consume(_ x: Tensor) -> Bool {
        guard case .running(let output, let rows) = state else { return false }
        state = .idle
        guard output == ObjectIdentifier(x) else { return false }
        precondition(rows == x.n * x.h * x.w,
                     "\(convWeight.name): the eval forward used the folded weights but finished \(rows) of \(x.n * x.h * x.w) output rows (Note [BatchNorm folding])")
        return true
    }

    /// W'[o] = W[o]·s[o], b'[o] = β[o] + (b[o] − μ[o])·s[o], s = γ/√(σ² + eps), in Double and
    /// rounded once. Reads through the read-only accessors, so folding changes no version.
    private func refold() {
        let c = channels, r = rowLength
        weight.reserve(c * r)
        bias.reserve(c)
        let w = store.readOnlyValue(convWeight), b = convBias.map { store.readOnlyValue($0) }
        let g = store.readOnlyValue(gamma), be = store.readOnlyValue(beta)
        let mean = store.readOnlyFloatBuffer(runningMean), variance = store.readOnlyFloatBuffer(runningVar)
        let folded = weight.pointer, foldedBias = bias.pointer
        for o in 0..<c {
            let s = Double(g[o]) / (Double(variance[o]) + Double(eps)).squareRoot()
            let src = w + o &* r, dst = folded + o &* r
            for i in 0..<r { dst[i] = Float(Double(src[i]) * s) }
            foldedBias[o] = Float(Double(be[o]) + (Double(b?[o] ?? 0) - Double(mean[o])) * s)
        }
        foldedVersion = store.version
        foldCount += 1
    }

    /// y[m, o] = act(y[m, o] + b'[o]) over `rows` rows of `channels`.
    fileprivate func finish(_ y: UnsafeMutablePointer<Float>, rows: Int) {
        let started = Profiler.start()
        defer { Profiler.record(Self.profileCategory, since: started) }
        guard case .running(let output, let finished) = state else {
            preconditionFailure("\(convWeight.name): finish outside a folded eval forward")
        }
        state = .running(output: output, rowsFinished: finished + rows)
        let c = channels, b = UnsafePointer(bias.pointer)
        switch activation {
        case .relu:
            for m in 0..<rows {
                let row = y + m &* c
                for ch in 0..<c { row[ch] = max(row[ch] + b[ch], 0) }
            }
        case .none, .silu:
            for m in 0..<rows {
                let row = y + m &* c
                for ch in 0..<c { row[ch] += b[ch] }
            }
            // In place, in a pass of its own so the loop above vectorises (as BatchNorm does).
            if activation == .silu { siluForward(y, y, count: rows * c) }
        }
    }
}

extension Conv2d {
    /// Pairs this convolution with `batchNorm`, the BatchNorm2d that reads its output and
    /// nothing else: eval forwards then run the two as one convolution (Note [BatchNorm
    /// folding]). Call once, where the model builds the pair.
    public func foldInEval(_ batchNorm: BatchNorm2d) {
        precondition(batchNormFold == nil && batchNorm.fold == nil, "\(weight.name): already paired with a BatchNorm")
        let fold = BatchNormFold(convolution: self, batchNorm: batchNorm, store: store)
        batchNormFold = fold
        batchNorm.fold = fold
    }
}
