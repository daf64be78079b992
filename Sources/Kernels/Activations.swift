#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif

// Smooth activations (elementwise, any shape). σ(x) = 1 / (1 + e^(−x)).
//
// Note [Vector exp]: libm's expf is a call per element, which kept SiLU at ~40% of an
// EfficientNet training step. The loops below work on SIMD8 lanes with Cephes' expf (range
// reduction by ln 2 in two parts, a degree-6 polynomial, 2^n put straight into the exponent
// bits): about 1 ulp from the correctly rounded e^t, branch-free, so the compiler vectorises it.

public typealias FloatLanes = SIMD8<Float>

/// e^t for −104 ≤ t ≤ 0 (at −104 e^t already rounds to 0), down through the subnormals.
@inlinable @inline(__always)
func expNonPositive(_ t: FloatLanes) -> FloatLanes {
    // Adding 1.5·2^23 rounds to the nearest integer and leaves it in the low mantissa bits
    // (the generic float→int SIMD conversion is a per-lane library call).
    let magic: Float = 12_582_912
    let shifted = t * 1.442_695_040_888_963_4 + magic
    let n = shifted - magic
    let r = (t - n * 0.693_359_375) - n * -2.121_944_4e-4
    var p = FloatLanes(repeating: 1.987_569_150_0e-4)
    p = p * r + 1.398_199_950_7e-3
    p = p * r + 8.333_451_907_3e-3
    p = p * r + 4.166_579_589_4e-2
    p = p * r + 1.666_666_545_9e-1
    p = p * r + 5.000_000_120_1e-1
    let e = p * r * r + r + 1
    // 2^n as two normal factors 2^(n/2)·2^(n − n/2), so n down to −150 underflows gradually.
    let whole = unsafeBitCast(shifted, to: SIMD8<Int32>.self) &- 0x4B40_0000
    let half = whole &>> 1
    let first = unsafeBitCast((half &+ 127) &<< 23, to: FloatLanes.self)
    let second = unsafeBitCast((whole &- half &+ 127) &<< 23, to: FloatLanes.self)
    return e * first * second
}

/// σ(x) per lane, as e^(−|x|) so nothing overflows: 1/(1+e) for x ≥ 0, e/(1+e) below.
@inlinable @inline(__always)
public func sigmoid(_ x: FloatLanes) -> FloatLanes {
    // Masks from the sign bit rather than `replacing(with:where:)`, which the compiler lowers
    // lane by lane.
    let bits = unsafeBitCast(x, to: SIMD8<Int32>.self)
    let negative = bits &>> 31                                   // all ones where x < 0
    // |x| clamped to 104 on the bits (non-negative floats order like integers), then negated.
    let magnitude = bits & Int32.max, limit = SIMD8<Int32>(repeating: 0x42D0_0000)  // 104.0
    let below = (magnitude &- limit) &>> 31
    let clamped = (magnitude & below) | (limit & ~below)
    let e = expNonPositive(unsafeBitCast(clamped | Int32.min, to: FloatLanes.self))  // e^(−|x|)
    let inverse = 1 / (1 + e)
    let chosen = (unsafeBitCast(inverse, to: SIMD8<Int32>.self) & ~negative)
        | (unsafeBitCast(e * inverse, to: SIMD8<Int32>.self) & negative)
    return unsafeBitCast(chosen, to: FloatLanes.self)
}

/// σ(x) for one value (same arithmetic as the lanes).
@inlinable
public func sigmoid(_ x: Float) -> Float { sigmoid(FloatLanes(repeating: x))[0] }

/// y[i] = σ(x[i]). `y` may alias `x`.
@inlinable
public func sigmoidForward(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int) {
    let full = count & ~7
    var i = 0
    while i < full {
        let v = UnsafeRawPointer(x + i).loadUnaligned(as: FloatLanes.self)
        UnsafeMutableRawPointer(y + i).storeBytes(of: sigmoid(v), as: FloatLanes.self)
        i += 8
    }
    for k in full..<count { y[k] = sigmoid(x[k]) }
}

/// dx[i] = dy[i]·y[i]·(1 − y[i]) from the output y = σ(x) (torch sigmoid_backward uses the output too).
/// `dx` may alias `dy`.
@inlinable
public func sigmoidBackward(_ dy: UnsafePointer<Float>, output y: UnsafePointer<Float>,
                            _ dx: UnsafeMutablePointer<Float>, count: Int) {
    inPlaceAware(dy, dx) { dy, dx in
        for i in 0..<count { dx[i] = dy[i] * y[i] * (1 - y[i]) }
    }
}

/// SiLU (swish): y[i] = x[i]·σ(x[i]). `y` may alias `x` (each lane group is loaded before it
/// is stored; BatchNorm2d's fused SiLU runs it in place).
@inlinable
public func siluForward(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int) {
    let full = count & ~7
    var i = 0
    while i < full {
        let v = UnsafeRawPointer(x + i).loadUnaligned(as: FloatLanes.self)
        UnsafeMutableRawPointer(y + i).storeBytes(of: v * sigmoid(v), as: FloatLanes.self)
        i += 8
    }
    for k in full..<count { y[k] = x[k] * sigmoid(x[k]) }
}

/// dx[i] = dy[i]·σ(x)·(1 + x·(1 − σ(x))), the derivative of x·σ(x) (torch silu_backward),
/// recomputing σ from the input rather than storing it. `dx` may alias `dy`: the loop loads and
/// stores whole SIMD8 groups itself, so it needs no `inPlaceAware` (Note [In-place loops]).
@inlinable
public func siluBackward(_ dy: UnsafePointer<Float>, input x: UnsafePointer<Float>,
                         _ dx: UnsafeMutablePointer<Float>, count: Int) {
    let full = count & ~7
    var i = 0
    while i < full {
        let v = UnsafeRawPointer(x + i).loadUnaligned(as: FloatLanes.self)
        let g = UnsafeRawPointer(dy + i).loadUnaligned(as: FloatLanes.self)
        let s = sigmoid(v)
        UnsafeMutableRawPointer(dx + i).storeBytes(of: g * s * (1 + v * (1 - s)), as: FloatLanes.self)
        i += 8
    }
    for k in full..<count {
        let s = sigmoid(x[k])
        dx[k] = dy[k] * s * (1 + x[k] * (1 - s))
    }
}
