// Shape letters: N rows (images or pixels), C columns (channels).
//
// Elementwise kernels on raw pointers plus Tensor wrappers. The Tensor wrappers size their
// output with `resize`, which only grows capacity, so calling them every step allocates nothing
// after the first.
//
// Residual connections: a block computes `out = branch(x) + shortcut(x)` with
// `addForward(branch, shortcut, into: out)` (the models write it over the branch's last
// BatchNorm output, which nothing reads again). The gradient of a sum reaches both operands
// unchanged, so in backward the block passes the same output gradient to the branch and to the
// shortcut and then sums the two input gradients (`sumGradients` in TensorPool.swift; the
// input fanned out to both paths).

// Note [In-place loops]
// ~~~~~~~~~~~~~~~~~~~~~
// LLVM vectorises `dst[i] = f(src[i])` behind a run-time check that the two buffers do not
// overlap; when they are the same buffer (a gradient overwritten in place, Note [Gradient
// pool]) the check fails and the scalar loop runs, 2–3× slower. A kernel that may run in
// place therefore goes through `inPlaceAware`, which hands the in-place case one pointer in
// both roles: the same value needs no check. Index from that one pointer (`dst + offset`
// for both) rather than advancing two copies of it, or they become two values again.

/// Calls `body(source, destination)`, passing the destination pointer in both roles when
/// the two are the same buffer; see Note [In-place loops].
@inlinable @inline(__always)
public func inPlaceAware<R>(_ source: UnsafePointer<Float>, _ destination: UnsafeMutablePointer<Float>,
                            _ body: (UnsafePointer<Float>, UnsafeMutablePointer<Float>) -> R) -> R {
    UnsafePointer(destination) == source ? body(UnsafePointer(destination), destination) : body(source, destination)
}

/// out[i] = a[i] + b[i]. `out` may alias `a` or `b` (Note [In-place loops]; the sum commutes
/// exactly, so the operands may swap).
@inlinable
public func addForward(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>,
                       _ out: UnsafeMutablePointer<Float>, count: Int) {
    let (first, second) = UnsafePointer(out) == b ? (b, a) : (a, b)
    inPlaceAware(first, out) { first, out in
        for i in 0..<count { out[i] = first[i] + second[i] }
    }
}

/// out = a + b (residual add). `out` is resized to a's shape; it may be `a` or `b` itself.
public func addForward(_ a: Tensor, _ b: Tensor, into out: Tensor) {
    precondition(a.hasSameShape(as: b), "addForward: shapes \(a.shape) and \(b.shape) differ")
    out.resize(like: a)
    addForward(a.pointer, b.pointer, out.pointer, count: a.count)
}

/// out[i] = max(a[i] + b[i], 0): a residual sum and the ReLU after it in one pass (the same
/// two roundings as adding, then clamping). `out` may alias `a` or `b`.
@inlinable
public func addReLUForward(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>,
                           _ out: UnsafeMutablePointer<Float>, count: Int) {
    let (first, second) = UnsafePointer(out) == b ? (b, a) : (a, b)
    inPlaceAware(first, out) { first, out in
        for i in 0..<count { out[i] = max(first[i] + second[i], 0) }
    }
}

/// y[i] += x[i].
@inlinable
public func accumulate(_ x: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>, count: Int) {
    for i in 0..<count { y[i] += x[i] }
}

/// y += x, e.g. summing the input gradients of a residual branch and its shortcut.
public func accumulate(_ x: Tensor, into y: Tensor) {
    precondition(x.hasSameShape(as: y), "accumulate: shapes \(x.shape) and \(y.shape) differ")
    accumulate(x.pointer, into: y.pointer, count: x.count)
}

/// y[i] = max(x[i], 0). `y` may alias `x`.
@inlinable
public func reluForward(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int) {
    for i in 0..<count { y[i] = max(x[i], 0) }
}

/// dx[i] = dy[i] where y[i] > 0, else 0. Using the output (as PyTorch's threshold_backward does)
/// lets an in-place forward work and gives gradient 0 at exactly x = 0. `dx` may alias `dy`.
@inlinable
public func reluBackward(_ dy: UnsafePointer<Float>, output y: UnsafePointer<Float>,
                         _ dx: UnsafeMutablePointer<Float>, count: Int) {
    // dy is loaded unconditionally: a conditional load keeps the loop from vectorising.
    inPlaceAware(dy, dx) { dy, dx in
        for i in 0..<count {
            let gradient = dy[i]
            dx[i] = y[i] > 0 ? gradient : 0
        }
    }
}

/// Broadcasts a row into every row: y[r, c] = row[c] for r < rows. Used to start a GEMM
/// output from its bias (then GEMM with beta = 1).
@inlinable
public func broadcastRows(_ row: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, rows: Int, columns: Int) {
    var dst = y
    for _ in 0..<rows {
        dst.update(from: row, count: columns)
        dst += columns
    }
}

/// sums[c] += Σ_r x[r, c], accumulated per call in Double so long reductions (N·H·W rows)
/// keep Float precision. `scratch` holds `columns` Doubles.
@inlinable
public func sumRowsAccumulate(_ x: UnsafePointer<Float>, rows: Int, columns: Int,
                              into sums: UnsafeMutablePointer<Float>, scratch: UnsafeMutablePointer<Double>) {
    scratch.update(repeating: 0, count: columns)
    var src = x
    for _ in 0..<rows {
        for c in 0..<columns { scratch[c] += Double(src[c]) }
        src += columns
    }
    for c in 0..<columns { sums[c] += Float(scratch[c]) }
}
