// The training fast path's resize: RandomResizedCrop's antialiased bilinear resize, the
// horizontal flip and ToTensor + Normalize in two float passes straight into the batch slot.
// Shape letters: W/H source (the decoded crop) width/height, S output size, 3 channels.
//
// Note [Float resize]: the exact path reproduces Pillow's 8-bit resample (a uint8 intermediate
// rounded between the passes and at the end, PillowResample.swift). This one keeps the same
// filter (Pillow's triangle taps, widened by the scale when shrinking; `ResampleTaps`) and the
// same crop, flip and normalisation, but sums in float with no rounding to bytes: what
// torchvision computes for a float tensor (`F.resized_crop(..., antialias=True)`, ATen's
// antialiased bilinear kernel, whose taps are Pillow's). Pillow's two roundings to bytes put
// its result within 1 level of this one (FusedResizedCropTests: max 0.85–1.0, mean 0.28–0.30
// levels over 11 shapes). It runs the vertical pass first (whole rows, vectorised) and the
// horizontal one on S rows only, with flip and normalisation folded into its store; in float
// no pass order is "right", so we take the cheaper.

/// Reused buffers for `resizeFlipNormalize` (one per loader worker): no allocation per image
/// once they have grown to the largest crop.
public final class ResizeScratch {
    /// S rows of W·3 floats, plus zeroed padding for the horizontal pass's loads.
    fileprivate var rows: UnsafeMutablePointer<Float>
    fileprivate var capacity = 0

    public init() {
        rows = .allocate(capacity: 1)
        capacity = 1
    }

    deinit { rows.deallocate() }

    fileprivate func reserve(_ count: Int) {
        guard count > capacity else { return }
        rows.deallocate()
        rows = .allocate(capacity: count)
        capacity = count
    }
}

/// Resizes all of `image` to S×S (triangle filter, antialiased when shrinking), flips it
/// horizontally when `flip`, and normalises with the ImageNet mean and std into an S×S×3 NHWC
/// slot: `cropFlipNormalize(resize(image, width: S, height: S), …)` up to Note [Float resize].
public func resizeFlipNormalize(_ image: RGBImage, size: Int, flip: Bool, scratch: ResizeScratch,
                                into output: UnsafeMutablePointer<Float>) {
    precondition(image.pixels.count == image.width * image.height * 3, "\(image.width)×\(image.height) image")
    image.pixels.withUnsafeBufferPointer {
        resizeFlipNormalize(PixelView(base: $0.baseAddress!, width: image.width, height: image.height, rowStride: image.width * 3),
                            size: size, flip: flip, scratch: scratch, into: output)
    }
}

/// `resizeFlipNormalize` of pixels in place (the region decoder's buffer).
public func resizeFlipNormalize(_ image: PixelView, size: Int, flip: Bool, scratch: ResizeScratch,
                                into output: UnsafeMutablePointer<Float>) {
    let (width, height) = (image.width, image.height)
    precondition(width > 0 && height > 0 && size > 0 && image.rowStride >= width * 3, "resize \(width)×\(height) to \(size)")
    let sourceStride = image.rowStride
    let vertical = ResampleTaps(inSize: height, outSize: size, kernel: .triangle)
    let horizontal = ResampleTaps(inSize: width, outSize: size, kernel: .triangle)
    let rowFloats = width &* 3
    // The horizontal pass reads up to `taps` pixels from a window's start and 4 floats per
    // pixel: past the last row's end by at most stride · 3 + 1 floats, zeroed (never NaN).
    let padding = horizontal.stride &* 3 &+ 1
    scratch.reserve(size &* rowFloats &+ padding)
    let rows = scratch.rows
    (rows + size &* rowFloats).update(repeating: 0, count: padding)

    // Vertical pass: S rows of W·3 floats, each a weighted sum of whole source rows. Up to four
    // taps per sweep over the row (plain loops the compiler vectorises, byte-to-float included),
    // so the intermediate row is stored once per four taps rather than once per tap.
    do {
        let source = image.base
        vertical.first.withUnsafeBufferPointer { first in
            vertical.count.withUnsafeBufferPointer { count in
                vertical.floatWeights.withUnsafeBufferPointer { weights in
                    for o in 0..<size {
                        let out = rows + o &* rowFloats
                        let k = weights.baseAddress! + o &* vertical.stride
                        let top = source + Int(first[o]) &* sourceStride
                        let n = Int(count[o])
                        var i = 0
                        while i < n {
                            let r0 = top + i &* sourceStride, r1 = r0 + sourceStride, r2 = r1 + sourceStride, r3 = r2 + sourceStride
                            let w0 = k[i]
                            switch (n &- i, i == 0) {
                            case (1, true):
                                for b in 0..<rowFloats { out[b] = Float(r0[b]) * w0 }
                            case (1, false):
                                for b in 0..<rowFloats { out[b] += Float(r0[b]) * w0 }
                            case (2, let first):
                                let w1 = k[i &+ 1]
                                if first {
                                    for b in 0..<rowFloats { out[b] = Float(r0[b]) * w0 + Float(r1[b]) * w1 }
                                } else {
                                    for b in 0..<rowFloats { out[b] += Float(r0[b]) * w0 + Float(r1[b]) * w1 }
                                }
                            case (3, let first):
                                let w1 = k[i &+ 1], w2 = k[i &+ 2]
                                if first {
                                    for b in 0..<rowFloats { out[b] = Float(r0[b]) * w0 + Float(r1[b]) * w1 + Float(r2[b]) * w2 }
                                } else {
                                    for b in 0..<rowFloats { out[b] += Float(r0[b]) * w0 + Float(r1[b]) * w1 + Float(r2[b]) * w2 }
                                }
                            default:
                                let w1 = k[i &+ 1], w2 = k[i &+ 2], w3 = k[i &+ 3]
                                if i == 0 {
                                    for b in 0..<rowFloats {
                                        out[b] = Float(r0[b]) * w0 + Float(r1[b]) * w1 + Float(r2[b]) * w2 + Float(r3[b]) * w3
                                    }
                                } else {
                                    for b in 0..<rowFloats {
                                        out[b] += Float(r0[b]) * w0 + Float(r1[b]) * w1 + Float(r2[b]) * w2 + Float(r3[b]) * w3
                                    }
                                }
                            }
                            i &+= 4
                        }
                    }
                }
            }
        }
    }

    // Horizontal pass on the S intermediate rows: each output pixel is a 4-wide (RGB + one
    // unused lane) weighted sum; normalisation and the flip happen in the store.
    let (m0, m1, m2) = imagenetMean
    let (d0, d1, d2) = imagenetStd
    // ToTensor's /255 and Normalize's (x − mean) / std as one multiply-add, as cropFlipNormalize.
    let scale = SIMD4<Float>(1 / (255 * d0), 1 / (255 * d1), 1 / (255 * d2), 0)
    let zero = SIMD4<Float>(-m0 / d0, -m1 / d1, -m2 / d2, 0)
    // Every output pixel sums the same number of taps (the widest window; the others' extra
    // weights are zero, and x + 0 · y = x for the finite values here), so four outputs can be
    // summed side by side: four independent add chains instead of one latency-bound chain.
    let taps = Int(horizontal.count.max()!)
    let hStride = horizontal.stride
    horizontal.first.withUnsafeBufferPointer { first in
        horizontal.floatWeights.withUnsafeBufferPointer { weights in
            let w = weights.baseAddress!
            let rowBytes = rowFloats &* 4
            // Output pixels go left to right whatever the flip (x is the output column, o the
            // resampled one), so each can be stored as 4 floats, the 4th landing on the next
            // pixel's red before that pixel is written; the row's last pixel stores 3.
            @inline(__always) func column(_ x: Int) -> Int { flip ? size &- 1 &- x : x }
            @inline(__always) func store4(_ sum: SIMD4<Float>, _ q: UnsafeMutablePointer<Float>) {
                UnsafeMutableRawPointer(q).storeBytes(of: sum * scale + zero, as: SIMD4<Float>.self)
            }
            @inline(__always) func store3(_ sum: SIMD4<Float>, _ q: UnsafeMutablePointer<Float>) {
                let value = sum * scale + zero
                q[0] = value[0]; q[1] = value[1]; q[2] = value[2]
            }
            // Two rows at a time share each weight load: 8 independent sums of 4 lanes.
            var y = 0
            while y < size {
                let pair = y &+ 1 < size
                let inRow = UnsafeRawPointer(rows + y &* rowFloats)
                let nextRow = pair ? inRow + rowBytes : inRow
                let outRow = output + y &* size &* 3
                let outNext = pair ? outRow + size &* 3 : outRow
                var x = 0
                while x &+ 4 < size {
                    let o0 = column(x), o1 = column(x &+ 1), o2 = column(x &+ 2), o3 = column(x &+ 3)
                    let f0 = Int(first[o0]) &* 12, f1 = Int(first[o1]) &* 12
                    let f2 = Int(first[o2]) &* 12, f3 = Int(first[o3]) &* 12
                    let k0 = w + o0 &* hStride, k1 = w + o1 &* hStride, k2 = w + o2 &* hStride, k3 = w + o3 &* hStride
                    var a0 = SIMD4<Float>(repeating: 0), a1 = a0, a2 = a0, a3 = a0
                    var b0 = a0, b1 = a0, b2 = a0, b3 = a0
                    var offset = 0
                    for i in 0..<taps {
                        let w0 = k0[i], w1 = k1[i], w2 = k2[i], w3 = k3[i]
                        a0 += (inRow + (f0 &+ offset)).loadUnaligned(as: SIMD4<Float>.self) * w0
                        b0 += (nextRow + (f0 &+ offset)).loadUnaligned(as: SIMD4<Float>.self) * w0
                        a1 += (inRow + (f1 &+ offset)).loadUnaligned(as: SIMD4<Float>.self) * w1
                        b1 += (nextRow + (f1 &+ offset)).loadUnaligned(as: SIMD4<Float>.self) * w1
                        a2 += (inRow + (f2 &+ offset)).loadUnaligned(as: SIMD4<Float>.self) * w2
                        b2 += (nextRow + (f2 &+ offset)).loadUnaligned(as: SIMD4<Float>.self) * w2
                        a3 += (inRow + (f3 &+ offset)).loadUnaligned(as: SIMD4<Float>.self) * w3
                        b3 += (nextRow + (f3 &+ offset)).loadUnaligned(as: SIMD4<Float>.self) * w3
                        offset &+= 12
                    }
                    let q = outRow + x &* 3, r = outNext + x &* 3
                    store4(a0, q); store4(a1, q + 3); store4(a2, q + 6); store4(a3, q + 9)
                    store4(b0, r); store4(b1, r + 3); store4(b2, r + 6); store4(b3, r + 9)
                    x &+= 4
                }
                while x < size {
                    let o = column(x)
                    let f = Int(first[o]) &* 12, k = w + o &* hStride
                    var a = SIMD4<Float>(repeating: 0), b = a
                    for i in 0..<taps {
                        a += (inRow + (f &+ i &* 12)).loadUnaligned(as: SIMD4<Float>.self) * k[i]
                        b += (nextRow + (f &+ i &* 12)).loadUnaligned(as: SIMD4<Float>.self) * k[i]
                    }
                    if x &+ 1 < size {
                        store4(a, outRow + x &* 3); store4(b, outNext + x &* 3)
                    } else {
                        store3(a, outRow + x &* 3); store3(b, outNext + x &* 3)
                    }
                    x &+= 1
                }
                y &+= pair ? 2 : 1
            }
        }
    }
}
