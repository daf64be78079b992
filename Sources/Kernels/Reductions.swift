/// Σ x² over `count` floats, accumulated in Double (the gradient norm for clipping and the
/// non-finite check: one NaN or ∞ makes the result non-finite).
public func sumOfSquares(_ x: UnsafePointer<Float>, count: Int) -> Double {
    // Four Float partial sums per block keep the loop vectorisable; blocks go to Double so
    // 60M-element models do not lose precision.
    var total = 0.0
    var start = 0
    let block = 4096
    while start < count {
        let end = min(start + block, count)
        var s0: Float = 0, s1: Float = 0, s2: Float = 0, s3: Float = 0
        var i = start
        while i + 4 <= end {
            s0 += x[i] * x[i]; s1 += x[i + 1] * x[i + 1]; s2 += x[i + 2] * x[i + 2]; s3 += x[i + 3] * x[i + 3]
            i += 4
        }
        while i < end { s0 += x[i] * x[i]; i += 1 }
        total += Double(s0) + Double(s1) + Double(s2) + Double(s3)
        start = end
    }
    return total
}
