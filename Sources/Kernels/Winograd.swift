// Shape letters: N images, H/W input height/width, C input channels, O output channels,
// Ho/Wo output height/width, T tiles (2×2 output pixels each), ξ one of the 16 positions of a
// 4×4 transformed tile.
//
// Note [Winograd F(2×2, 3×3)]
// ~~~~~~~~~~~~~~~~~~~~~~~~~~~
// A 3×3 stride-1 convolution computes each 2×2 block of output pixels from a 4×4 input patch d
// with (Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks", 2015)
//
//     Y = Aᵀ [ Σ_c (G g Gᵀ)_oc ⊙ (Bᵀ d B)_c ] A
//
//     Bᵀ = ⎡1  0 −1  0⎤    G = ⎡ 1    0    0 ⎤    Aᵀ = ⎡1 1  1  0⎤
//          ⎢0  1  1  0⎥        ⎢ ½    ½    ½ ⎥         ⎣0 1 −1 −1⎦
//          ⎢0 −1  1  0⎥        ⎢ ½   −½    ½ ⎥
//          ⎣0  1  0 −1⎦        ⎣ 0    0    1 ⎦
//
// so the sum over input channels becomes 16 independent GEMMs, one per position ξ of the 4×4
// transformed tile: M_ξ[T, O] = V_ξ[T, C] · U_ξ[O, C]ᵀ, with V = Bᵀ d B (input transform) and
// U = G g Gᵀ (weight transform). That is 16 multiply-adds per tile, channel pair instead of the
// direct 4 × 9 = 36: 2.25× fewer GEMM FLOPs. Both backward passes are the adjoints of the same
// linear maps, so they reuse the transforms and GEMM shapes:
//
//     Z = A dY Aᵀ                  (output-gradient transform, 2×2 → 4×4)
//     dV_ξ[T, C] = Z_ξ · U_ξ        →  dX patch += B dV Bᵀ  (patches overlap: scatter-add)
//     dU_ξ[O, C] = Z_ξᵀ · V_ξ       →  dW += Gᵀ dU G
//
// All transforms run over channels, which NHWC keeps contiguous, eight lanes at a time.
// Transformed tiles are stored position-major — V as [16][T][C], M and Z as [16][T][O], U and
// dU as [16][O][C] — so each GEMM reads and writes contiguous matrices. (Tile-major storage,
// [T][16][C], would keep a tile's transform in one block, but its GEMMs then step 16·C floats
// from row to row: with 64 channels that is 4 KiB, every row in the same cache sets, and the
// 64-channel GEMMs measured 25–38 GFLOP/s against 41–51 position-major.)
//
// Rounding: the transforms add and subtract values of similar size, so the result differs
// from the exact convolution by a few float32 ulps of the output's scale. Measured in
// WinogradConvolutionTests on a 64-channel 16×16 ResNet layer against Double: 3.5e-7 of the
// largest output, while the direct path (im2col, sums of 576 products) gives 5.4e-7 — the
// shorter sums of the GEMMs (64 products) offset the transforms' cancellation. F(4×4, 3×3) would save more FLOPs (4×) but
// its transform constants grow to 8 and its error by two orders of magnitude; not used.

/// What a Winograd F(2×2, 3×3) convolution needs to know about its input and output.
public struct WinogradGeometry: Sendable, Equatable {
    public let inHeight: Int
    public let inWidth: Int
    public let inChannels: Int
    public let outChannels: Int
    public let paddingHeight: Int
    public let paddingWidth: Int

    public init(inHeight: Int, inWidth: Int, inChannels: Int, outChannels: Int, paddingHeight: Int, paddingWidth: Int) {
        self.inHeight = inHeight; self.inWidth = inWidth
        self.inChannels = inChannels; self.outChannels = outChannels
        self.paddingHeight = paddingHeight; self.paddingWidth = paddingWidth
        precondition(outHeight > 0 && outWidth > 0, "input \(inHeight)×\(inWidth) too small for a 3×3 kernel")
    }

    public var outHeight: Int { inHeight + 2 * paddingHeight - 2 }
    public var outWidth: Int { inWidth + 2 * paddingWidth - 2 }
    public var tileRows: Int { (outHeight + 1) / 2 }
    public var tileColumns: Int { (outWidth + 1) / 2 }
    public var tilesPerImage: Int { tileRows * tileColumns }
}

public typealias Lanes8 = SIMD8<Float>

/// Loads `count` (≥ 8 means all eight) floats, zeros in the lanes past it.
@inline(__always) func loadLanes(_ p: UnsafePointer<Float>, _ count: Int) -> Lanes8 {
    if count >= 8 { return UnsafeRawPointer(p).loadUnaligned(as: Lanes8.self) }
    var v = Lanes8()
    for i in 0..<count { v[i] = p[i] }
    return v
}

@inline(__always) func storeLanes(_ v: Lanes8, _ p: UnsafeMutablePointer<Float>, _ count: Int) {
    if count >= 8 { UnsafeMutableRawPointer(p).storeBytes(of: v, as: Lanes8.self); return }
    for i in 0..<count { p[i] = v[i] }
}

@inline(__always) func addLanes(_ v: Lanes8, _ p: UnsafeMutablePointer<Float>, _ count: Int) {
    storeLanes(loadLanes(p, count) + v, p, count)
}


typealias FourLanes = (Lanes8, Lanes8, Lanes8, Lanes8)

// The one-dimensional transforms. A tile's 2-D transform applies one to each column of the
// tile and then to each row of the result (X ↦ T X Tᵀ).

/// Bᵀ x.
@inline(__always) func inputTransform1D(_ x: FourLanes) -> FourLanes {
    (x.0 - x.2, x.1 + x.2, x.2 - x.1, x.1 - x.3)
}

/// B x, the adjoint of Bᵀ.
@inline(__always) func inputGradientTransform1D(_ x: FourLanes) -> FourLanes {
    (x.0, x.1 - x.2 + x.3, x.1 + x.2 - x.0, -x.3)
}

/// Aᵀ x.
@inline(__always) func outputTransform1D(_ x: FourLanes) -> (Lanes8, Lanes8) {
    (x.0 + x.1 + x.2, x.1 - x.2 - x.3)
}

/// A x, the adjoint of Aᵀ.
@inline(__always) func outputGradientTransform1D(_ a: Lanes8, _ b: Lanes8) -> FourLanes {
    (a, a + b, a - b, -b)
}

/// G x.
@inline(__always) func weightTransform1D(_ a: Lanes8, _ b: Lanes8, _ c: Lanes8) -> FourLanes {
    (a, 0.5 * (a + b + c), 0.5 * (a - b + c), c)
}

/// Gᵀ x, the adjoint of G.
@inline(__always) func weightGradientTransform1D(_ x: FourLanes) -> (Lanes8, Lanes8, Lanes8) {
    (x.0 + 0.5 * (x.1 + x.2), 0.5 * (x.1 - x.2), 0.5 * (x.1 + x.2) + x.3)
}

/// U_ξ[o][c] = (G g Gᵀ)_ξ for the OHWI weight [O][3][3][C]; u: [16][O][C].
public func winogradWeightTransform(_ weight: UnsafePointer<Float>, outChannels o: Int, inChannels c: Int,
                                    into u: UnsafeMutablePointer<Float>) {
    let started = Profiler.start()
    defer { Profiler.record(Profiler.winogradTransforms, since: started) }
    let plane = o &* c
    for oc in 0..<o {
        let g = weight + oc &* 9 &* c
        for ch in stride(from: 0, to: c, by: 8) {
            let k = c &- ch
            @inline(__always) func w(_ ky: Int, _ kx: Int) -> Lanes8 { loadLanes(g + ((ky &* 3 &+ kx) &* c &+ ch), k) }
            let c0 = weightTransform1D(w(0, 0), w(1, 0), w(2, 0))
            let c1 = weightTransform1D(w(0, 1), w(1, 1), w(2, 1))
            let c2 = weightTransform1D(w(0, 2), w(1, 2), w(2, 2))
            @inline(__always) func row(_ i: Int, _ r: FourLanes) {
                let base = u + ((i &* 4) &* plane &+ oc &* c &+ ch)
                storeLanes(r.0, base, k)
                storeLanes(r.1, base + plane, k)
                storeLanes(r.2, base + 2 &* plane, k)
                storeLanes(r.3, base + 3 &* plane, k)
            }
            row(0, weightTransform1D(c0.0, c1.0, c2.0))
            row(1, weightTransform1D(c0.1, c1.1, c2.1))
            row(2, weightTransform1D(c0.2, c1.2, c2.2))
            row(3, weightTransform1D(c0.3, c1.3, c2.3))
        }
    }
}

/// dW[o][ky][kx][c] += (Gᵀ dU G)[ky][kx] for dU: [16][O][C] and the OHWI weight gradient.
public func winogradWeightGradientTransform(_ du: UnsafePointer<Float>, outChannels o: Int, inChannels c: Int,
                                            addingInto dw: UnsafeMutablePointer<Float>) {
    let started = Profiler.start()
    defer { Profiler.record(Profiler.winogradTransforms, since: started) }
    let plane = o &* c
    for oc in 0..<o {
        let out = dw + oc &* 9 &* c
        for ch in stride(from: 0, to: c, by: 8) {
            let k = c &- ch
            @inline(__always) func x(_ xi: Int) -> Lanes8 { loadLanes(du + (xi &* plane &+ oc &* c &+ ch), k) }
            let c0 = weightGradientTransform1D((x(0), x(4), x(8), x(12)))
            let c1 = weightGradientTransform1D((x(1), x(5), x(9), x(13)))
            let c2 = weightGradientTransform1D((x(2), x(6), x(10), x(14)))
            let c3 = weightGradientTransform1D((x(3), x(7), x(11), x(15)))
            @inline(__always) func row(_ ky: Int, _ r: (Lanes8, Lanes8, Lanes8)) {
                let base = out + (ky &* 3 &* c &+ ch)
                addLanes(r.0, base, k)
                addLanes(r.1, base + c, k)
                addLanes(r.2, base + 2 &* c, k)
            }
            row(0, weightGradientTransform1D((c0.0, c1.0, c2.0, c3.0)))
            row(1, weightGradientTransform1D((c0.1, c1.1, c2.1, c3.1)))
            row(2, weightGradientTransform1D((c0.2, c1.2, c2.2, c3.2)))
        }
    }
}

// The transforms walk the tiles of a chunk by index t in [image][tile row][tile column]
// order, without closures: a closure that captured the walk's running pointers would box them
// on the heap, and the training step allocates nothing (ZeroAllocationStepTests).

/// Points `rows` at the 16 input rows (C channels each) of tile `t`'s 4×4 patch in `base`
/// ([images, H, W, C]); a position in the padding gets `outside`.
@inline(__always)
func patchRows(_ rows: UnsafeMutablePointer<UnsafeMutablePointer<Float>>, tile t: Int,
               in base: UnsafeMutablePointer<Float>, geometry g: WinogradGeometry, outside: UnsafeMutablePointer<Float>) {
    let h = g.inHeight, w = g.inWidth, c = g.inChannels
    let perImage = g.tilesPerImage, (n, r) = t.quotientAndRemainder(dividingBy: perImage)
    let (ty, tx) = r.quotientAndRemainder(dividingBy: g.tileColumns)
    let image = base + n &* h &* w &* c
    let y0 = 2 &* ty &- g.paddingHeight, x0 = 2 &* tx &- g.paddingWidth
    for i in 0..<4 {
        let iy = y0 &+ i
        let rowInside = iy >= 0 && iy < h
        for j in 0..<4 {
            let ix = x0 &+ j
            rows[i &* 4 &+ j] = rowInside && ix >= 0 && ix < w ? image + (iy &* w &+ ix) &* c : outside
        }
    }
}

/// The four output pixels (rows of O channels) of tile `t` in `base` ([images, Ho, Wo, O]);
/// a pixel past an odd last row or column gets `outside`.
@inline(__always)
func tilePixels(tile t: Int, in base: UnsafeMutablePointer<Float>, geometry g: WinogradGeometry,
                outside: UnsafeMutablePointer<Float>)
    -> (UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>) {
    let ho = g.outHeight, wo = g.outWidth, o = g.outChannels
    let (n, r) = t.quotientAndRemainder(dividingBy: g.tilesPerImage)
    let (ty, tx) = r.quotientAndRemainder(dividingBy: g.tileColumns)
    let oy = 2 &* ty, ox = 2 &* tx, hasRow1 = oy &+ 1 < ho, hasColumn1 = ox &+ 1 < wo
    let p00 = base + ((n &* ho &+ oy) &* wo &+ ox) &* o
    return (p00, hasColumn1 ? p00 + o : outside,
            hasRow1 ? p00 + wo &* o : outside, hasRow1 && hasColumn1 ? p00 + (wo &+ 1) &* o : outside)
}

/// V[ξ][t][c] = (Bᵀ d B)_ξ for every tile t of `images` NHWC images; v: [16][images·T][C].
/// `zeros` holds at least C zeros, read where the patch lies in the padding.
public func winogradInputTransform(_ input: UnsafePointer<Float>, images: Int, geometry g: WinogradGeometry,
                                   zeros: UnsafeMutablePointer<Float>, into v: UnsafeMutablePointer<Float>) {
    let started = Profiler.start()
    defer { Profiler.record(Profiler.winogradTransforms, since: started) }
    let c = g.inChannels, tiles = images &* g.tilesPerImage, plane = tiles &* c
    let base = UnsafeMutablePointer(mutating: input)
    withUnsafeTemporaryAllocation(of: UnsafeMutablePointer<Float>.self, capacity: 16) { table in
        let p = table.baseAddress!
        for t in 0..<tiles {
            patchRows(p, tile: t, in: base, geometry: g, outside: zeros)
            let out = v + t &* c
            for ch in stride(from: 0, to: c, by: 8) {
                let k = c &- ch
                @inline(__always) func d(_ i: Int) -> Lanes8 { loadLanes(p[i] + ch, k) }
                let c0 = inputTransform1D((d(0), d(4), d(8), d(12)))
                let c1 = inputTransform1D((d(1), d(5), d(9), d(13)))
                let c2 = inputTransform1D((d(2), d(6), d(10), d(14)))
                let c3 = inputTransform1D((d(3), d(7), d(11), d(15)))
                @inline(__always) func row(_ i: Int, _ r: FourLanes) {
                    let at = out + (i &* 4 &* plane &+ ch)
                    storeLanes(r.0, at, k)
                    storeLanes(r.1, at + plane, k)
                    storeLanes(r.2, at + 2 &* plane, k)
                    storeLanes(r.3, at + 3 &* plane, k)
                }
                row(0, inputTransform1D((c0.0, c1.0, c2.0, c3.0)))
                row(1, inputTransform1D((c0.1, c1.1, c2.1, c3.1)))
                row(2, inputTransform1D((c0.2, c1.2, c2.2, c3.2)))
                row(3, inputTransform1D((c0.3, c1.3, c2.3, c3.3)))
            }
        }
    }
}

/// dX patch += (B dV Bᵀ) for every tile, dv: [16][images·T][C]; `sink` (C floats of scratch)
/// absorbs the values that fall in the padding.
public func winogradInputGradientTransform(_ dv: UnsafePointer<Float>, images: Int, geometry g: WinogradGeometry,
                                           sink: UnsafeMutablePointer<Float>, addingInto dx: UnsafeMutablePointer<Float>) {
    let started = Profiler.start()
    defer { Profiler.record(Profiler.winogradTransforms, since: started) }
    let c = g.inChannels, tiles = images &* g.tilesPerImage, plane = tiles &* c
    withUnsafeTemporaryAllocation(of: UnsafeMutablePointer<Float>.self, capacity: 16) { table in
        let p = table.baseAddress!
        for t in 0..<tiles {
            patchRows(p, tile: t, in: dx, geometry: g, outside: sink)
            let src = dv + t &* c
            for ch in stride(from: 0, to: c, by: 8) {
                let k = c &- ch
                @inline(__always) func x(_ i: Int) -> Lanes8 { loadLanes(src + (i &* plane &+ ch), k) }
                let c0 = inputGradientTransform1D((x(0), x(4), x(8), x(12)))
                let c1 = inputGradientTransform1D((x(1), x(5), x(9), x(13)))
                let c2 = inputGradientTransform1D((x(2), x(6), x(10), x(14)))
                let c3 = inputGradientTransform1D((x(3), x(7), x(11), x(15)))
                @inline(__always) func row(_ i: Int, _ r: FourLanes) {
                    addLanes(r.0, p[i &* 4] + ch, k)
                    addLanes(r.1, p[i &* 4 &+ 1] + ch, k)
                    addLanes(r.2, p[i &* 4 &+ 2] + ch, k)
                    addLanes(r.3, p[i &* 4 &+ 3] + ch, k)
                }
                row(0, inputGradientTransform1D((c0.0, c1.0, c2.0, c3.0)))
                row(1, inputGradientTransform1D((c0.1, c1.1, c2.1, c3.1)))
                row(2, inputGradientTransform1D((c0.2, c1.2, c2.2, c3.2)))
                row(3, inputGradientTransform1D((c0.3, c1.3, c2.3, c3.3)))
            }
        }
    }
}

/// y = (or += with `accumulate`) Aᵀ M A for every tile, m: [16][images·T][O]; y: NHWC
/// [images, Ho, Wo, O]. `sink` (O floats of scratch) takes the pixels past an odd edge.
public func winogradOutputTransform(_ m: UnsafePointer<Float>, images: Int, geometry g: WinogradGeometry,
                                    accumulate: Bool, sink: UnsafeMutablePointer<Float>, into y: UnsafeMutablePointer<Float>) {
    let started = Profiler.start()
    defer { Profiler.record(Profiler.winogradTransforms, since: started) }
    let o = g.outChannels, tiles = images &* g.tilesPerImage, plane = tiles &* o
    for t in 0..<tiles {
        let (y00, y01, y10, y11) = tilePixels(tile: t, in: y, geometry: g, outside: sink)
        let src = m + t &* o
        for ch in stride(from: 0, to: o, by: 8) {
            let k = o &- ch
            @inline(__always) func x(_ i: Int) -> Lanes8 { loadLanes(src + (i &* plane &+ ch), k) }
            let c0 = outputTransform1D((x(0), x(4), x(8), x(12)))
            let c1 = outputTransform1D((x(1), x(5), x(9), x(13)))
            let c2 = outputTransform1D((x(2), x(6), x(10), x(14)))
            let c3 = outputTransform1D((x(3), x(7), x(11), x(15)))
            let row0 = outputTransform1D((c0.0, c1.0, c2.0, c3.0))
            let row1 = outputTransform1D((c0.1, c1.1, c2.1, c3.1))
            if accumulate {
                addLanes(row0.0, y00 + ch, k); addLanes(row0.1, y01 + ch, k)
                addLanes(row1.0, y10 + ch, k); addLanes(row1.1, y11 + ch, k)
            } else {
                storeLanes(row0.0, y00 + ch, k); storeLanes(row0.1, y01 + ch, k)
                storeLanes(row1.0, y10 + ch, k); storeLanes(row1.1, y11 + ch, k)
            }
        }
    }
}

/// Z[ξ][t][o] = (A dY Aᵀ)_ξ for every tile, z: [16][images·T][O]; a pixel past an odd edge of
/// the output reads `zeros` (at least O zeros).
public func winogradOutputGradientTransform(_ dy: UnsafePointer<Float>, images: Int, geometry g: WinogradGeometry,
                                            zeros: UnsafeMutablePointer<Float>, into z: UnsafeMutablePointer<Float>) {
    let started = Profiler.start()
    defer { Profiler.record(Profiler.winogradTransforms, since: started) }
    let o = g.outChannels, tiles = images &* g.tilesPerImage, plane = tiles &* o
    let base = UnsafeMutablePointer(mutating: dy)
    for t in 0..<tiles {
        let (d00, d01, d10, d11) = tilePixels(tile: t, in: base, geometry: g, outside: zeros)
        let out = z + t &* o
        for ch in stride(from: 0, to: o, by: 8) {
            let k = o &- ch
            let c0 = outputGradientTransform1D(loadLanes(d00 + ch, k), loadLanes(d10 + ch, k))
            let c1 = outputGradientTransform1D(loadLanes(d01 + ch, k), loadLanes(d11 + ch, k))
            @inline(__always) func row(_ i: Int, _ r: FourLanes) {
                let at = out + (i &* 4 &* plane &+ ch)
                storeLanes(r.0, at, k)
                storeLanes(r.1, at + plane, k)
                storeLanes(r.2, at + 2 &* plane, k)
                storeLanes(r.3, at + 3 &* plane, k)
            }
            row(0, outputGradientTransform1D(c0.0, c1.0))
            row(1, outputGradientTransform1D(c0.1, c1.1))
            row(2, outputGradientTransform1D(c0.2, c1.2))
            row(3, outputGradientTransform1D(c0.3, c1.3))
        }
    }
}

/// Floats of the workspace a Winograd convolution keeps for itself before its tiles: a row of
/// zeros and a row of scratch (each max(C, O), rounded up so the tiles stay 64-byte aligned).
@inline(__always) func winogradEdgeFloats(_ g: WinogradGeometry) -> Int { (max(g.inChannels, g.outChannels) + 15) & ~15 }

/// Images per chunk so that one chunk's transformed tiles (V and M, or V and Z) stay within
/// `maxWorkspaceBytes`.
public func winogradChunkImages(_ g: WinogradGeometry, batch: Int, maxWorkspaceBytes: Int) -> Int {
    let perImage = g.tilesPerImage * 16 * (g.inChannels + g.outChannels) * MemoryLayout<Float>.stride
    return max(1, min(batch, maxWorkspaceBytes / max(perImage, 1)))
}

/// y = (or += with `accumulate`) the 3×3 stride-1 convolution of NHWC x, through Note
/// [Winograd F(2×2, 3×3)]; `u` is the weight transform (`winogradWeightTransform`).
public func winogradConvolutionForward(_ x: UnsafePointer<Float>, images n: Int, geometry g: WinogradGeometry,
                                       transformedWeight u: UnsafePointer<Float>, workspace: FloatStorage,
                                       maxWorkspaceBytes: Int, accumulate: Bool, output y: UnsafeMutablePointer<Float>) {
    let c = g.inChannels, o = g.outChannels, t = g.tilesPerImage, edge = winogradEdgeFloats(g)
    let chunk = winogradChunkImages(g, batch: n, maxWorkspaceBytes: maxWorkspaceBytes)
    workspace.reserve(2 * edge + chunk * t * 16 * (c + o))
    let zeros = workspace.pointer, sink = zeros + edge
    zeros.update(repeating: 0, count: edge)
    let v = sink + edge, m = v + chunk * t * 16 * c
    let imageIn = g.inHeight * g.inWidth * c, imageOut = g.outHeight * g.outWidth * o
    var start = 0
    while start < n {
        let count = min(chunk, n - start), rows = count * t
        winogradInputTransform(x + start * imageIn, images: count, geometry: g, zeros: zeros, into: v)
        for xi in 0..<16 {
            sgemm(transB: true, m: rows, n: o, k: c, a: v + xi * rows * c, lda: c,
                  b: u + xi * o * c, ldb: c, beta: 0, c: m + xi * rows * o, ldc: o)
        }
        winogradOutputTransform(m, images: count, geometry: g, accumulate: accumulate, sink: sink,
                                into: y + start * imageOut)
        start += count
    }
}

/// Backward of `winogradConvolutionForward`: dW += the weight gradient (OHWI) and, when
/// `inputGradient` is given, it is overwritten with dX. Reads x and dy only.
public func winogradConvolutionBackward(input x: UnsafePointer<Float>, outputGradient dy: UnsafePointer<Float>,
                                        images n: Int, geometry g: WinogradGeometry,
                                        transformedWeight u: UnsafePointer<Float>, workspace: FloatStorage,
                                        maxWorkspaceBytes: Int, weightGradient dw: UnsafeMutablePointer<Float>,
                                        inputGradient dx: UnsafeMutablePointer<Float>?) {
    let c = g.inChannels, o = g.outChannels, t = g.tilesPerImage, edge = winogradEdgeFloats(g)
    let chunk = winogradChunkImages(g, batch: n, maxWorkspaceBytes: maxWorkspaceBytes)
    let weightFloats = (16 * o * c + 15) & ~15
    workspace.reserve(2 * edge + weightFloats + chunk * t * 16 * (c + o))
    let zeros = workspace.pointer, sink = zeros + edge, du = sink + edge
    zeros.update(repeating: 0, count: edge)
    let v = du + weightFloats, z = v + chunk * t * 16 * c
    let imageIn = g.inHeight * g.inWidth * c, imageOut = g.outHeight * g.outWidth * o
    dx?.update(repeating: 0, count: n * imageIn)  // overlapping patches accumulate
    var start = 0
    while start < n {
        let count = min(chunk, n - start), rows = count * t
        winogradInputTransform(x + start * imageIn, images: count, geometry: g, zeros: zeros, into: v)
        winogradOutputGradientTransform(dy + start * imageOut, images: count, geometry: g, zeros: zeros, into: z)
        for xi in 0..<16 {
            sgemm(transA: true, m: o, n: c, k: rows, a: z + xi * rows * o, lda: o,
                  b: v + xi * rows * c, ldb: c, beta: start == 0 ? 0 : 1, c: du + xi * o * c, ldc: c)
        }
        if let dx {
            // V is no longer needed: dV takes its place.
            for xi in 0..<16 {
                sgemm(m: rows, n: c, k: o, a: z + xi * rows * o, lda: o,
                      b: u + xi * o * c, ldb: c, beta: 0, c: v + xi * rows * c, ldc: c)
            }
            winogradInputGradientTransform(v, images: count, geometry: g, sink: sink, addingInto: dx + start * imageIn)
        }
        start += count
    }
    winogradWeightGradientTransform(du, outChannels: o, inChannels: c, addingInto: dw)
}
