// Shape letters: N images, H/W input height/width, C input channels, G groups,
// Cg = C / G channels per group, Kh/Kw kernel height/width, Ho/Wo output height/width.
//
// Note [Column order]: one im2col row belongs to one output pixel (n, oy, ox) and holds
// G blocks of Kh·Kw·Cg values, each block ordered (kh, kw, cg). With G = 1 that is exactly
// (kh, kw, cin), the order of one OHWI weight row [Cout][Kh][Kw][Cin], so the convolution is
// the GEMM  columns[N·Ho·Wo, Kh·Kw·C] × weightᵀ[Kh·Kw·C, Cout]. With G > 1, group g's block is
// contiguous inside each row (offset g·Kh·Kw·Cg, leading dimension Kh·Kw·C), so each group is
// one GEMM addressed by leading-dimension strides instead of a separate copy.

/// The geometry of a 2-D convolution (or pooling window) over NHWC input.
public struct ConvGeometry: Sendable, Equatable {
    public let inHeight: Int
    public let inWidth: Int
    public let channels: Int
    public let kernelHeight: Int
    public let kernelWidth: Int
    public let stride: Int
    public let paddingHeight: Int
    public let paddingWidth: Int
    public let groups: Int

    public init(inHeight: Int, inWidth: Int, channels: Int, kernelHeight: Int, kernelWidth: Int,
                stride: Int = 1, paddingHeight: Int = 0, paddingWidth: Int = 0, groups: Int = 1) {
        precondition(kernelHeight > 0 && kernelWidth > 0 && stride > 0, "kernel and stride must be positive")
        precondition(paddingHeight >= 0 && paddingWidth >= 0, "padding must be non-negative")
        precondition(groups > 0 && channels % groups == 0, "channels \(channels) not divisible by groups \(groups)")
        self.inHeight = inHeight; self.inWidth = inWidth; self.channels = channels
        self.kernelHeight = kernelHeight; self.kernelWidth = kernelWidth; self.stride = stride
        self.paddingHeight = paddingHeight; self.paddingWidth = paddingWidth; self.groups = groups
        precondition(outHeight > 0 && outWidth > 0,
                     "input \(inHeight)×\(inWidth) too small for kernel \(kernelHeight)×\(kernelWidth) with padding \(paddingHeight),\(paddingWidth)")
    }

    /// floor((H + 2p − k) / s) + 1, as PyTorch with ceil_mode = false.
    public var outHeight: Int { (inHeight + 2 * paddingHeight - kernelHeight) / stride + 1 }
    public var outWidth: Int { (inWidth + 2 * paddingWidth - kernelWidth) / stride + 1 }
    /// Kh·Kw·Cg: the length of one group's block in a column row (and of one OHWI weight row).
    public var columnsPerGroup: Int { kernelHeight * kernelWidth * (channels / groups) }
    /// Kh·Kw·C: the length of one column row.
    public var columns: Int { kernelHeight * kernelWidth * channels }
}

/// Unrolls `images` NHWC images into rows of patches (see Note [Column order]).
/// input: [images, H, W, C]; columns: [images·Ho·Wo, Kh·Kw·C]. Padding reads as zero.
public func im2colForward(_ input: UnsafePointer<Float>, images: Int, geometry g: ConvGeometry,
                          columns: UnsafeMutablePointer<Float>) {
    let started = Profiler.start()
    defer { Profiler.record(Profiler.im2col, since: started) }
    let h = g.inHeight, w = g.inWidth, c = g.channels, kh = g.kernelHeight, kw = g.kernelWidth
    let s = g.stride, ph = g.paddingHeight, pw = g.paddingWidth, groups = g.groups
    let ho = g.outHeight, wo = g.outWidth, cg = c / groups, kg = g.columnsPerGroup, k = g.columns
    var row = columns
    if groups == 1 {
        // One kernel row's window is contiguous in NHWC input and in the column row: copy it
        // as one run (Kw·C floats: 21 for a 7×7 stem on RGB, instead of seven runs of 3).
        let run = kw &* c
        for n in 0..<images {
            let image = input + n &* h &* w &* c
            for oy in 0..<ho {
                for ox in 0..<wo {
                    let ix0 = ox &* s &- pw
                    let first = min(max(0, -ix0), kw), last = max(min(kw, w &- ix0), first)
                    for ky in 0..<kh {
                        let iy = oy &* s &- ph &+ ky
                        let dst = row + ky &* run
                        if iy < 0 || iy >= h {
                            dst.update(repeating: 0, count: run)
                            continue
                        }
                        if first > 0 { dst.update(repeating: 0, count: first &* c) }
                        if last > first {
                            (dst + first &* c).update(from: image + (iy &* w &+ ix0 &+ first) &* c, count: (last &- first) &* c)
                        }
                        if last < kw { (dst + last &* c).update(repeating: 0, count: (kw &- last) &* c) }
                    }
                    row += k
                }
            }
        }
        return
    }
    for n in 0..<images {
        let image = input + n &* h &* w &* c
        for oy in 0..<ho {
            for ox in 0..<wo {
                for ky in 0..<kh {
                    let iy = oy &* s &- ph &+ ky
                    for kx in 0..<kw {
                        let ix = ox &* s &- pw &+ kx
                        let dst = row + (ky &* kw &+ kx) &* cg
                        if iy < 0 || iy >= h || ix < 0 || ix >= w {
                            for gi in 0..<groups { (dst + gi &* kg).update(repeating: 0, count: cg) }
                        } else {
                            let src = image + (iy &* w &+ ix) &* c
                            for gi in 0..<groups { (dst + gi &* kg).update(from: src + gi &* cg, count: cg) }
                        }
                    }
                }
                row += k
            }
        }
    }
}

/// The adjoint of `im2colForward` (col2im): ADDS every column entry back into the input
/// position it was copied from, so overlapping windows accumulate. Padding entries are dropped.
/// dColumns: [images·Ho·Wo, Kh·Kw·C]; dInput: [images, H, W, C] (not cleared here).
public func im2colBackward(_ dColumns: UnsafePointer<Float>, images: Int, geometry g: ConvGeometry,
                           dInput: UnsafeMutablePointer<Float>) {
    let started = Profiler.start()
    defer { Profiler.record(Profiler.col2im, since: started) }
    let h = g.inHeight, w = g.inWidth, c = g.channels, kh = g.kernelHeight, kw = g.kernelWidth
    let s = g.stride, ph = g.paddingHeight, pw = g.paddingWidth, groups = g.groups
    let ho = g.outHeight, wo = g.outWidth, cg = c / groups, kg = g.columnsPerGroup, k = g.columns
    var row = dColumns
    if groups == 1 {
        // As in the forward: one contiguous run per kernel row.
        let run = kw &* c
        for n in 0..<images {
            let image = dInput + n &* h &* w &* c
            for oy in 0..<ho {
                for ox in 0..<wo {
                    let ix0 = ox &* s &- pw
                    let first = min(max(0, -ix0), kw), last = max(min(kw, w &- ix0), first)
                    let count = (last &- first) &* c
                    for ky in 0..<kh {
                        let iy = oy &* s &- ph &+ ky
                        if iy < 0 || iy >= h || count == 0 { continue }
                        let src = row + (ky &* run &+ first &* c)
                        let dst = image + (iy &* w &+ ix0 &+ first) &* c
                        for i in 0..<count { dst[i] += src[i] }
                    }
                    row += k
                }
            }
        }
        return
    }
    for n in 0..<images {
        let image = dInput + n &* h &* w &* c
        for oy in 0..<ho {
            for ox in 0..<wo {
                for ky in 0..<kh {
                    let iy = oy &* s &- ph &+ ky
                    if iy < 0 || iy >= h { continue }
                    for kx in 0..<kw {
                        let ix = ox &* s &- pw &+ kx
                        if ix < 0 || ix >= w { continue }
                        let src = row + (ky &* kw &+ kx) &* cg
                        let dst = image + (iy &* w &+ ix) &* c
                        for gi in 0..<groups {
                            let gs = src + gi &* kg, gd = dst + gi &* cg
                            for ci in 0..<cg { gd[ci] += gs[ci] }
                        }
                    }
                }
                row += k
            }
        }
    }
}
