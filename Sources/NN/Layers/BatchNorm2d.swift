import Kernels

// Shape letters: N batch, H/W height/width, C channels, M = N·H·W values per channel.
// NHWC makes every pixel a contiguous row of C channels, so all loops run rows outer, channels
// inner, and per-channel reductions are C-wide accumulators.

/// An activation applied to BatchNorm's output in the same pass (`BatchNorm2d.activation`).
public enum FusedActivation: Sendable {
    case none
    /// max(z, 0), as a ReLU layer after the BatchNorm.
    case relu
    /// z·σ(z), as a SiLU layer after the BatchNorm.
    case silu
}

/// Batch normalisation over NHWC input, with PyTorch's semantics:
/// - train: normalise by the batch mean and the biased batch variance (÷M); update
///   running_mean/var with momentum using the UNBIASED variance (÷(M−1)), and
///   num_batches_tracked += 1 (torch.nn.functional.batch_norm / native_batch_norm).
/// - eval: normalise by the running statistics (an affine map per channel).
///
/// Note [Fused activation]: with `activation` set, the output is act(z) for the normalised
/// z = x·scale + shift, and z itself is never stored. Backward recomputes z from the input
/// (which BatchNorm keeps anyway) with the forward's own scale and shift, so z is bit-for-bit
/// the forward's; it masks or scales dy by act′(z) and continues as plain BatchNorm. A ReLU
/// or SiLU layer after the BatchNorm would keep one more activation-sized tensor (torchvision's
/// in-place ReLU saves that copy too; its SiLU does not), and the output is not read by
/// backward at all, so the owner may overwrite it (a residual block adds its shortcut there).
public final class BatchNorm2d: Layer {
    private lazy var profileCategory: Int = Profiler.category(activation == .none ? "BatchNorm" : activation == .relu ? "BatchNorm+ReLU" : "BatchNorm+SiLU")
    public let channels: Int
    public let eps: Float
    public let momentum: Float
    public let activation: FusedActivation
    public let weight: ParameterEntry
    public let bias: ParameterEntry
    public let runningMean: BufferEntry
    public let runningVar: BufferEntry
    public let numBatchesTracked: BufferEntry
    /// Set by `Conv2d.foldInEval(_:)`: this BatchNorm is folded into the convolution before
    /// it in eval (Note [BatchNorm folding]).
    public internal(set) var fold: BatchNormFold?

    private let store: ParameterStore
    private let output = Tensor()
    private var input: Tensor?
    private var lastMode: Mode = .eval
    /// Per channel: the mean and 1/√(var + eps) used by the last forward (batch statistics in
    /// train, running statistics in eval), which is all backward needs besides the input.
    private let mean: UnsafeMutablePointer<Float>
    private let invStd: UnsafeMutablePointer<Float>
    private let scale: UnsafeMutablePointer<Float>
    private let shift: UnsafeMutablePointer<Float>
    private let sumA: UnsafeMutablePointer<Double>
    private let sumB: UnsafeMutablePointer<Double>
    private let coefA: UnsafeMutablePointer<Float>
    private let coefB: UnsafeMutablePointer<Float>
    private let coefD: UnsafeMutablePointer<Float>
    /// One row of z = x·scale + shift (fused SiLU's backward).
    private let zRow: UnsafeMutablePointer<Float>
    /// `sumA` and `sumB` side by side, then one slot for the value count, so one all-reduce
    /// carries what synchronised BatchNorm needs (Note [Synchronised BatchNorm]).
    private let sums: UnsafeMutablePointer<Double>
    /// Values per channel behind the last training forward's statistics (all ranks' with sync).
    private var statisticsCount = 0.0

    // Note [Synchronised BatchNorm]
    // ~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
    // `--sync-bn` (PyTorch's SyncBatchNorm): in training, the batch statistics are those of
    // the global batch. Forward all-reduces the per-channel sums and the value count, then
    // Σ(x − mean)² (the same two passes in Double as alone); backward all-reduces Σg and
    // Σg·x̂ before computing dx, with M the global count. dγ and dβ take the LOCAL sums: they
    // are parameter gradients, which the gradient all-reduce sums over ranks afterwards. The
    // running statistics come from the global ones, identical on every rank. The hook is a
    // closure on the model's parameter store (`batchNormCrossReplicaSum`), so this layer needs
    // no communicator and the trainer sets it once for the whole model.
    private var crossReplicaSum: ((UnsafeMutablePointer<Double>, Int) -> Void)? { store.batchNormCrossReplicaSum }

    public init(_ store: ParameterStore, name: String, channels: Int, eps: Float = 1e-5, momentum: Float = 0.1,
                activation: FusedActivation = .none) {
        precondition(channels > 0, "\(name): channels must be positive")
        self.store = store
        self.channels = channels
        self.eps = eps
        self.momentum = momentum
        self.activation = activation
        weight = store.addParameter("\(name).weight", shape: [channels], initializer: .constant(1), isWeight: false)
        bias = store.addParameter("\(name).bias", shape: [channels], initializer: .constant(0), isWeight: false)
        runningMean = store.addBuffer("\(name).running_mean", shape: [channels], initialValue: 0)
        runningVar = store.addBuffer("\(name).running_var", shape: [channels], initialValue: 1)
        numBatchesTracked = store.addBuffer("\(name).num_batches_tracked", shape: [], kind: .int64, initialValue: 0)
        mean = .allocate(capacity: channels)
        invStd = .allocate(capacity: channels)
        scale = .allocate(capacity: channels)
        shift = .allocate(capacity: channels)
        sums = .allocate(capacity: 2 * channels + 1)
        sumA = sums
        sumB = sums + channels
        coefA = .allocate(capacity: channels)
        coefB = .allocate(capacity: channels)
        coefD = .allocate(capacity: channels)
        zRow = .allocate(capacity: channels)
    }

    deinit {
        mean.deallocate(); invStd.deallocate(); scale.deallocate(); shift.deallocate()
        sums.deallocate(); coefA.deallocate(); coefB.deallocate(); coefD.deallocate()
        zRow.deallocate()
    }

    public func forward(_ x: Tensor, mode: Mode) -> Tensor {
        // Folded eval: the convolution already normalised and activated x (Note [BatchNorm folding]).
        if mode == .eval, let fold, fold.consume(x) {
            input = nil
            return x
        }
        let started = Profiler.start()
        defer { Profiler.record(profileCategory, since: started) }
        precondition(x.c == channels, "BatchNorm2d expects \(channels) channels, got \(x.c) (shape \(x.shape))")
        let c = channels, m = x.n * x.h * x.w
        output.resize(like: x)
        input = x
        lastMode = mode
        let src = UnsafePointer(x.pointer), gamma = store.readOnlyValue(weight), beta = store.readOnlyValue(bias)
        let mean = self.mean, invStd = self.invStd, scale = self.scale, shift = self.shift
        let s1 = sumA, s2 = sumB
        if mode == .train {
            precondition(m > 1, "BatchNorm2d: expected more than 1 value per channel when training, got shape \(x.shape)")
            // Two passes in Double: the mean, then Σ(x − mean)², avoiding E[x²] − E[x]² cancellation.
            sums.update(repeating: 0, count: 2 * c + 1)
            parallelForChannels(c, rows: m) { columns in
                var row = src
                for _ in 0..<m {
                    for ch in columns { s1[ch] += Double(row[ch]) }
                    row += c
                }
            }
            sums[2 * c] = Double(m)
            crossReplicaSum?(sums, 2 * c + 1)
            let total = sums[2 * c]
            statisticsCount = total
            for ch in 0..<c { s1[ch] /= total }
            parallelForChannels(c, rows: m) { columns in
                var row = src
                for _ in 0..<m {
                    for ch in columns { let d = Double(row[ch]) - s1[ch]; s2[ch] += d * d }
                    row += c
                }
            }
            crossReplicaSum?(s2, c)
            let rm = store.floatBuffer(runningMean), rv = store.floatBuffer(runningVar)
            let mom = Double(momentum), unbias = total / (total - 1)
            for ch in 0..<c {
                let variance = s2[ch] / total
                mean[ch] = Float(s1[ch])
                invStd[ch] = Float(1 / (variance + Double(eps)).squareRoot())
                rm[ch] = Float((1 - mom) * Double(rm[ch]) + mom * s1[ch])
                rv[ch] = Float((1 - mom) * Double(rv[ch]) + mom * variance * unbias)
            }
            store.intBuffer(numBatchesTracked)[0] += 1
        } else {
            // Read-only: evaluation leaves the store's version alone (Note [Parameter version]).
            let rm = store.readOnlyFloatBuffer(runningMean), rv = store.readOnlyFloatBuffer(runningVar)
            for ch in 0..<c {
                mean[ch] = rm[ch]
                invStd[ch] = Float(1 / (Double(rv[ch]) + Double(eps)).squareRoot())
            }
        }
        // y = (x − mean)·invStd·γ + β = x·scale + shift
        for ch in 0..<c {
            scale[ch] = gamma[ch] * invStd[ch]
            shift[ch] = beta[ch] - mean[ch] * scale[ch]
        }
        let relu = activation == .relu, y = output.pointer
        parallelForChannels(c, rows: m) { columns in
            var row = src
            var out = y
            if relu {
                for _ in 0..<m {
                    for ch in columns { out[ch] = max(row[ch] * scale[ch] + shift[ch], 0) }
                    row += c
                    out += c
                }
            } else {
                for _ in 0..<m {
                    for ch in columns { out[ch] = row[ch] * scale[ch] + shift[ch] }
                    row += c
                    out += c
                }
            }
        }
        // In place over z, in a pass of its own so the loop above vectorises.
        if activation == .silu { siluForward(output.pointer, output.pointer, count: output.count) }
        return output
    }

    /// Train mode (statistics depend on the batch), with x̂ = (x − μ)·invStd and g = dy·act′(z)
    /// (g = dy without a fused activation):
    ///   dβ += Σ g,  dγ += Σ g·x̂,  dx = γ·invStd/M · (M·g − Σg − x̂·Σ(g·x̂)).
    /// Eval mode (fixed statistics): dx = g·γ·invStd, same dβ, dγ.
    /// Every step is elementwise per pixel after the sums, so dx overwrites dy when the caller
    /// hands over its only hold (Note [Gradient pool]); the loops index rows from one base
    /// pointer so that they vectorise in place too (Note [In-place loops]).
    public func backward(_ dy: Tensor) -> Tensor {
        let started = Profiler.start()
        defer { Profiler.record(profileCategory, since: started) }
        guard let x = input else { preconditionFailure("BatchNorm2d.backward without a forward") }
        precondition(dy.hasSameShape(as: x), "BatchNorm2d.backward: gradient shape \(dy.shape) ≠ \(x.shape)")
        let c = channels, m = x.n * x.h * x.w
        let dInput = dy.inPlaceOrNew()
        defer { dy.release(unlessItIs: dInput) }
        let src = UnsafePointer(x.pointer), dx = dInput.pointer
        let gamma = store.value(weight), dGamma = store.gradient(weight), dBeta = store.gradient(bias)
        let mean = UnsafePointer(self.mean), invStd = UnsafePointer(self.invStd)
        let scale = UnsafePointer(self.scale), shift = UnsafePointer(self.shift)
        let sumDy = sumA, sumDyXhat = sumB
        sumDy.update(repeating: 0, count: c)
        sumDyXhat.update(repeating: 0, count: c)
        // Pass 1: the per-channel sums of g and g·x̂, with g = dy·act′(z) written to dx when
        // there is an activation (pass 2 reads it back from there).
        switch activation {
        case .relu:
            inPlaceAware(dy.pointer, dx) { grad, dx in parallelForChannels(c, rows: m) { columns in
                for r in 0..<m {
                    let base = r &* c
                    let row = src + base, g = grad + base, out = dx + base
                    for ch in columns {
                        let z = row[ch] * scale[ch] + shift[ch]
                        let gradient = g[ch]  // loaded unconditionally, so the select vectorises
                        let masked: Float = z > 0 ? gradient : 0
                        let xhat = (row[ch] - mean[ch]) * invStd[ch]
                        sumDy[ch] += Double(masked)
                        sumDyXhat[ch] += Double(masked * xhat)
                        out[ch] = masked
                    }
                }
            } }
        case .silu:
            // g = dy·silu′(z) first, row by row: each row's z goes to a scratch row and through
            // `siluBackward`, the SiLU layer's own SIMD kernel (Note [Vector exp]), so fused
            // and unfused compute the same bits; the sums are then the plain BatchNorm pass.
            let zRow = self.zRow
            inPlaceAware(dy.pointer, dx) { grad, dx in parallelForChannels(c, rows: m) { columns in
                let lo = columns.lowerBound
                for r in 0..<m {
                    let base = r &* c
                    let row = src + base
                    for ch in columns { zRow[ch] = row[ch] * scale[ch] + shift[ch] }
                    siluBackward(grad + base + lo, input: zRow + lo, dx + base + lo, count: columns.count)
                }
            } }
            fallthrough
        case .none:
            let grad = activation == .none ? UnsafePointer(dy.pointer) : UnsafePointer(dx)
            parallelForChannels(c, rows: m) { columns in
                for r in 0..<m {
                    let base = r &* c
                    let row = src + base, g = grad + base
                    for ch in columns {
                        let xhat = (row[ch] - mean[ch]) * invStd[ch]
                        sumDy[ch] += Double(g[ch])
                        sumDyXhat[ch] += Double(g[ch] * xhat)
                    }
                }
            }
        }
        for ch in 0..<c {
            dBeta[ch] += Float(sumDy[ch])
            dGamma[ch] += Float(sumDyXhat[ch])
        }
        store.markGradientReady(bias)
        store.markGradientReady(weight)
        if lastMode == .train { crossReplicaSum?(sums, 2 * c) }
        let grad = activation == .none ? UnsafePointer(dy.pointer) : UnsafePointer(dx)
        if lastMode == .eval {
            inPlaceAware(grad, dx) { grad, dx in parallelForChannels(c, rows: m) { columns in
                for r in 0..<m {
                    let base = r &* c
                    let g = grad + base, out = dx + base
                    for ch in columns { out[ch] = g[ch] * scale[ch] }
                }
            } }
            return dInput
        }
        // dx = a·(g − Σg/M) − x̂·a·Σ(g·x̂)/M with a = γ·invStd, as per-channel coefficients
        // a, b = a·Σg/M, d = a·Σ(g·x̂)/M so the inner loop is a few multiply-adds.
        let a = coefA, b = coefB, d = coefD
        let invM = 1 / statisticsCount
        for ch in 0..<c {
            let ac = Double(gamma[ch]) * Double(invStd[ch])
            a[ch] = Float(ac)
            b[ch] = Float(ac * sumDy[ch] * invM)
            d[ch] = Float(ac * sumDyXhat[ch] * invM)
        }
        inPlaceAware(grad, dx) { grad, dx in parallelForChannels(c, rows: m) { columns in
            for r in 0..<m {
                let base = r &* c
                let row = src + base, g = grad + base, out = dx + base
                for ch in columns {
                    let xhat = (row[ch] - mean[ch]) * invStd[ch]
                    out[ch] = a[ch] * g[ch] - b[ch] - xhat * d[ch]
                }
            }
        } }
        return dInput
    }
}
