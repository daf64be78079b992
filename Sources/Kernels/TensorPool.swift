// Note [Gradient pool]
// ~~~~~~~~~~~~~~~~~~~~
// A layer's forward output is a saved activation: it lives until backward and is reused next
// step, so layers own their outputs. An activation GRADIENT is needed only until the layer
// before has consumed it; if every layer owned its input gradient too, a network would hold a
// second copy of all its activations. Instead gradients are drawn from a `TensorPool` that the
// model owns, and go back to it as soon as they are consumed, so only a few activation-sized
// gradients exist at any time (what PyTorch's autograd achieves by freeing them).
//
// The protocol, for `Layer.backward(_ dy:) -> dx`:
// - backward CONSUMES one hold on `dy`: it releases it once it has read it, or returns it as
//   `dx` after overwriting it in place. The returned `dx` carries one hold for the caller.
// - a holder may overwrite a tensor only while it is the sole holder (`isExclusive`); an
//   elementwise backward (ReLU, BatchNorm, dropout …) then writes dx over dy and allocates
//   nothing. A gradient that fans out to two consumers (a residual sum's gradient goes to the
//   branch and to the shortcut) is `retain`ed first; neither consumer then overwrites it, and
//   each releases one hold.
// - new gradients come from the pool the incoming gradient came from (`acquireFromSamePool`),
//   so the pool travels with the gradient and layers need no reference to it.
// - tensors outside the discipline (holders == 0: a loss's gradient, a tensor a test made, a
//   layer's forward output) are never overwritten, and releasing them does nothing; a
//   backward handed one draws its results from no pool (fresh managed tensors), which is how
//   layers behave when used on their own.
//
// `ClassifierModel` copies the loss gradient into its pool and releases what the backbone
// returns, so after each backward every pooled tensor is free again and the pool, sized on
// the first step, allocates nothing afterwards.

/// Reusable managed tensors for activation gradients; see Note [Gradient pool]. Not
/// thread-safe: one pool serves one model's backward on one thread.
public final class TensorPool {
    private var all: [Tensor] = []
    private var free: [Tensor] = []
    /// Pooled tensors currently held.
    public private(set) var liveCount = 0
    /// The most pooled tensors held at once since creation or `resetPeak()`.
    public private(set) var peakLiveCount = 0
    /// Fill tensors with NaN when acquired and when released, so that reading a gradient
    /// before writing it, or after giving it back, poisons the result (for tests).
    public let poisonsTensors: Bool

    public init(poisonsTensors: Bool = false) { self.poisonsTensors = poisonsTensors }

    /// Tensors the pool has created (each one's storage is kept and reused).
    public var tensorCount: Int { all.count }
    /// Bytes of storage held by the pool's tensors, free or not.
    public var reservedBytes: Int { all.reduce(0) { $0 + $1.storage.capacity } * MemoryLayout<Float>.stride }

    public func resetPeak() { peakLiveCount = liveCount }

    /// A tensor of this shape with one hold. Contents are unspecified.
    ///
    /// Takes the free tensor whose capacity fits most tightly; if none is large enough, the
    /// largest free one grows (rather than a new one joining it), so the pool holds no more
    /// tensors than were ever live at once. Acquisitions repeat step after step, so capacities
    /// settle after the first step or two.
    public func acquire(n: Int, h: Int, w: Int, c: Int) -> Tensor {
        let count = n * h * w * c
        var chosen = -1
        for i in free.indices {
            let capacity = free[i].storage.capacity
            guard chosen >= 0 else { chosen = i; continue }
            let best = free[chosen].storage.capacity
            let fits = capacity >= count, bestFits = best >= count
            if fits ? (!bestFits || capacity < best) : (!bestFits && capacity > best) { chosen = i }
        }
        let tensor: Tensor
        if chosen >= 0 {
            tensor = free.remove(at: chosen)
        } else {
            tensor = Tensor()
            tensor.pool = self
            all.append(tensor)
        }
        tensor.resize(n: n, h: h, w: w, c: c)
        tensor.holders = 1
        liveCount += 1
        peakLiveCount = max(peakLiveCount, liveCount)
        if poisonsTensors { tensor.pointer.update(repeating: .nan, count: tensor.count) }
        return tensor
    }

    public func acquire(like shape: Tensor) -> Tensor { acquire(n: shape.n, h: shape.h, w: shape.w, c: shape.c) }

    fileprivate func recycle(_ tensor: Tensor) {
        if poisonsTensors { tensor.pointer.update(repeating: .nan, count: tensor.count) }
        free.append(tensor)
        liveCount -= 1
    }
}

extension Tensor {
    /// Whether the caller holds the only hold and may overwrite the tensor.
    @inlinable public var isExclusive: Bool { holders == 1 }

    /// One more holder (a gradient handed to two consumers). No effect on unmanaged tensors.
    public func retain() {
        if holders > 0 { holders += 1 }
    }

    /// Gives up one hold; the last returns a pooled tensor to its pool. No effect on unmanaged
    /// tensors; releasing a pooled tensor nobody holds (a second release) traps.
    public func release() {
        guard holders > 0 else {
            precondition(pool == nil, "TensorPool: a pooled tensor was released more often than held")
            return
        }
        holders -= 1
        if holders == 0, let pool { pool.recycle(self) }
    }

    /// Releases `self` unless it is `result`, i.e. unless a backward returned its input
    /// overwritten in place (which passes the hold on instead).
    public func release(unlessItIs result: Tensor) {
        if result !== self { release() }
    }

    /// A tensor with one hold for a gradient computed from this one: from the same pool, or a
    /// fresh managed tensor when `self` has none.
    public func acquireFromSamePool(n: Int, h: Int, w: Int, c: Int) -> Tensor {
        if let pool { return pool.acquire(n: n, h: h, w: w, c: c) }
        let tensor = Tensor(n: n, h: h, w: w, c: c)
        tensor.holders = 1
        return tensor
    }

    public func acquireFromSamePool(like shape: Tensor) -> Tensor {
        acquireFromSamePool(n: shape.n, h: shape.h, w: shape.w, c: shape.c)
    }

    /// Where an elementwise backward writes dx for this dy: `self` when exclusively held (in
    /// place), else a new tensor of the same shape. Finish with `release(unlessItIs: dx)`.
    public func inPlaceOrNew() -> Tensor {
        isExclusive ? self : acquireFromSamePool(like: self)
    }
}

/// a + b for two gradients of one tensor (a residual's branch and shortcut, a fan-out's
/// consumers), consuming both: the sum is written into whichever is exclusively held and the
/// other is released. Float addition commutes exactly, so the choice does not change a bit.
public func sumGradients(_ a: Tensor, _ b: Tensor) -> Tensor {
    precondition(a.hasSameShape(as: b), "sumGradients: shapes \(a.shape) and \(b.shape) differ")
    let sum = a.isExclusive ? a : b.isExclusive ? b : a.acquireFromSamePool(like: a)
    addForward(a.pointer, b.pointer, sum.pointer, count: a.count)
    if sum !== a { a.release() }
    if sum !== b { b.release() }
    return sum
}
