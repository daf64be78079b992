// Pillow's two-pass 8-bit resample (Pillow 13.0, libImaging/Resample.c, ImagingResampleInner):
// one pass per axis through a uint8 intermediate that is rounded and clipped, so the pass order
// is part of the result (it moves bytes by up to ±11 on noise). See Note [Pass order]. A pass
// whose size does not change is skipped. When the horizontal pass goes first it produces only
// the rows the vertical pass reads (Pillow's "ybox"); that saves work and changes no byte.
// Shape letters: W/H region width/height, w/h output width/height; rows are interleaved RGB.

// Note [Pass order]: Pillow ≤ 12 always ran horizontal then vertical. Pillow 13 runs the vertical
// pass first when the height shrinks by more than twice as many pixels as the width does
// (H − h > 0 and H − h > 2 (W − w)), to make the horizontal pass cheaper. We follow Pillow 13,
// the version our PyTorch reference environment has; older Pillow differs in those cases only.
func pillowRunsVerticalFirst(width: Int, height: Int, outWidth: Int, outHeight: Int) -> Bool {
    height - outHeight > 0 && height - outHeight > (width - outWidth) * 2
}

/// Pillow's clip8: drop the fraction bits (arithmetic shift, so floor) and clamp to a byte.
@inline(__always)
private func clipToByte(_ sum: Int32) -> UInt8 {
    UInt8(clamping: sum >> resamplePrecisionBits)
}

/// Accumulators start at one half in fixed point, so the shift in clipToByte rounds to nearest.
private let roundingHalf: Int32 = 1 << (resamplePrecisionBits - 1)

func resizeSeparable(_ image: RGBImage, region: CropRegion, width: Int, height: Int,
                     kernel: ResampleKernel) -> RGBImage {
    let needHorizontal = width != region.width
    let needVertical = height != region.height
    let vertical = needVertical ? ResampleTaps(inSize: region.height, outSize: height, kernel: kernel) : nil
    let rowsNeeded = vertical?.inputSpan ?? 0..<region.height

    let verticalFirst = pillowRunsVerticalFirst(width: region.width, height: region.height,
                                                outWidth: width, outHeight: height)

    let pixels = [UInt8](unsafeUninitializedCapacity: width * height * 3) { out, count in
        image.pixels.withUnsafeBufferPointer { src in
            let regionBase = src.baseAddress! + (region.top * image.width + region.left) * 3
            let sourceStride = image.width * 3
            let dst = out.baseAddress!
            let horizontal = needHorizontal ? ResampleTaps(inSize: region.width, outSize: width, kernel: kernel) : nil
            switch (horizontal, vertical) {
            case let (horizontal?, vertical?) where verticalFirst:
                // Intermediate: h rows of the full region width W.
                let intermediate = UnsafeMutablePointer<UInt8>.allocate(capacity: height * region.width * 3)
                defer { intermediate.deallocate() }
                resampleColumns(regionBase, sourceStride: sourceStride, firstRow: 0, rowBytes: region.width * 3,
                                taps: vertical, into: intermediate)
                resampleRows(intermediate, sourceStride: region.width * 3, rows: height, taps: horizontal, into: dst)
            case let (horizontal?, vertical?):
                // Intermediate: w wide, only the source rows the vertical taps reach.
                let intermediate = UnsafeMutablePointer<UInt8>.allocate(capacity: rowsNeeded.count * width * 3)
                defer { intermediate.deallocate() }
                resampleRows(regionBase + rowsNeeded.lowerBound * sourceStride, sourceStride: sourceStride,
                             rows: rowsNeeded.count, taps: horizontal, into: intermediate)
                resampleColumns(intermediate, sourceStride: width * 3, firstRow: rowsNeeded.lowerBound,
                                rowBytes: width * 3, taps: vertical, into: dst)
            case let (horizontal?, nil):
                resampleRows(regionBase, sourceStride: sourceStride, rows: height, taps: horizontal, into: dst)
            case let (nil, vertical?):
                resampleColumns(regionBase, sourceStride: sourceStride, firstRow: 0, rowBytes: width * 3,
                                taps: vertical, into: dst)
            case (nil, nil):
                preconditionFailure("resizeSeparable called for an unchanged size")
            }
        }
        count = width * height * 3
    }
    return RGBImage(width: width, height: height, pixels: pixels)
}

/// Horizontal pass: each of `rows` source rows (RGB, `sourceStride` bytes apart) becomes a packed
/// row of taps.first.count output pixels in `output`.
private func resampleRows(_ source: UnsafePointer<UInt8>, sourceStride: Int, rows: Int, taps: ResampleTaps,
                          into output: UnsafeMutablePointer<UInt8>) {
    let outWidth = taps.first.count
    let stride = taps.stride
    taps.first.withUnsafeBufferPointer { first in
        taps.count.withUnsafeBufferPointer { count in
            taps.weights.withUnsafeBufferPointer { weights in
                for r in 0..<rows {
                    let inRow = source + r &* sourceStride
                    let outRow = output + r &* outWidth &* 3
                    for o in 0..<outWidth {
                        let k = weights.baseAddress! + o &* stride
                        var p = inRow + Int(first[o]) &* 3
                        var s0 = roundingHalf, s1 = roundingHalf, s2 = roundingHalf
                        for i in 0..<Int(count[o]) {
                            let weight = k[i]
                            s0 &+= Int32(p[0]) &* weight
                            s1 &+= Int32(p[1]) &* weight
                            s2 &+= Int32(p[2]) &* weight
                            p += 3
                        }
                        outRow[o &* 3] = clipToByte(s0)
                        outRow[o &* 3 &+ 1] = clipToByte(s1)
                        outRow[o &* 3 &+ 2] = clipToByte(s2)
                    }
                }
            }
        }
    }
}

/// Vertical pass: output row o is the weighted sum of source rows taps.first[o] − firstRow ..<
/// + taps.count[o] (rows `sourceStride` bytes apart, `rowBytes` used of each). Integer sums are
/// exact, so accumulating a whole row per tap (vectorisable) equals Pillow's per-pixel order.
private func resampleColumns(_ source: UnsafePointer<UInt8>, sourceStride: Int, firstRow: Int, rowBytes: Int,
                             taps: ResampleTaps, into output: UnsafeMutablePointer<UInt8>) {
    let outHeight = taps.first.count
    let stride = taps.stride
    let sums = UnsafeMutablePointer<Int32>.allocate(capacity: rowBytes)
    defer { sums.deallocate() }
    taps.first.withUnsafeBufferPointer { first in
        taps.count.withUnsafeBufferPointer { count in
            taps.weights.withUnsafeBufferPointer { weights in
                for o in 0..<outHeight {
                    sums.update(repeating: roundingHalf, count: rowBytes)
                    let k = weights.baseAddress! + o &* stride
                    let top = Int(first[o]) &- firstRow
                    for i in 0..<Int(count[o]) {
                        let weight = k[i]
                        let inRow = source + (top &+ i) &* sourceStride
                        for b in 0..<rowBytes { sums[b] &+= Int32(inRow[b]) &* weight }
                    }
                    let outRow = output + o &* rowBytes
                    for b in 0..<rowBytes { outRow[b] = clipToByte(sums[b]) }
                }
            }
        }
    }
}
