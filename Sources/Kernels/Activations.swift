#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif

// Smooth activations (elementwise, any shape). σ(x) = 1 / (1 + e^(−x)).

/// σ(x), written so that e^(−x) never overflows into inf/inf: for x < 0 it uses e^x / (1 + e^x).
@inlinable
public func sigmoid(_ x: Float) -> Float {
    if x >= 0 { return 1 / (1 + expf(-x)) }
    let e = expf(x)
    return e / (1 + e)
}

/// y[i] = σ(x[i]). `y` may alias `x`.
@inlinable
public func sigmoidForward(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int) {
    for i in 0..<count { y[i] = sigmoid(x[i]) }
}

/// dx[i] = dy[i]·y[i]·(1 − y[i]) from the output y = σ(x) (torch sigmoid_backward uses the output too).
@inlinable
public func sigmoidBackward(_ dy: UnsafePointer<Float>, output y: UnsafePointer<Float>,
                            _ dx: UnsafeMutablePointer<Float>, count: Int) {
    for i in 0..<count { dx[i] = dy[i] * y[i] * (1 - y[i]) }
}

/// SiLU (swish): y[i] = x[i]·σ(x[i]).
@inlinable
public func siluForward(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int) {
    for i in 0..<count { y[i] = x[i] * sigmoid(x[i]) }
}

/// dx[i] = dy[i]·σ(x)·(1 + x·(1 − σ(x))), the derivative of x·σ(x) (torch silu_backward),
/// recomputing σ from the input rather than storing it.
@inlinable
public func siluBackward(_ dy: UnsafePointer<Float>, input x: UnsafePointer<Float>,
                         _ dx: UnsafeMutablePointer<Float>, count: Int) {
    for i in 0..<count {
        let s = sigmoid(x[i])
        dx[i] = dy[i] * s * (1 + x[i] * (1 - s))
    }
}
