import Kernels

/// How a parameter is laid out in memory here, and how that maps to PyTorch's layout in files.
public enum ParameterLayout: Sendable, Equatable {
    /// Same element order as PyTorch (biases, BatchNorm affine, linear [out, in]).
    case pytorch
    /// Convolution weight stored [Cout, Kh, Kw, Cin/groups] (OHWI) so an NHWC im2col row times
    /// the weight row is one GEMM; PyTorch files hold it as OIHW [Cout, Cin/groups, Kh, Kw].
    case convOHWI
}

/// How a parameter's initial values are drawn.
public enum ParameterInit: Sendable {
    case constant(Float)
    /// N(0, std²), e.g. Kaiming-normal std = sqrt(2 / fan).
    case normal(std: Double)
    /// U(-bound, bound), e.g. PyTorch's default Linear init bound = 1 / sqrt(fan_in).
    case uniform(bound: Double)
}

/// A named view into the flat parameter (and gradient) buffer.
public struct ParameterEntry: Sendable {
    public let name: String
    /// PyTorch shape, e.g. [64, 3, 7, 7] for `conv1.weight`.
    public let shape: [Int]
    public let layout: ParameterLayout
    public let offset: Int
    public let count: Int
    public let initializer: ParameterInit
    /// False for BatchNorm affine parameters and biases (useful for no-weight-decay options).
    public let isWeight: Bool
}

/// A named view into the flat buffer store (state that is not trained).
public struct BufferEntry: Sendable {
    public enum Kind: Sendable { case float32, int64 }
    public let name: String
    public let shape: [Int]
    public let kind: Kind
    /// Offset into `floatBuffers` or `intBuffers` depending on `kind`.
    public let offset: Int
    public let count: Int
    public let initialValue: Float
}

/// Owns one allocation for all parameters, one for all gradients, and the buffers.
/// Layers register at construction (in forward order, which is also torchvision's state-dict
/// order), then `finalize` allocates and initialises everything in registration order.
public final class ParameterStore {
    public private(set) var parameters: [ParameterEntry] = []
    public private(set) var buffers: [BufferEntry] = []
    public private(set) var parameterCount = 0
    public private(set) var floatBufferCount = 0
    public private(set) var intBufferCount = 0
    public private(set) var isFinalized = false
    /// `--sync-bn`: sums Doubles over all ranks in place; every BatchNorm of the model reads
    /// it in training (Note [Synchronised BatchNorm]). nil = each rank's batch alone.
    public var batchNormCrossReplicaSum: ((UnsafeMutablePointer<Double>, Int) -> Void)?
    /// Called by each layer's backward once a parameter's gradient is final for this backward
    /// pass: the overlapped all-reduce launches a bucket when all of its parameters are in
    /// (Note [Overlapped all-reduce] in DataParallel). nil: nothing listens.
    public var gradientReady: ((_ offset: Int, _ count: Int) -> Void)?
    /// Eval forwards run every convolution that a BatchNorm follows with the two folded into
    /// one (Note [BatchNorm folding] in Layers/BatchNormFolding.swift); false computes the
    /// BatchNorm as a pass of its own, as training does (`--no-fold-bn`, for debugging).
    public var foldsBatchNormInEval = true

    // Note [Parameter version]
    // ~~~~~~~~~~~~~~~~~~~~~~~~
    // `version` changes whenever parameter values or float buffers (BatchNorm running
    // statistics) may have changed, so that values derived from them (the folded weights of
    // Note [BatchNorm folding]) know when to be recomputed. It is not bumped by the writers
    // (the optimizer, StateDict.load, ModelEMA, broadcasts, the running-statistics average,
    // BatchNorm's training forward, tests, ...), which would be a convention every new writer
    // must remember: it is bumped by the only way to write, the accessors that hand out
    // MUTABLE pointers (`values`, `value(_:)`, `floatBuffers`, `floatBuffer(_:)`). Readers on
    // the forward path take `readOnlyValue(_:)` / `readOnlyFloatBuffer(_:)` instead, so an
    // evaluation loop leaves the version, and the folded weights, alone. A mutable pointer
    // is therefore a permission to write NOW: take it again for a later write (every writer
    // here does), never keep one across a forward. Gradients and the integer buffers
    // (num_batches_tracked) feed nothing derived and do not bump it.
    /// See Note [Parameter version].
    public private(set) var version: UInt64 = 0

    private var valueStorage = FloatStorage()
    private var gradientStorage = FloatStorage()
    private var floatBufferStorage = FloatStorage()
    private var intBufferStorage: UnsafeMutablePointer<Int64> = .allocate(capacity: 1)

    public init() {}

    deinit { intBufferStorage.deallocate() }

    /// The flat parameter values (valid after `finalize`), for writing: bumps `version`
    /// (Note [Parameter version]).
    public var values: UnsafeMutablePointer<Float> {
        version &+= 1
        return valueStorage.pointer
    }
    /// The flat gradients, same layout as `values`.
    public var gradients: UnsafeMutablePointer<Float> { gradientStorage.pointer }
    /// Float buffers (BatchNorm running mean/var), one flat allocation, for writing: bumps
    /// `version` (Note [Parameter version]).
    public var floatBuffers: UnsafeMutablePointer<Float> {
        version &+= 1
        return floatBufferStorage.pointer
    }
    /// Integer buffers (BatchNorm num_batches_tracked).
    public var intBuffers: UnsafeMutablePointer<Int64> { intBufferStorage }

    @discardableResult
    public func addParameter(_ name: String, shape: [Int], layout: ParameterLayout = .pytorch,
                             initializer: ParameterInit, isWeight: Bool = true) -> ParameterEntry {
        precondition(!isFinalized, "parameter \(name) registered after finalize")
        precondition(!parameters.contains { $0.name == name }, "duplicate parameter \(name)")
        let count = shape.reduce(1, *)
        let entry = ParameterEntry(name: name, shape: shape, layout: layout, offset: parameterCount,
                                   count: count, initializer: initializer, isWeight: isWeight)
        parameters.append(entry)
        parameterCount += count
        return entry
    }

    /// Replaces the initializer of a registered parameter (before `finalize`), for models whose
    /// reference initialises a layer differently from the layer's default (torchvision's
    /// EfficientNet zeroes convolution biases and draws its Linear from U(±1/√out)).
    public func setInitializer(_ initializer: ParameterInit, forParameterNamed name: String) {
        precondition(!isFinalized, "initializer of \(name) changed after finalize")
        guard let index = parameters.firstIndex(where: { $0.name == name }) else {
            preconditionFailure("no parameter \(name)")
        }
        let p = parameters[index]
        parameters[index] = ParameterEntry(name: p.name, shape: p.shape, layout: p.layout, offset: p.offset,
                                           count: p.count, initializer: initializer, isWeight: p.isWeight)
    }

    @discardableResult
    public func addBuffer(_ name: String, shape: [Int], kind: BufferEntry.Kind = .float32,
                          initialValue: Float = 0) -> BufferEntry {
        precondition(!isFinalized, "buffer \(name) registered after finalize")
        let count = shape.reduce(1, *)
        let offset: Int
        switch kind {
        case .float32: offset = floatBufferCount; floatBufferCount += count
        case .int64: offset = intBufferCount; intBufferCount += count
        }
        let entry = BufferEntry(name: name, shape: shape, kind: kind, offset: offset, count: count,
                                initialValue: initialValue)
        buffers.append(entry)
        return entry
    }

    /// Allocates the flat buffers and initialises every parameter in registration order from
    /// one generator seeded with `seed`.
    public func finalize(seed: UInt64) {
        precondition(!isFinalized)
        isFinalized = true
        valueStorage.reserve(parameterCount)
        gradientStorage.reserve(parameterCount)
        floatBufferStorage.reserve(floatBufferCount)
        intBufferStorage.deallocate()
        intBufferStorage = .allocate(capacity: max(intBufferCount, 1))
        zeroGradients()
        reinitialize(seed: seed)
    }

    /// Draws all parameters again and resets buffers (same result as a fresh `finalize`).
    public func reinitialize(seed: UInt64) {
        var rng = SplitMix64(seed: seed)
        for p in parameters {
            let base = values + p.offset
            switch p.initializer {
            case .constant(let v):
                base.update(repeating: v, count: p.count)
            case .normal(let std):
                for i in 0..<p.count { base[i] = Float(rng.nextNormal() * std) }
            case .uniform(let bound):
                for i in 0..<p.count { base[i] = Float((rng.nextDouble() * 2 - 1) * bound) }
            }
        }
        for b in buffers {
            switch b.kind {
            case .float32: (floatBuffers + b.offset).update(repeating: b.initialValue, count: b.count)
            case .int64: (intBuffers + b.offset).update(repeating: Int64(b.initialValue), count: b.count)
            }
        }
    }

    public func zeroGradients() { gradients.update(repeating: 0, count: max(parameterCount, 0)) }

    /// `p`'s values, for writing (bumps `version`, Note [Parameter version]).
    public func value(_ p: ParameterEntry) -> UnsafeMutablePointer<Float> { values + p.offset }
    /// `p`'s values for reading: leaves `version` alone (the forward path's accessor).
    @inline(__always) public func readOnlyValue(_ p: ParameterEntry) -> UnsafePointer<Float> {
        UnsafePointer(valueStorage.pointer + p.offset)
    }
    public func gradient(_ p: ParameterEntry) -> UnsafeMutablePointer<Float> { gradients + p.offset }
    /// A layer's backward has added its last contribution to `p`'s gradient.
    @inline(__always) public func markGradientReady(_ p: ParameterEntry) { gradientReady?(p.offset, p.count) }
    /// `b`'s values, for writing (bumps `version`, Note [Parameter version]).
    public func floatBuffer(_ b: BufferEntry) -> UnsafeMutablePointer<Float> { floatBuffers + b.offset }
    /// `b`'s values for reading: leaves `version` alone.
    @inline(__always) public func readOnlyFloatBuffer(_ b: BufferEntry) -> UnsafePointer<Float> {
        UnsafePointer(floatBufferStorage.pointer + b.offset)
    }
    public func intBuffer(_ b: BufferEntry) -> UnsafeMutablePointer<Int64> { intBuffers + b.offset }

    public func parameter(named name: String) -> ParameterEntry? { parameters.first { $0.name == name } }
    public func buffer(named name: String) -> BufferEntry? { buffers.first { $0.name == name } }
}
