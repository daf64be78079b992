// Fixed-point filter taps for one axis of Pillow's separable resample (libImaging/Resample.c,
// `precompute_coeffs` + `normalize_coeffs_8bpc`). Every floating-point step below is evaluated
// in the same order and precision as Pillow's C (doubles, no fused multiply-add: Pillow's x86-64
// wheels are built without FMA and Swift never contracts), because one ulp in a weight can move
// a product across a rounding boundary and change an output byte.

/// Bits after the binary point of a fixed-point weight: Pillow's PRECISION_BITS = 32 − 8 − 2
/// (8 for the pixel, 2 spare for coefficient sums above 1 or below 0).
let resamplePrecisionBits: Int32 = 22

/// The continuous filter behind a ResampleFilter, with its support at scale 1.
enum ResampleKernel {
    case triangle, keysCubic

    var support: Double {
        switch self {
        case .triangle: 1
        case .keysCubic: 2
        }
    }

    @inline(__always)
    func callAsFunction(_ t: Double) -> Double {
        let x = t < 0 ? -t : t
        switch self {
        case .triangle:
            return x < 1 ? 1 - x : 0
        case .keysCubic:
            // Keys (1981) cubic convolution with a = −0.5, written in Pillow's Horner order.
            let a = -0.5
            if x < 1 { return ((a + 2) * x - (a + 3)) * x * x + 1 }
            if x < 2 { return (((x - 5) * x + 8) * x - 4) * a }
            return 0
        }
    }
}

/// For each output index o along one axis: input indices first[o] ..< first[o] + count[o] with
/// weights weights[o · stride ..< o · stride + count[o]] (fixed point, `resamplePrecisionBits`).
struct ResampleTaps {
    let first: [Int32]
    let count: [Int32]
    let weights: [Int32]
    /// The same taps before fixed-point rounding (normalised to sum 1), for the float resize
    /// of the training fast path (Note [Float resize]).
    let floatWeights: [Float]
    let stride: Int

    /// Input indices any output reads: what the first pass must produce for the second.
    var inputSpan: Range<Int> {
        Int(first[0])..<Int(first[first.count - 1] + count[count.count - 1])
    }

    init(inSize: Int, outSize: Int, kernel: ResampleKernel) {
        // Pillow takes the span as a float box (in1 − in0); sizes below 2^24 make that exact.
        let scale = Double(inSize) / Double(outSize)
        // Shrinking widens the filter by the scale (antialiasing); enlarging keeps it at 1.
        let filterScale = max(scale, 1)
        let support = kernel.support * filterScale
        let stride = Int(support.rounded(.up)) * 2 + 1
        let inverseFilterScale = 1 / filterScale
        var first = [Int32](repeating: 0, count: outSize)
        var count = [Int32](repeating: 0, count: outSize)
        var weights = [Int32](repeating: 0, count: outSize * stride)
        var floatWeights = [Float](repeating: 0, count: outSize * stride)
        var taps = [Double](repeating: 0, count: stride)
        for o in 0..<outSize {
            let center = (Double(o) + 0.5) * scale
            // Pillow rounds the window ends by adding 0.5 and truncating toward zero.
            let lo = max(Int(center - support + 0.5), 0)
            let hi = min(Int(center + support + 0.5), inSize)
            var total = 0.0
            for i in 0..<(hi - lo) {
                let t = kernel((Double(i + lo) - center + 0.5) * inverseFilterScale)
                taps[i] = t
                total += t
            }
            for i in 0..<(hi - lo) {
                let normalised = total != 0 ? taps[i] / total : taps[i]
                floatWeights[o * stride + i] = Float(normalised)
                // Round half away from zero to fixed point, as normalize_coeffs_8bpc does.
                let scaled = normalised * Double(1 << resamplePrecisionBits)
                weights[o * stride + i] = Int32(normalised < 0 ? scaled - 0.5 : scaled + 0.5)
            }
            first[o] = Int32(lo)
            count[o] = Int32(hi - lo)
        }
        self.first = first
        self.count = count
        self.weights = weights
        self.floatWeights = floatWeights
        self.stride = stride
    }
}
