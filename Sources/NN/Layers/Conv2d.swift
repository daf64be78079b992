import Kernels

// Shape letters: N batch, H/W input height/width, Ho/Wo output height/width, C input channels,
// O output channels, G groups, Cg = C/G, Og = O/G, Kh/Kw kernel height/width, K = Kh·Kw·C
// columns of one im2col row, Kg = Kh·Kw·Cg columns of one group (see Note [Column order] in
// Kernels/Im2col.swift).

/// How a convolution's weight is drawn at construction.
public enum ConvWeightInit: Sendable {
    /// torchvision ResNet: kaiming_normal_(mode="fan_out", nonlinearity="relu"), std = √(2/fan_out),
    /// fan_out = O·Kh·Kw.
    case kaimingNormalFanOut
    /// PyTorch's nn.Conv2d.reset_parameters (what timm models without their own init keep):
    /// kaiming_uniform_(a=√5) = U(±1/√fan_in), fan_in = Cg·Kh·Kw.
    case pytorchDefault
}

/// How a convolution computes (Note [Winograd F(2×2, 3×3)] in Kernels/Winograd.swift):
/// `automatic` takes Winograd F(2×2, 3×3) for every 3×3 stride-1 ungrouped convolution and
/// im2col + GEMM for the rest; `winogradF2` is the same; `winogradF4` takes F(4×4, 3×3) instead
/// (fewer FLOPs, ten times the rounding error: opt-in); `im2col` never takes Winograd (the
/// direct path, for comparison and tests).
public enum ConvolutionAlgorithm: String, Sendable, CaseIterable, Codable {
    case automatic = "auto"
    case winogradF2 = "winograd-f2"
    case winogradF4 = "winograd-f4"
    case im2col
}

/// 2-D convolution over NHWC input, weight stored OHWI [O][Kh][Kw][Cg] (PyTorch files: OIHW).
/// Kernels and padding may be rectangular (Inception's 1×7 with padding (0, 3)); the stride is
/// the same along both axes (as in `ConvGeometry`).
///
/// Forward is Winograd F(2×2, 3×3) for 3×3 stride-1 ungrouped kernels (see `algorithm`), else
/// im2col + one row-major SGEMM per group per chunk of images:
///   Y[rows, g·Og ..< (g+1)·Og] = columns[rows, g·Kg ..< (g+1)·Kg] · W_gᵀ
/// A 1×1 stride-1 unpadded convolution reads the input directly as the column matrix (NHWC makes
/// it already [N·H·W, C]). Depthwise convolution (G = C = O) uses a direct loop, because a GEMM
/// with one output channel per group wastes the BLAS call.
///
/// Note [Shared workspace]: the im2col buffer is scratch that lives only within one forward or
/// one backward call (backward recomputes the columns instead of caching them from forward, so
/// memory stays bounded by the chunk size, not the activation size). Layers that run on the same
/// thread may therefore share one `FloatStorage`: pass the same `workspace` to every Conv2d of a
/// model (or assign `conv.workspace`) so a deep network holds one workspace, not one per layer.
public final class Conv2d: Layer {
    public let inChannels: Int
    public let outChannels: Int
    public let kernelHeight: Int
    public let kernelWidth: Int
    public let stride: Int
    public let paddingHeight: Int
    public let paddingWidth: Int
    public let groups: Int
    public let weight: ParameterEntry
    public let bias: ParameterEntry?

    /// Upper bound on the im2col workspace; the batch is processed in chunks of images that fit
    /// (at least one image per chunk). Lower it to force chunking, e.g. in tests.
    /// 4 MiB keeps each chunk's columns in cache between im2col writing them and the GEMM
    /// reading them: measured against 32 MiB (one thread, same run), ResNet-18 at 64 px
    /// trained 13% faster (85 → 96 images/s), ResNet-50 at 224 px 8% or more, Inception-
    /// ResNet-V2 4%; 0.5–1 MiB was slower again (GEMM panels too short).
    public var maxWorkspaceBytes: Int = 4 << 20
    /// False for a network's first convolution: nothing needs the gradient of the input
    /// images (PyTorch skips it too), so backward computes dW and db alone and returns an
    /// unspecified tensor of the input's shape — for ResNet's 7×7 stem that saves a GEMM and
    /// the col2im of every step.
    public var computesInputGradient = true
    /// The im2col (or Winograd tile) scratch buffer; see Note [Shared workspace].
    public var workspace: FloatStorage
    /// Winograd or im2col; what new convolutions get is `Conv2d.defaultAlgorithm`.
    public var algorithm: ConvolutionAlgorithm = Conv2d.defaultAlgorithm
    /// The algorithm convolutions take when built (`--conv-algorithm`): set it before building
    /// a model.
    nonisolated(unsafe) public static var defaultAlgorithm = ConvolutionAlgorithm.automatic

    let store: ParameterStore
    /// Set by `foldInEval(_:)`: the BatchNorm after this convolution, folded into it in eval
    /// (Note [BatchNorm folding], BatchNormFolding.swift).
    public internal(set) var batchNormFold: BatchNormFold?
    private let output = Tensor()
    private var input: Tensor?
    private let biasScratch: UnsafeMutablePointer<Double>
    /// Depthwise only: weight transposed to [Kh][Kw][C] so the inner loop runs over contiguous
    /// channels, and its gradient in the same layout before it is added back as OHWI.
    private let depthwiseWeight = FloatStorage()
    private let depthwiseGradient = FloatStorage()
    /// Winograd only: the weight transform U [α²][O][C] for tiles of `transformedTileSize`, made
    /// by every forward; backward reuses the one a `.train` forward made (the weights do not
    /// change in between).
    private let transformedWeight = FloatStorage()
    private var transformedTileSize = 0
    private var transformedWeightServesBackward = false

    /// A square kernel with equal padding on both axes.
    public convenience init(_ store: ParameterStore, name: String, inChannels: Int, outChannels: Int,
                            kernelSize: Int, stride: Int = 1, padding: Int = 0, groups: Int = 1, bias: Bool = false,
                            weightInit: ConvWeightInit = .kaimingNormalFanOut, workspace: FloatStorage? = nil) {
        self.init(store, name: name, inChannels: inChannels, outChannels: outChannels,
                  kernelSize: (kernelSize, kernelSize), stride: stride, padding: (padding, padding), groups: groups,
                  bias: bias, weightInit: weightInit, workspace: workspace)
    }

    /// `kernelSize` and `padding` as (height, width), like PyTorch's tuple arguments:
    /// kernel (1, 7) with padding (0, 3) keeps the spatial size.
    public init(_ store: ParameterStore, name: String, inChannels: Int, outChannels: Int, kernelSize: (Int, Int),
                stride: Int = 1, padding: (Int, Int) = (0, 0), groups: Int = 1, bias: Bool = false,
                weightInit: ConvWeightInit = .kaimingNormalFanOut, workspace: FloatStorage? = nil) {
        let (kh, kw) = kernelSize, (ph, pw) = padding
        precondition(inChannels > 0 && outChannels > 0 && kh > 0 && kw > 0 && stride > 0 && ph >= 0 && pw >= 0,
                     "\(name): invalid convolution configuration")
        precondition(groups > 0 && inChannels % groups == 0 && outChannels % groups == 0,
                     "\(name): channels \(inChannels)→\(outChannels) not divisible by groups \(groups)")
        self.store = store
        self.inChannels = inChannels
        self.outChannels = outChannels
        self.kernelHeight = kh
        self.kernelWidth = kw
        self.stride = stride
        self.paddingHeight = ph
        self.paddingWidth = pw
        self.groups = groups
        self.workspace = workspace ?? FloatStorage()
        let cg = inChannels / groups
        let fanIn = Double(cg * kh * kw)
        let initializer: ParameterInit
        switch weightInit {
        case .kaimingNormalFanOut: initializer = .normal(std: (2 / Double(outChannels * kh * kw)).squareRoot())
        case .pytorchDefault: initializer = .uniform(bound: 1 / fanIn.squareRoot())
        }
        weight = store.addParameter("\(name).weight", shape: [outChannels, cg, kh, kw],
                                    layout: .convOHWI, initializer: initializer)
        if bias {
            // PyTorch's Conv2d default bias init: U(−1/√fan_in, 1/√fan_in), fan_in = Cg·Kh·Kw.
            self.bias = store.addParameter("\(name).bias", shape: [outChannels],
                                           initializer: .uniform(bound: 1 / fanIn.squareRoot()), isWeight: false)
        } else {
            self.bias = nil
        }
        biasScratch = .allocate(capacity: outChannels)
    }

    deinit { biasScratch.deallocate() }

    /// The profile category (Note [Per-layer profile]): kernel, stride, depthwise or grouped.
    private lazy var profileCategory: Int = {
        let kind = isDepthwise ? "depthwise" : groups > 1 ? "grouped conv" : "conv"
        return Profiler.category("\(kind) \(kernelHeight)×\(kernelWidth) s\(stride)")
    }()

    /// Multiply-adds × 2 of one forward on `x` (backward does twice as many: dx and dW).
    private func forwardFlops(_ x: Tensor) -> Double {
        let g = geometry(x)
        return 2 * Double(x.n * g.outHeight * g.outWidth) * Double(outChannels)
            * Double(inChannels / groups * kernelHeight * kernelWidth)
    }

    private var usesWinograd: Bool {
        algorithm != .im2col && kernelHeight == 3 && kernelWidth == 3 && stride == 1 && groups == 1
    }

    private func winogradGeometry(_ g: ConvGeometry) -> WinogradGeometry {
        let tile = algorithm == .winogradF4 ? 4 : 2
        return WinogradGeometry(inHeight: g.inHeight, inWidth: g.inWidth, inChannels: inChannels, outChannels: outChannels,
                                paddingHeight: paddingHeight, paddingWidth: paddingWidth, tileSize: tile)
    }

    /// U from `w`: the weight, or in eval its BatchNorm-folded form.
    private func transformWeight(_ w: UnsafePointer<Float>, tileSize: Int) {
        // The transform's scratch after U, 64-byte aligned.
        let floats = ((tileSize + 2) * (tileSize + 2) * outChannels * inChannels + 15) & ~15
        transformedWeight.reserve(floats + winogradScratchFloats)
        winogradWeightTransform(w, outChannels: outChannels, inChannels: inChannels,
                                tileSize: tileSize, scratch: transformedWeight.pointer + floats, into: transformedWeight.pointer)
        transformedTileSize = tileSize
    }

    private var isDepthwise: Bool { groups > 1 && groups == inChannels && groups == outChannels }
    private var isPointwise: Bool {
        kernelHeight == 1 && kernelWidth == 1 && stride == 1 && paddingHeight == 0 && paddingWidth == 0
    }

    private func geometry(_ x: Tensor) -> ConvGeometry {
        precondition(x.c == inChannels, "Conv2d expects \(inChannels) input channels, got \(x.c) (shape \(x.shape))")
        return ConvGeometry(inHeight: x.h, inWidth: x.w, channels: inChannels, kernelHeight: kernelHeight,
                            kernelWidth: kernelWidth, stride: stride, paddingHeight: paddingHeight,
                            paddingWidth: paddingWidth, groups: groups)
    }

    /// Images per chunk so that the column buffer stays within `maxWorkspaceBytes`.
    private func chunkImages(_ g: ConvGeometry, batch: Int) -> Int {
        let perImage = g.outHeight * g.outWidth * g.columns * MemoryLayout<Float>.stride
        return max(1, min(batch, maxWorkspaceBytes / max(perImage, 1)))
    }

    public func forward(_ x: Tensor, mode: Mode) -> Tensor {
        let started = Profiler.start()
        defer { if started != 0 { Profiler.record(profileCategory, since: started, flops: forwardFlops(x)) } }
        let g = geometry(x)
        let n = x.n, ho = g.outHeight, wo = g.outWidth, o = outChannels
        output.resize(n: n, h: ho, w: wo, c: o)
        input = mode == .train ? x : nil
        // Eval with a BatchNorm after it: folded weight, bias-free GEMMs, and `finish` (bias +
        // the BatchNorm's activation) on each chunk of rows (Note [BatchNorm folding]).
        let folded = batchNormFold?.begin(output, mode: mode)
        let w = folded?.weight ?? store.readOnlyValue(weight)
        let y = output.pointer
        let rows = n * ho * wo
        if let bias, folded == nil {
            broadcastRows(store.readOnlyValue(bias), y, rows: rows, columns: o)
        }
        let beta: Float = bias == nil || folded != nil ? 0 : 1

        if isDepthwise {
            let wt = UnsafePointer(transposeDepthwiseWeight(w))
            let imageIn = g.inHeight * g.inWidth * inChannels, imageRows = ho * wo
            for image in 0..<n {
                let yImage = y + image * imageRows * o
                depthwiseForward(x.pointer + image * imageIn, weight: wt, geometry: g, images: 1, yImage,
                                 accumulate: beta != 0)
                folded?.finish(yImage, rows: imageRows)
            }
            return output
        }
        if usesWinograd {
            let wg = winogradGeometry(g)
            transformWeight(w, tileSize: wg.tileSize)
            transformedWeightServesBackward = mode == .train && folded == nil
            winogradConvolutionForward(x.pointer, images: n, geometry: wg,
                                       transformedWeight: transformedWeight.pointer, workspace: workspace,
                                       maxWorkspaceBytes: maxWorkspaceBytes, accumulate: beta != 0, output: y)
            // One pass over all rows: the chunks are the kernel's (a per-chunk hook would be a
            // closure, and eval allocates nothing).
            folded?.finish(y, rows: rows)
            return output
        }
        let og = o / groups, kg = g.columnsPerGroup, k = g.columns
        if isPointwise {
            // NHWC input is already the [N·H·W, C] column matrix. Folded: blocks of rows whose
            // input and output fit the workspace budget, so `finish` finds them in cache.
            let block = folded == nil ? rows : max(256, maxWorkspaceBytes / ((k + o) * MemoryLayout<Float>.stride))
            var first = 0
            while first < rows {
                let count = min(block, rows - first)
                for gi in 0..<groups {
                    sgemm(transB: true, m: count, n: og, k: kg, a: x.pointer + first * k + gi * kg, lda: k,
                          b: w + gi * og * kg, ldb: kg, beta: beta, c: y + first * o + gi * og, ldc: o)
                }
                folded?.finish(y + first * o, rows: count)
                first += count
            }
            return output
        }
        let chunk = chunkImages(g, batch: n)
        workspace.reserve(chunk * ho * wo * k)
        let columns = workspace.pointer
        let imageIn = g.inHeight * g.inWidth * inChannels, imageRows = ho * wo
        var start = 0
        while start < n {
            let count = min(chunk, n - start)
            im2colForward(x.pointer + start * imageIn, images: count, geometry: g, columns: columns)
            let chunkRows = count * imageRows
            let yChunk = y + start * imageRows * o
            for gi in 0..<groups {
                sgemm(transB: true, m: chunkRows, n: og, k: kg, a: columns + gi * kg, lda: k,
                      b: w + gi * og * kg, ldb: kg, beta: beta, c: yChunk + gi * og, ldc: o)
            }
            folded?.finish(yChunk, rows: chunkRows)
            start += count
        }
        return output
    }

    /// Reads the input and dy, never the output (a residual block may overwrite the output).
    /// dx comes from dy's pool and dy is released (Note [Gradient pool]).
    public func backward(_ dy: Tensor) -> Tensor {
        guard let x = input else { preconditionFailure("Conv2d.backward without a .train forward") }
        let started = Profiler.start()
        defer {
            if started != 0 {
                Profiler.record(profileCategory, since: started, flops: (computesInputGradient ? 2 : 1) * forwardFlops(x))
            }
        }
        let dx = dy.acquireFromSamePool(like: x)
        backward(dy, input: x, into: dx)
        if let bias { store.markGradientReady(bias) }
        store.markGradientReady(weight)
        dy.release()
        return dx
    }

    private func backward(_ dy: Tensor, input x: Tensor, into dInput: Tensor) {
        let g = geometry(x)
        let n = x.n, ho = g.outHeight, wo = g.outWidth, o = outChannels
        precondition(dy.hasShape(n, ho, wo, o), "Conv2d.backward: gradient shape \(dy.shape) ≠ output shape \([n, ho, wo, o])")
        let w = store.readOnlyValue(weight), dw = store.gradient(weight)
        let rows = n * ho * wo
        if let bias {
            sumRowsAccumulate(dy.pointer, rows: rows, columns: o, into: store.gradient(bias), scratch: biasScratch)
        }
        if isDepthwise {
            depthwiseBackward(x.pointer, dy.pointer, geometry: g, images: n, dInput.pointer)
            return
        }
        if usesWinograd {
            let wg = winogradGeometry(g)
            if !transformedWeightServesBackward || transformedTileSize != wg.tileSize { transformWeight(w, tileSize: wg.tileSize) }
            winogradConvolutionBackward(input: x.pointer, outputGradient: dy.pointer, images: n,
                                        geometry: wg, transformedWeight: transformedWeight.pointer,
                                        workspace: workspace, maxWorkspaceBytes: maxWorkspaceBytes, weightGradient: dw,
                                        inputGradient: computesInputGradient ? dInput.pointer : nil)
            return
        }
        let og = o / groups, kg = g.columnsPerGroup, k = g.columns
        if isPointwise {
            for gi in 0..<groups {
                // dW_g[Og, Cg] += dY_gᵀ · X_g ;  dX_g[rows, Cg] = dY_g · W_g
                sgemm(transA: true, m: og, n: kg, k: rows, a: dy.pointer + gi * og, lda: o,
                      b: x.pointer + gi * kg, ldb: k, beta: 1, c: dw + gi * og * kg, ldc: kg)
                guard computesInputGradient else { continue }
                sgemm(m: rows, n: kg, k: og, a: dy.pointer + gi * og, lda: o,
                      b: w + gi * og * kg, ldb: kg, beta: 0, c: dInput.pointer + gi * kg, ldc: k)
            }
            return
        }
        if computesInputGradient { dInput.zero() }  // col2im accumulates overlapping windows
        let chunk = chunkImages(g, batch: n)
        workspace.reserve(chunk * ho * wo * k)
        let columns = workspace.pointer
        let imageIn = g.inHeight * g.inWidth * inChannels, imageRows = ho * wo
        var start = 0
        while start < n {
            let count = min(chunk, n - start)
            let chunkRows = count * imageRows
            let dyChunk = dy.pointer + start * imageRows * o
            im2colForward(x.pointer + start * imageIn, images: count, geometry: g, columns: columns)
            for gi in 0..<groups {
                sgemm(transA: true, m: og, n: kg, k: chunkRows, a: dyChunk + gi * og, lda: o,
                      b: columns + gi * kg, ldb: k, beta: 1, c: dw + gi * og * kg, ldc: kg)
            }
            guard computesInputGradient else {
                start += count
                continue
            }
            // The columns are no longer needed, so the same buffer receives dColumns.
            for gi in 0..<groups {
                sgemm(m: chunkRows, n: kg, k: og, a: dyChunk + gi * og, lda: o,
                      b: w + gi * og * kg, ldb: kg, beta: 0, c: columns + gi * kg, ldc: k)
            }
            im2colBackward(columns, images: count, geometry: g, dInput: dInput.pointer + start * imageIn)
            start += count
        }
    }

    // MARK: Depthwise (G = C = O): a direct loop over contiguous channels.

    /// Copies OHWI [C][Kh][Kw][1] (`src`: the weight or its folded form) into [Kh][Kw][C].
    private func transposeDepthwiseWeight(_ src: UnsafePointer<Float>) -> UnsafeMutablePointer<Float> {
        let c = inChannels, kk = kernelHeight * kernelWidth
        depthwiseWeight.reserve(kk * c)
        let dst = depthwiseWeight.pointer
        for ch in 0..<c { for t in 0..<kk { dst[t &* c &+ ch] = src[ch &* kk &+ t] } }
        return dst
    }

    /// y = (`accumulate`: y, which holds the bias; else 0) + depthwise convolution of x with the
    /// transposed weight `wt` ([Kh][Kw][C]).
    private func depthwiseForward(_ x: UnsafePointer<Float>, weight wt: UnsafePointer<Float>, geometry g: ConvGeometry,
                                  images: Int, _ y: UnsafeMutablePointer<Float>, accumulate: Bool) {
        if !accumulate { y.update(repeating: 0, count: images * g.outHeight * g.outWidth * inChannels) }
        let h = g.inHeight, w = g.inWidth, c = inChannels, kh = kernelHeight, kw = kernelWidth, s = stride
        let ph = paddingHeight, pw = paddingWidth, ho = g.outHeight, wo = g.outWidth
        var out = y
        for n in 0..<images {
            let image = x + n &* h &* w &* c
            for oy in 0..<ho {
                for ox in 0..<wo {
                    for ky in 0..<kh {
                        let iy = oy &* s &- ph &+ ky
                        if iy < 0 || iy >= h { continue }
                        for kx in 0..<kw {
                            let ix = ox &* s &- pw &+ kx
                            if ix < 0 || ix >= w { continue }
                            let src = image + (iy &* w &+ ix) &* c
                            let wr = wt + (ky &* kw &+ kx) &* c
                            for ch in 0..<c { out[ch] += src[ch] * wr[ch] }
                        }
                    }
                    out += c
                }
            }
        }
    }

    private func depthwiseBackward(_ x: UnsafePointer<Float>, _ dy: UnsafePointer<Float>,
                                   geometry g: ConvGeometry, images: Int, _ dx: UnsafeMutablePointer<Float>) {
        let wt = UnsafePointer(transposeDepthwiseWeight(store.readOnlyValue(weight)))
        let h = g.inHeight, w = g.inWidth, c = inChannels, kh = kernelHeight, kw = kernelWidth, s = stride
        let ph = paddingHeight, pw = paddingWidth, ho = g.outHeight, wo = g.outWidth, kk = kh * kw
        depthwiseGradient.reserve(kk * c)
        let dwt = depthwiseGradient.pointer
        dwt.update(repeating: 0, count: kk * c)
        dx.update(repeating: 0, count: images * h * w * c)
        var grad = dy
        for n in 0..<images {
            let image = x + n &* h &* w &* c
            let dImage = dx + n &* h &* w &* c
            for oy in 0..<ho {
                for ox in 0..<wo {
                    for ky in 0..<kh {
                        let iy = oy &* s &- ph &+ ky
                        if iy < 0 || iy >= h { continue }
                        for kx in 0..<kw {
                            let ix = ox &* s &- pw &+ kx
                            if ix < 0 || ix >= w { continue }
                            let offset = (iy &* w &+ ix) &* c
                            let src = image + offset, dsrc = dImage + offset
                            let t = (ky &* kw &+ kx) &* c
                            let wr = wt + t, dwr = dwt + t
                            for ch in 0..<c {
                                dsrc[ch] += grad[ch] * wr[ch]
                                dwr[ch] += grad[ch] * src[ch]
                            }
                        }
                    }
                    grad += c
                }
            }
        }
        let dw = store.gradient(weight)
        for ch in 0..<c { for t in 0..<kk { dw[ch &* kk &+ t] += dwt[t &* c &+ ch] } }
    }
}
