import Kernels

// Shape letters: N batch, I input features, O output features.

/// y = x·Wᵀ + b with W stored [O, I] exactly as PyTorch. The input is an [N, I] matrix, i.e. an
/// NHWC tensor with H = W = 1 (global pooling produces that), so the layer is one SGEMM.
public final class Linear: Layer {
    private static let profileCategory = Profiler.category("Linear")
    public let inFeatures: Int
    public let outFeatures: Int
    public let weight: ParameterEntry
    public let bias: ParameterEntry?

    private let store: ParameterStore
    private let output = Tensor()
    private var input: Tensor?
    private let biasScratch: UnsafeMutablePointer<Double>

    public init(_ store: ParameterStore, name: String, inFeatures: Int, outFeatures: Int, bias: Bool = true) {
        precondition(inFeatures > 0 && outFeatures > 0, "\(name): feature counts must be positive")
        self.store = store
        self.inFeatures = inFeatures
        self.outFeatures = outFeatures
        // PyTorch's default: kaiming_uniform_(a=√5) on the weight = U(±1/√I), bias U(±1/√I).
        let bound = 1 / Double(inFeatures).squareRoot()
        weight = store.addParameter("\(name).weight", shape: [outFeatures, inFeatures],
                                    initializer: .uniform(bound: bound))
        self.bias = bias ? store.addParameter("\(name).bias", shape: [outFeatures],
                                              initializer: .uniform(bound: bound), isWeight: false) : nil
        biasScratch = .allocate(capacity: outFeatures)
    }

    deinit { biasScratch.deallocate() }

    public func forward(_ x: Tensor, mode: Mode) -> Tensor {
        let started = Profiler.start()
        defer { Profiler.record(Self.profileCategory, since: started, flops: 2 * Double(x.n * inFeatures * outFeatures)) }
        precondition(x.h == 1 && x.w == 1,
                     "Linear expects an [N, \(inFeatures)] input (H = W = 1), got NHWC shape \(x.shape); pool or flatten first")
        precondition(x.c == inFeatures, "Linear expects \(inFeatures) input features, got \(x.c)")
        let n = x.n, o = outFeatures
        output.resize(n: n, h: 1, w: 1, c: o)
        input = mode == .train ? x : nil
        // Read-only accessors: an evaluation loop leaves the store's version alone (Note [Parameter version]).
        if let bias { broadcastRows(store.readOnlyValue(bias), output.pointer, rows: n, columns: o) }
        sgemm(transB: true, m: n, n: o, k: inFeatures, a: x.pointer, lda: inFeatures,
              b: store.readOnlyValue(weight), ldb: inFeatures, beta: bias == nil ? 0 : 1, c: output.pointer, ldc: o)
        return output
    }

    /// dW[O, I] += dYᵀ·X,  db += Σ_n dY,  dX[N, I] = dY·W.
    public func backward(_ dy: Tensor) -> Tensor {
        guard let x = input else { preconditionFailure("Linear.backward without a .train forward") }
        let started = Profiler.start()
        defer { Profiler.record(Self.profileCategory, since: started, flops: 4 * Double(x.n * inFeatures * outFeatures)) }
        let n = x.n, o = outFeatures, i = inFeatures
        precondition(dy.hasShape(n, 1, 1, o), "Linear.backward: gradient shape \(dy.shape) ≠ \([n, 1, 1, o])")
        sgemm(transA: true, m: o, n: i, k: n, a: dy.pointer, lda: o, b: x.pointer, ldb: i,
              beta: 1, c: store.gradient(weight), ldc: i)
        if let bias {
            sumRowsAccumulate(dy.pointer, rows: n, columns: o, into: store.gradient(bias), scratch: biasScratch)
            store.markGradientReady(bias)
        }
        store.markGradientReady(weight)
        let dInput = dy.acquireFromSamePool(like: x)
        sgemm(m: n, n: i, k: o, a: dy.pointer, lda: o, b: store.value(weight), ldb: i,
              beta: 0, c: dInput.pointer, ldc: i)
        dy.release()
        return dInput
    }
}
