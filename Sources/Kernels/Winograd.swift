// Shape letters: N images, H/W input height/width, C input channels, O output channels,
// Ho/Wo output height/width, m×m output pixels per tile, α = m + 2, T tiles, ξ one of the α²
// positions of a transformed tile.
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
// F(4×4, 3×3) is the same with 6×6 patches, 4×4 output tiles and 36 GEMMs (Lavin & Gray's
// matrices, interpolation points 0, ±1, ±2, ∞; see `WinogradF4`): 36 multiply-adds for 16
// outputs instead of 144, 4× fewer FLOPs, and a transformed input 2.25× the input instead of
// 4×. Its constants reach 8 and 1/24, so it rounds worse (below): F(2×2) is the default,
// F(4×4) the opt-in `--conv-algorithm winograd-f4`. With F(4×4) the PyTorch parity tests' first-
// layer weight gradients, back-propagated through a whole network with BatchNorm over tiny
// batches, drift past their 1e-3 bound (ResNet-50 1.3e-3, Inception-ResNet-V2 2e-2), where
// F(2×2) stays within it. Forward + backward of one layer, batch 16, timed in one process
// with a throwaway harness on a loaded machine: F(4×4) 1.5–2× faster than F(2×2) on 56×56×64
// and 28×28×128 feature maps, no faster on 14×14 and smaller.
//
// All transforms run over channels, which NHWC keeps contiguous, eight lanes at a time: a
// tile's α×α lanes are loaded into a small buffer, transformed along columns and then rows in
// place, and stored. Transformed tiles are stored position-major — V as [α²][T][C], M and Z as
// [α²][T][O], U and dU as [α²][O][C] — so each GEMM reads and writes contiguous matrices.
// (Tile-major storage, [T][α²][C], would keep a tile's transform in one block, but its GEMMs
// then step α²·C floats from row to row: with 64 channels and F(2×2) that is 4 KiB, every row
// in the same cache sets, and the 64-channel GEMMs measured 25–38 GFLOP/s against 41–51
// position-major.)
//
// Rounding, measured in WinogradConvolutionTests on a 64-channel 16×16 ResNet layer against
// Double, as a fraction of the largest output: direct (im2col, sums of 576 products) 5.4e-7,
// F(2×2) 3.5e-7 (its GEMMs' sums of 64 products offset the transforms' cancellation),
// F(4×4) 5.1e-6, ten times the direct path's.

/// What a Winograd F(m×m, 3×3) convolution needs to know about its input and output.
public struct WinogradGeometry: Sendable, Equatable {
    public let inHeight: Int
    public let inWidth: Int
    public let inChannels: Int
    public let outChannels: Int
    public let paddingHeight: Int
    public let paddingWidth: Int
    /// m: 2 for F(2×2, 3×3), 4 for F(4×4, 3×3).
    public let tileSize: Int

    public init(inHeight: Int, inWidth: Int, inChannels: Int, outChannels: Int, paddingHeight: Int, paddingWidth: Int,
                tileSize: Int = 2) {
        precondition(tileSize == 2 || tileSize == 4, "Winograd tiles are 2×2 or 4×4, not \(tileSize)")
        self.inHeight = inHeight; self.inWidth = inWidth
        self.inChannels = inChannels; self.outChannels = outChannels
        self.paddingHeight = paddingHeight; self.paddingWidth = paddingWidth
        self.tileSize = tileSize
        precondition(outHeight > 0 && outWidth > 0, "input \(inHeight)×\(inWidth) too small for a 3×3 kernel")
    }

    public var outHeight: Int { inHeight + 2 * paddingHeight - 2 }
    public var outWidth: Int { inWidth + 2 * paddingWidth - 2 }
    /// α: the side of an input patch and of a transformed tile.
    public var patchSize: Int { tileSize + 2 }
    /// α²: the GEMMs per convolution.
    public var positions: Int { patchSize * patchSize }
    public var tileRows: Int { (outHeight + tileSize - 1) / tileSize }
    public var tileColumns: Int { (outWidth + tileSize - 1) / tileSize }
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

/// One variant F(m×m, 3×3): its one-dimensional transforms, each in place on lanes `s` apart
/// (a column of a tile buffer with s = α, a row with s = 1). A tile's 2-D transform applies
/// one to every column and then to every row (X ↦ T X Tᵀ).
protocol WinogradVariant {
    static var m: Int { get }
    /// x[0..<α] ← Bᵀ x[0..<α]
    static func input(_ x: UnsafeMutablePointer<Lanes8>, _ s: Int)
    /// x[0..<α] ← B x[0..<α], the adjoint of `input`.
    static func inputGradient(_ x: UnsafeMutablePointer<Lanes8>, _ s: Int)
    /// x[0..<m] ← Aᵀ x[0..<α]
    static func output(_ x: UnsafeMutablePointer<Lanes8>, _ s: Int)
    /// x[0..<α] ← A x[0..<m], the adjoint of `output`.
    static func outputGradient(_ x: UnsafeMutablePointer<Lanes8>, _ s: Int)
    /// x[0..<α] ← G x[0..<3]
    static func weight(_ x: UnsafeMutablePointer<Lanes8>, _ s: Int)
    /// x[0..<3] ← Gᵀ x[0..<α], the adjoint of `weight`.
    static func weightGradient(_ x: UnsafeMutablePointer<Lanes8>, _ s: Int)
}

/// F(2×2, 3×3): the matrices in Note [Winograd F(2×2, 3×3)].
enum WinogradF2: WinogradVariant {
    static var m: Int { 2 }
    @inline(__always) static func input(_ x: UnsafeMutablePointer<Lanes8>, _ s: Int) {
        let x0 = x[0], x1 = x[s], x2 = x[2 &* s], x3 = x[3 &* s]
        x[0] = x0 - x2; x[s] = x1 + x2; x[2 &* s] = x2 - x1; x[3 &* s] = x1 - x3
    }
    @inline(__always) static func inputGradient(_ x: UnsafeMutablePointer<Lanes8>, _ s: Int) {
        let x0 = x[0], x1 = x[s], x2 = x[2 &* s], x3 = x[3 &* s]
        x[0] = x0; x[s] = x1 - x2 + x3; x[2 &* s] = x1 + x2 - x0; x[3 &* s] = -x3
    }
    @inline(__always) static func output(_ x: UnsafeMutablePointer<Lanes8>, _ s: Int) {
        let x0 = x[0], x1 = x[s], x2 = x[2 &* s], x3 = x[3 &* s]
        x[0] = x0 + x1 + x2; x[s] = x1 - x2 - x3
    }
    @inline(__always) static func outputGradient(_ x: UnsafeMutablePointer<Lanes8>, _ s: Int) {
        let a = x[0], b = x[s]
        x[0] = a; x[s] = a + b; x[2 &* s] = a - b; x[3 &* s] = -b
    }
    @inline(__always) static func weight(_ x: UnsafeMutablePointer<Lanes8>, _ s: Int) {
        let a = x[0], b = x[s], c = x[2 &* s]
        x[0] = a; x[s] = 0.5 * (a + b + c); x[2 &* s] = 0.5 * (a - b + c); x[3 &* s] = c
    }
    @inline(__always) static func weightGradient(_ x: UnsafeMutablePointer<Lanes8>, _ s: Int) {
        let x0 = x[0], x1 = x[s], x2 = x[2 &* s], x3 = x[3 &* s]
        x[0] = x0 + 0.5 * (x1 + x2); x[s] = 0.5 * (x1 - x2); x[2 &* s] = 0.5 * (x1 + x2) + x3
    }
}

/// F(4×4, 3×3), Lavin & Gray's matrices:
///
///     Bᵀ = ⎡4  0 −5  0 1 0⎤   G = ⎡ ¼     0     0 ⎤   Aᵀ = ⎡1 1  1 1  1 0⎤
///          ⎢0 −4 −4  1 1 0⎥       ⎢−⅙   −⅙    −⅙ ⎥        ⎢0 1 −1 2 −2 0⎥
///          ⎢0  4 −4 −1 1 0⎥       ⎢−⅙    ⅙    −⅙ ⎥        ⎢0 1  1 4  4 0⎥
///          ⎢0 −2 −1  2 1 0⎥       ⎢1/24 1/12  ⅙ ⎥        ⎣0 1 −1 8 −8 1⎦
///          ⎢0  2 −1 −2 1 0⎥       ⎢1/24 −1/12 ⅙ ⎥
///          ⎣0  4  0 −5 0 1⎦       ⎣ 0     0    1 ⎦
enum WinogradF4: WinogradVariant {
    static var m: Int { 4 }
    @inline(__always) static func input(_ x: UnsafeMutablePointer<Lanes8>, _ s: Int) {
        let x0 = x[0], x1 = x[s], x2 = x[2 &* s], x3 = x[3 &* s], x4 = x[4 &* s], x5 = x[5 &* s]
        let four: Float = 4, two: Float = 2, five: Float = 5
        let a: Lanes8 = x4 - four * x2, b: Lanes8 = x3 - four * x1, c: Lanes8 = x4 - x2, d: Lanes8 = two * (x3 - x1)
        let first: Lanes8 = four * x0 - five * x2, last: Lanes8 = four * x1 - five * x3
        x[0] = first + x4
        x[s] = a + b
        x[2 &* s] = a - b
        x[3 &* s] = c + d
        x[4 &* s] = c - d
        x[5 &* s] = last + x5
    }
    @inline(__always) static func inputGradient(_ x: UnsafeMutablePointer<Lanes8>, _ s: Int) {
        let x0 = x[0], x1 = x[s], x2 = x[2 &* s], x3 = x[3 &* s], x4 = x[4 &* s], x5 = x[5 &* s]
        let four: Float = 4, two: Float = 2, five: Float = 5
        let x12: Lanes8 = x1 + x2, x34: Lanes8 = x3 + x4
        let fours: Lanes8 = four * (x2 - x1 + x5), twos: Lanes8 = two * (x4 - x3)
        let fives: Lanes8 = five * x0 + four * x12
        let odd: Lanes8 = (x1 - x2) + two * (x3 - x4)
        x[0] = four * x0
        x[s] = fours + twos
        x[2 &* s] = -(fives + x34)
        x[3 &* s] = odd - five * x5
        x[4 &* s] = x0 + x12 + x34
        x[5 &* s] = x5
    }
    @inline(__always) static func output(_ x: UnsafeMutablePointer<Lanes8>, _ s: Int) {
        let x0 = x[0], x1 = x[s], x2 = x[2 &* s], x3 = x[3 &* s], x4 = x[4 &* s], x5 = x[5 &* s]
        let two: Float = 2, four: Float = 4, eight: Float = 8
        let p: Lanes8 = x1 + x2, q: Lanes8 = x1 - x2, r: Lanes8 = x3 + x4, t: Lanes8 = x3 - x4
        x[0] = x0 + p + r
        x[s] = q + two * t
        x[2 &* s] = p + four * r
        x[3 &* s] = q + eight * t + x5
    }
    @inline(__always) static func outputGradient(_ x: UnsafeMutablePointer<Lanes8>, _ s: Int) {
        let x0 = x[0], x1 = x[s], x2 = x[2 &* s], x3 = x[3 &* s]
        let two: Float = 2, four: Float = 4, eight: Float = 8
        let even: Lanes8 = x0 + x2, odd: Lanes8 = x1 + x3, even4: Lanes8 = x0 + four * x2
        let odd8: Lanes8 = two * x1 + eight * x3
        x[0] = x0
        x[s] = even + odd
        x[2 &* s] = even - odd
        x[3 &* s] = even4 + odd8
        x[4 &* s] = even4 - odd8
        x[5 &* s] = x3
    }
    @inline(__always) static func weight(_ x: UnsafeMutablePointer<Lanes8>, _ s: Int) {
        let a = x[0], b = x[s], c = x[2 &* s]
        let quarter: Float = 0.25, sixth: Float = 1.0 / 6, twelfth: Float = 1.0 / 12, twentyFourth: Float = 1.0 / 24
        let ac: Lanes8 = a + c, even: Lanes8 = twentyFourth * a + sixth * c, odd: Lanes8 = twelfth * b
        x[0] = quarter * a
        x[s] = -sixth * (ac + b)
        x[2 &* s] = -sixth * (ac - b)
        x[3 &* s] = even + odd
        x[4 &* s] = even - odd
        x[5 &* s] = c
    }
    @inline(__always) static func weightGradient(_ x: UnsafeMutablePointer<Lanes8>, _ s: Int) {
        let x0 = x[0], x1 = x[s], x2 = x[2 &* s], x3 = x[3 &* s], x4 = x[4 &* s], x5 = x[5 &* s]
        let quarter: Float = 0.25, sixth: Float = 1.0 / 6, twelfth: Float = 1.0 / 12, twentyFourth: Float = 1.0 / 24
        let x12: Lanes8 = x1 + x2, x34: Lanes8 = x3 + x4
        let first: Lanes8 = quarter * x0 - sixth * x12
        x[0] = first + twentyFourth * x34
        x[s] = sixth * (x2 - x1) + twelfth * (x3 - x4)
        x[2 &* s] = sixth * (x34 - x12) + x5
    }
}

/// Floats of scratch every transform takes (`scratch`, 64-byte aligned): one 6×6 tile of lanes.
/// It comes from the caller because 1,152 bytes is past what `withUnsafeTemporaryAllocation`
/// keeps on the stack (1 KiB), and a step must not allocate.
public let winogradScratchFloats = 36 * 8

/// Each compute thread's scratch for the tile transforms (Note [Compute threads]): part p's
/// tile scratch (`winogradScratchFloats`) and, after it, its sink (`edge` floats, which absorb
/// values that fall outside the image), at `base + p · stride`; 64-byte aligned when `base` is.
public struct WinogradScratch {
    public let base: UnsafeMutablePointer<Float>
    public let edge: Int
    public var stride: Int { winogradScratchFloats + edge }
    public init(base: UnsafeMutablePointer<Float>, edge: Int) { self.base = base; self.edge = edge }
    /// Floats for `parts` threads with sinks of `edge` floats.
    public static func floats(edge: Int, parts: Int) -> Int { (winogradScratchFloats + edge) * parts }
    @inline(__always) func tile(_ part: Int) -> UnsafeMutablePointer<Float> { base + part &* stride }
    @inline(__always) func sink(_ part: Int) -> UnsafeMutablePointer<Float> { base + (part &* stride &+ winogradScratchFloats) }
}

/// Calls `body` with the caller's scratch as a buffer of 36 lane vectors (a 6×6 tile at most)
/// and a table of 36 row pointers on the stack.
@inline(__always)
func withTileScratch<R>(_ scratch: UnsafeMutablePointer<Float>,
                        _ body: (UnsafeMutablePointer<Lanes8>, UnsafeMutablePointer<UnsafeMutablePointer<Float>>) -> R) -> R {
    scratch.withMemoryRebound(to: Lanes8.self, capacity: 36) { tile in
        withUnsafeTemporaryAllocation(of: UnsafeMutablePointer<Float>.self, capacity: 36) { table in
            body(tile, table.baseAddress!)
        }
    }
}

// The transforms walk the tiles of a chunk by index t in [image][tile row][tile column]
// order, without capturing closures: a closure that captured the walk's running pointers
// would box them on the heap, and the training step allocates nothing (ZeroAllocationStepTests).

/// Points `rows` at the α² input rows (C channels each) of tile `t`'s α×α patch in `base`
/// ([images, H, W, C]); a position in the padding gets `outside`.
@inline(__always)
func patchRows(_ rows: UnsafeMutablePointer<UnsafeMutablePointer<Float>>, tile t: Int,
               in base: UnsafeMutablePointer<Float>, geometry g: WinogradGeometry, outside: UnsafeMutablePointer<Float>) {
    let h = g.inHeight, w = g.inWidth, c = g.inChannels, m = g.tileSize, alpha = g.patchSize
    let (n, r) = t.quotientAndRemainder(dividingBy: g.tilesPerImage)
    let (ty, tx) = r.quotientAndRemainder(dividingBy: g.tileColumns)
    let image = base + n &* h &* w &* c
    let y0 = m &* ty &- g.paddingHeight, x0 = m &* tx &- g.paddingWidth
    for i in 0..<alpha {
        let iy = y0 &+ i
        let rowInside = iy >= 0 && iy < h
        for j in 0..<alpha {
            let ix = x0 &+ j
            rows[i &* alpha &+ j] = rowInside && ix >= 0 && ix < w ? image + (iy &* w &+ ix) &* c : outside
        }
    }
}

/// Points `pixels` at the m² output pixels (rows of O channels) of tile `t` in `base`
/// ([images, Ho, Wo, O]); a pixel past the output's last row or column gets `outside`.
@inline(__always)
func tilePixels(_ pixels: UnsafeMutablePointer<UnsafeMutablePointer<Float>>, tile t: Int,
                in base: UnsafeMutablePointer<Float>, geometry g: WinogradGeometry, outside: UnsafeMutablePointer<Float>) {
    let ho = g.outHeight, wo = g.outWidth, o = g.outChannels, m = g.tileSize
    let (n, r) = t.quotientAndRemainder(dividingBy: g.tilesPerImage)
    let (ty, tx) = r.quotientAndRemainder(dividingBy: g.tileColumns)
    let image = base + n &* ho &* wo &* o
    for i in 0..<m {
        let oy = m &* ty &+ i
        for j in 0..<m {
            let ox = m &* tx &+ j
            pixels[i &* m &+ j] = oy < ho && ox < wo ? image + (oy &* wo &+ ox) &* o : outside
        }
    }
}

/// V[ξ][t][c] = (Bᵀ d B)_ξ for every tile t of `images` NHWC images; v: [α²][images·T][C].
/// `zeros` holds at least C zeros, read where the patch lies in the padding.
public func winogradInputTransform(_ input: UnsafePointer<Float>, images: Int, geometry g: WinogradGeometry,
                                   zeros: UnsafeMutablePointer<Float>, scratch: WinogradScratch,
                                   into v: UnsafeMutablePointer<Float>) {
    let started = Profiler.start()
    defer { Profiler.record(Profiler.winogradTransforms, since: started) }
    let tiles = images * g.tilesPerImage
    ComputeThreads.shared.parallelFor(work: tiles * g.positions * g.inChannels) { part, parts in
        let range = splitRange(tiles, part: part, parts: parts)
        if g.tileSize == 4 {
            inputTransform(WinogradF4.self, input, images: images, tiles: range, geometry: g, zeros: zeros,
                           scratch: scratch.tile(part), into: v)
        } else {
            inputTransform(WinogradF2.self, input, images: images, tiles: range, geometry: g, zeros: zeros,
                           scratch: scratch.tile(part), into: v)
        }
    }
}

@inline(__always)
func inputTransform<F: WinogradVariant>(_: F.Type, _ input: UnsafePointer<Float>, images: Int, tiles range: Range<Int>,
                                        geometry g: WinogradGeometry, zeros: UnsafeMutablePointer<Float>,
                                        scratch: UnsafeMutablePointer<Float>, into v: UnsafeMutablePointer<Float>) {
    let c = g.inChannels, alpha = F.m &+ 2, tiles = images &* g.tilesPerImage, plane = tiles &* c
    let base = UnsafeMutablePointer(mutating: input)
    withTileScratch(scratch) { x, p in
        for t in range {
            patchRows(p, tile: t, in: base, geometry: g, outside: zeros)
            let out = v + t &* c
            for ch in stride(from: 0, to: c, by: 8) {
                let k = c &- ch
                for xi in 0..<(alpha &* alpha) { x[xi] = loadLanes(p[xi] + ch, k) }
                for j in 0..<alpha { F.input(x + j, alpha) }
                for i in 0..<alpha { F.input(x + i &* alpha, 1) }
                for xi in 0..<(alpha &* alpha) { storeLanes(x[xi], out + (xi &* plane &+ ch), k) }
            }
        }
    }
}

/// dX patch += (B dV Bᵀ) for every tile, dv: [α²][images·T][C]; `sink` (C floats of scratch)
/// absorbs the values that fall in the padding.
public func winogradInputGradientTransform(_ dv: UnsafePointer<Float>, images: Int, geometry g: WinogradGeometry,
                                           scratch: WinogradScratch, addingInto dx: UnsafeMutablePointer<Float>) {
    let started = Profiler.start()
    defer { Profiler.record(Profiler.winogradTransforms, since: started) }
    // Split by whole images: neighbouring tiles' patches overlap and add into the same pixels.
    let tilesPerImage = g.tilesPerImage
    let work = images > 1 ? images * tilesPerImage * g.positions * g.inChannels : 0
    ComputeThreads.shared.parallelFor(work: work) { part, parts in
        let own = splitRange(images, part: part, parts: parts)
        let range = (own.lowerBound * tilesPerImage)..<(own.upperBound * tilesPerImage)
        if g.tileSize == 4 {
            inputGradientTransform(WinogradF4.self, dv, images: images, tiles: range, geometry: g, sink: scratch.sink(part),
                                   scratch: scratch.tile(part), addingInto: dx)
        } else {
            inputGradientTransform(WinogradF2.self, dv, images: images, tiles: range, geometry: g, sink: scratch.sink(part),
                                   scratch: scratch.tile(part), addingInto: dx)
        }
    }
}

@inline(__always)
func inputGradientTransform<F: WinogradVariant>(_: F.Type, _ dv: UnsafePointer<Float>, images: Int, tiles range: Range<Int>,
                                                geometry g: WinogradGeometry, sink: UnsafeMutablePointer<Float>,
                                                scratch: UnsafeMutablePointer<Float>, addingInto dx: UnsafeMutablePointer<Float>) {
    let c = g.inChannels, alpha = F.m &+ 2, tiles = images &* g.tilesPerImage, plane = tiles &* c
    withTileScratch(scratch) { x, p in
        for t in range {
            patchRows(p, tile: t, in: dx, geometry: g, outside: sink)
            let src = dv + t &* c
            for ch in stride(from: 0, to: c, by: 8) {
                let k = c &- ch
                for xi in 0..<(alpha &* alpha) { x[xi] = loadLanes(src + (xi &* plane &+ ch), k) }
                for j in 0..<alpha { F.inputGradient(x + j, alpha) }
                for i in 0..<alpha { F.inputGradient(x + i &* alpha, 1) }
                for xi in 0..<(alpha &* alpha) { addLanes(x[xi], p[xi] + ch, k) }
            }
        }
    }
}

/// y = (or += with `accumulate`) Aᵀ M A for every tile, m: [α²][images·T][O]; y: NHWC
/// [images, Ho, Wo, O]. `sink` (O floats of scratch) takes the pixels past the output's edge.
public func winogradOutputTransform(_ m: UnsafePointer<Float>, images: Int, geometry g: WinogradGeometry,
                                    accumulate: Bool, scratch: WinogradScratch, into y: UnsafeMutablePointer<Float>) {
    let started = Profiler.start()
    defer { Profiler.record(Profiler.winogradTransforms, since: started) }
    let tiles = images * g.tilesPerImage
    ComputeThreads.shared.parallelFor(work: tiles * g.positions * g.outChannels) { part, parts in
        let range = splitRange(tiles, part: part, parts: parts)
        if g.tileSize == 4 {
            outputTransform(WinogradF4.self, m, images: images, tiles: range, geometry: g, accumulate: accumulate,
                            sink: scratch.sink(part), scratch: scratch.tile(part), into: y)
        } else {
            outputTransform(WinogradF2.self, m, images: images, tiles: range, geometry: g, accumulate: accumulate,
                            sink: scratch.sink(part), scratch: scratch.tile(part), into: y)
        }
    }
}

@inline(__always)
func outputTransform<F: WinogradVariant>(_: F.Type, _ m: UnsafePointer<Float>, images: Int, tiles range: Range<Int>,
                                         geometry g: WinogradGeometry, accumulate: Bool, sink: UnsafeMutablePointer<Float>,
                                         scratch: UnsafeMutablePointer<Float>, into y: UnsafeMutablePointer<Float>) {
    let o = g.outChannels, tile = F.m, alpha = F.m &+ 2, tiles = images &* g.tilesPerImage, plane = tiles &* o
    withTileScratch(scratch) { x, q in
        for t in range {
            tilePixels(q, tile: t, in: y, geometry: g, outside: sink)
            let src = m + t &* o
            for ch in stride(from: 0, to: o, by: 8) {
                let k = o &- ch
                for xi in 0..<(alpha &* alpha) { x[xi] = loadLanes(src + (xi &* plane &+ ch), k) }
                for j in 0..<alpha { F.output(x + j, alpha) }
                for i in 0..<tile { F.output(x + i &* alpha, 1) }
                for i in 0..<tile {
                    for j in 0..<tile {
                        let at = q[i &* tile &+ j] + ch
                        if accumulate { addLanes(x[i &* alpha &+ j], at, k) } else { storeLanes(x[i &* alpha &+ j], at, k) }
                    }
                }
            }
        }
    }
}

/// Z[ξ][t][o] = (A dY Aᵀ)_ξ for every tile, z: [α²][images·T][O]; a pixel past the output's
/// edge reads `zeros` (at least O zeros).
public func winogradOutputGradientTransform(_ dy: UnsafePointer<Float>, images: Int, geometry g: WinogradGeometry,
                                            zeros: UnsafeMutablePointer<Float>, scratch: WinogradScratch,
                                            into z: UnsafeMutablePointer<Float>) {
    let started = Profiler.start()
    defer { Profiler.record(Profiler.winogradTransforms, since: started) }
    let tiles = images * g.tilesPerImage
    ComputeThreads.shared.parallelFor(work: tiles * g.positions * g.outChannels) { part, parts in
        let range = splitRange(tiles, part: part, parts: parts)
        if g.tileSize == 4 {
            outputGradientTransform(WinogradF4.self, dy, images: images, tiles: range, geometry: g, zeros: zeros,
                                    scratch: scratch.tile(part), into: z)
        } else {
            outputGradientTransform(WinogradF2.self, dy, images: images, tiles: range, geometry: g, zeros: zeros,
                                    scratch: scratch.tile(part), into: z)
        }
    }
}

@inline(__always)
func outputGradientTransform<F: WinogradVariant>(_: F.Type, _ dy: UnsafePointer<Float>, images: Int, tiles range: Range<Int>,
                                                 geometry g: WinogradGeometry, zeros: UnsafeMutablePointer<Float>,
                                                 scratch: UnsafeMutablePointer<Float>, into z: UnsafeMutablePointer<Float>) {
    let o = g.outChannels, tile = F.m, alpha = F.m &+ 2, tiles = images &* g.tilesPerImage, plane = tiles &* o
    let base = UnsafeMutablePointer(mutating: dy)
    withTileScratch(scratch) { x, q in
        for t in range {
            tilePixels(q, tile: t, in: base, geometry: g, outside: zeros)
            let out = z + t &* o
            for ch in stride(from: 0, to: o, by: 8) {
                let k = o &- ch
                for i in 0..<tile {
                    for j in 0..<tile { x[i &* alpha &+ j] = loadLanes(q[i &* tile &+ j] + ch, k) }
                }
                for j in 0..<tile { F.outputGradient(x + j, alpha) }
                for i in 0..<alpha { F.outputGradient(x + i &* alpha, 1) }
                for xi in 0..<(alpha &* alpha) { storeLanes(x[xi], out + (xi &* plane &+ ch), k) }
            }
        }
    }
}

/// U_ξ[o][c] = (G g Gᵀ)_ξ for the OHWI weight [O][3][3][C]; u: [α²][O][C].
public func winogradWeightTransform(_ weight: UnsafePointer<Float>, outChannels o: Int, inChannels c: Int,
                                    tileSize: Int, scratch: UnsafeMutablePointer<Float>, into u: UnsafeMutablePointer<Float>) {
    let started = Profiler.start()
    defer { Profiler.record(Profiler.winogradTransforms, since: started) }
    if tileSize == 4 {
        weightTransform(WinogradF4.self, weight, outChannels: o, inChannels: c, scratch: scratch, into: u)
    } else {
        weightTransform(WinogradF2.self, weight, outChannels: o, inChannels: c, scratch: scratch, into: u)
    }
}

@inline(__always)
func weightTransform<F: WinogradVariant>(_: F.Type, _ weight: UnsafePointer<Float>, outChannels o: Int, inChannels c: Int,
                                         scratch: UnsafeMutablePointer<Float>, into u: UnsafeMutablePointer<Float>) {
    let alpha = F.m &+ 2, plane = o &* c
    withTileScratch(scratch) { x, _ in
        for oc in 0..<o {
            let g = weight + oc &* 9 &* c
            let out = u + oc &* c
            for ch in stride(from: 0, to: c, by: 8) {
                let k = c &- ch
                for ky in 0..<3 {
                    for kx in 0..<3 { x[ky &* alpha &+ kx] = loadLanes(g + ((ky &* 3 &+ kx) &* c &+ ch), k) }
                }
                for kx in 0..<3 { F.weight(x + kx, alpha) }
                for i in 0..<alpha { F.weight(x + i &* alpha, 1) }
                for xi in 0..<(alpha &* alpha) { storeLanes(x[xi], out + (xi &* plane &+ ch), k) }
            }
        }
    }
}

/// dW[o][ky][kx][c] += (Gᵀ dU G)[ky][kx] for dU: [α²][O][C] and the OHWI weight gradient.
public func winogradWeightGradientTransform(_ du: UnsafePointer<Float>, outChannels o: Int, inChannels c: Int,
                                            tileSize: Int, scratch: UnsafeMutablePointer<Float>,
                                            addingInto dw: UnsafeMutablePointer<Float>) {
    let started = Profiler.start()
    defer { Profiler.record(Profiler.winogradTransforms, since: started) }
    if tileSize == 4 {
        weightGradientTransform(WinogradF4.self, du, outChannels: o, inChannels: c, scratch: scratch, addingInto: dw)
    } else {
        weightGradientTransform(WinogradF2.self, du, outChannels: o, inChannels: c, scratch: scratch, addingInto: dw)
    }
}

@inline(__always)
func weightGradientTransform<F: WinogradVariant>(_: F.Type, _ du: UnsafePointer<Float>, outChannels o: Int, inChannels c: Int,
                                                 scratch: UnsafeMutablePointer<Float>, addingInto dw: UnsafeMutablePointer<Float>) {
    let alpha = F.m &+ 2, plane = o &* c
    withTileScratch(scratch) { x, _ in
        for oc in 0..<o {
            let src = du + oc &* c
            let out = dw + oc &* 9 &* c
            for ch in stride(from: 0, to: c, by: 8) {
                let k = c &- ch
                for xi in 0..<(alpha &* alpha) { x[xi] = loadLanes(src + (xi &* plane &+ ch), k) }
                for j in 0..<alpha { F.weightGradient(x + j, alpha) }
                for ky in 0..<3 { F.weightGradient(x + ky &* alpha, 1) }
                for ky in 0..<3 {
                    for kx in 0..<3 { addLanes(x[ky &* alpha &+ kx], out + ((ky &* 3 &+ kx) &* c &+ ch), k) }
                }
            }
        }
    }
}

/// Floats of the workspace a Winograd convolution keeps for itself before its tiles: a row of
/// zeros and a row of scratch (each max(C, O), rounded up so the tiles stay 64-byte aligned).
@inline(__always) func winogradEdgeFloats(_ g: WinogradGeometry) -> Int { (max(g.inChannels, g.outChannels) + 15) & ~15 }

/// Images per chunk so that one chunk's transformed tiles (V and M, or V and Z) stay within
/// `maxWorkspaceBytes`.
public func winogradChunkImages(_ g: WinogradGeometry, batch: Int, maxWorkspaceBytes: Int) -> Int {
    let perImage = g.tilesPerImage * g.positions * (g.inChannels + g.outChannels) * MemoryLayout<Float>.stride
    return max(1, min(batch, maxWorkspaceBytes / max(perImage, 1)))
}

/// y = (or += with `accumulate`) the 3×3 stride-1 convolution of NHWC x, through Note
/// [Winograd F(2×2, 3×3)] with the geometry's tile size; `u` is the weight transform
/// (`winogradWeightTransform` with the same tile size).
public func winogradConvolutionForward(_ x: UnsafePointer<Float>, images n: Int, geometry g: WinogradGeometry,
                                       transformedWeight u: UnsafePointer<Float>, workspace: FloatStorage,
                                       maxWorkspaceBytes: Int, accumulate: Bool, output y: UnsafeMutablePointer<Float>) {
    let c = g.inChannels, o = g.outChannels, t = g.tilesPerImage, edge = winogradEdgeFloats(g)
    let chunk = winogradChunkImages(g, batch: n, maxWorkspaceBytes: maxWorkspaceBytes)
    let positions = g.positions
    let scratchFloats = WinogradScratch.floats(edge: edge, parts: ComputeThreads.shared.count)
    workspace.reserve(edge + scratchFloats + chunk * t * positions * (c + o))
    let zeros = workspace.pointer, scratch = WinogradScratch(base: zeros + edge, edge: edge)
    zeros.update(repeating: 0, count: edge)
    let v = zeros + edge + scratchFloats, m = v + chunk * t * positions * c
    let imageIn = g.inHeight * g.inWidth * c, imageOut = g.outHeight * g.outWidth * o
    var start = 0
    while start < n {
        let count = min(chunk, n - start), rows = count * t
        winogradInputTransform(x + start * imageIn, images: count, geometry: g, zeros: zeros, scratch: scratch, into: v)
        for xi in 0..<positions {
            sgemm(transB: true, m: rows, n: o, k: c, a: v + xi * rows * c, lda: c,
                  b: u + xi * o * c, ldb: c, beta: 0, c: m + xi * rows * o, ldc: o)
        }
        winogradOutputTransform(m, images: count, geometry: g, accumulate: accumulate, scratch: scratch,
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
    let positions = g.positions
    let weightFloats = (positions * o * c + 15) & ~15
    let scratchFloats = WinogradScratch.floats(edge: edge, parts: ComputeThreads.shared.count)
    workspace.reserve(edge + scratchFloats + weightFloats + chunk * t * positions * (c + o))
    let zeros = workspace.pointer, scratch = WinogradScratch(base: zeros + edge, edge: edge)
    let du = zeros + edge + scratchFloats
    zeros.update(repeating: 0, count: edge)
    let v = du + weightFloats, z = v + chunk * t * positions * c
    let imageIn = g.inHeight * g.inWidth * c, imageOut = g.outHeight * g.outWidth * o
    dx?.update(repeating: 0, count: n * imageIn)  // overlapping patches accumulate
    var start = 0
    while start < n {
        let count = min(chunk, n - start), rows = count * t
        winogradInputTransform(x + start * imageIn, images: count, geometry: g, zeros: zeros, scratch: scratch, into: v)
        winogradOutputGradientTransform(dy + start * imageOut, images: count, geometry: g, zeros: zeros, scratch: scratch,
                                        into: z)
        for xi in 0..<positions {
            sgemm(transA: true, m: o, n: c, k: rows, a: z + xi * rows * o, lda: o,
                  b: v + xi * rows * c, ldb: c, beta: start == 0 ? 0 : 1, c: du + xi * o * c, ldc: c)
        }
        if let dx {
            // V is no longer needed: dV takes its place.
            for xi in 0..<positions {
                sgemm(m: rows, n: c, k: o, a: z + xi * rows * o, lda: o,
                      b: u + xi * o * c, ldb: c, beta: 0, c: v + xi * rows * c, ldc: c)
            }
            winogradInputGradientTransform(v, images: count, geometry: g, scratch: scratch, addingInto: dx + start * imageIn)
        }
        start += count
    }
    winogradWeightGradientTransform(du, outChannels: o, inChannels: c, tileSize: g.tileSize, scratch: scratch.tile(0),
                                    addingInto: dw)
}
