import XCTest
import Kernels
import NN

/// A convolution configuration used by both the forward-reference and gradient tests.
struct ConvCase: CustomStringConvertible {
    var n = 2, h = 5, w = 5, cin = 3, cout = 4, k = 3, stride = 1, padding = 1, groups = 1, bias = false
    /// Forces chunking when set (bytes of im2col workspace).
    var workspaceBytes: Int? = nil
    /// A rectangular kernel and padding (height, width); nil: square `k` and `padding`.
    var kernel: (Int, Int)? = nil
    var pad: (Int, Int)? = nil

    var kh: Int { kernel?.0 ?? k }
    var kw: Int { kernel?.1 ?? k }
    var ph: Int { pad?.0 ?? padding }
    var pw: Int { pad?.1 ?? padding }

    var description: String {
        "N\(n) \(h)×\(w) \(cin)→\(cout) k\(kh)×\(kw) s\(stride) p\(ph),\(pw) g\(groups)\(bias ? " bias" : "")" +
            (workspaceBytes.map { " workspace \($0)B" } ?? "")
    }

    func make(seed: UInt64 = 1) -> (Conv2d, ParameterStore) {
        let store = ParameterStore()
        let conv = kernel == nil && pad == nil
            ? Conv2d(store, name: "conv", inChannels: cin, outChannels: cout, kernelSize: k,
                     stride: stride, padding: padding, groups: groups, bias: bias)
            : Conv2d(store, name: "conv", inChannels: cin, outChannels: cout, kernelSize: (kh, kw),
                     stride: stride, padding: (ph, pw), groups: groups, bias: bias)
        store.finalize(seed: seed)
        if let workspaceBytes { conv.maxWorkspaceBytes = workspaceBytes }
        if bias {
            // Non-zero, distinct biases so a misplaced bias shows up.
            var rng = SplitMix64(seed: seed &+ 17)
            let b = store.value(conv.bias!)
            for i in 0..<cout { b[i] = rng.nextUniform() * 2 - 1 }
        }
        return (conv, store)
    }

    var outH: Int { (h + 2 * ph - kh) / stride + 1 }
    var outW: Int { (w + 2 * pw - kw) / stride + 1 }
}

let convCases: [ConvCase] = [
    ConvCase(),                                                             // 3×3 s1 p1
    ConvCase(bias: true),
    ConvCase(h: 6, w: 7, k: 3, stride: 2, padding: 1),                      // 3×3 s2 p1
    ConvCase(n: 1, h: 9, w: 9, cin: 2, cout: 3, k: 7, stride: 2, padding: 3), // 7×7 s2 p3 (stem)
    ConvCase(h: 4, w: 4, cin: 5, cout: 6, k: 1, stride: 1, padding: 0),     // 1×1 fast path
    ConvCase(h: 4, w: 4, cin: 5, cout: 6, k: 1, stride: 1, padding: 0, bias: true),
    ConvCase(h: 4, w: 4, cin: 4, cout: 6, k: 1, stride: 1, padding: 0, groups: 2), // grouped fast path
    ConvCase(h: 5, w: 5, cin: 4, cout: 3, k: 1, stride: 2, padding: 0),     // 1×1 s2 (downsample)
    ConvCase(cin: 4, cout: 6, groups: 2),                                   // groups 2
    ConvCase(cin: 4, cout: 6, stride: 2, groups: 2, bias: true),
    ConvCase(cin: 4, cout: 4, groups: 4),                                   // depthwise
    ConvCase(h: 6, w: 5, cin: 4, cout: 4, stride: 2, groups: 4, bias: true),
    ConvCase(cin: 2, cout: 4, groups: 2),                                   // channel multiplier 2 (GEMM path)
    ConvCase(n: 5, h: 4, w: 4, cin: 2, cout: 3, workspaceBytes: 2 * 16 * 18 * 4), // chunks 2, 2, 1
    ConvCase(n: 3, h: 4, w: 4, cin: 2, cout: 3, stride: 2, workspaceBytes: 1), // one image per chunk
    // Rectangular kernels and padding (Inception-ResNet's factorised convolutions).
    ConvCase(h: 5, w: 9, cin: 3, cout: 4, kernel: (1, 7), pad: (0, 3)),     // 1×7, padding (0, 3)
    ConvCase(h: 9, w: 5, cin: 3, cout: 4, bias: true, kernel: (7, 1), pad: (3, 0)), // 7×1, padding (3, 0)
    ConvCase(h: 4, w: 6, cin: 4, cout: 3, kernel: (1, 3), pad: (0, 1)),     // 1×3
    ConvCase(h: 6, w: 4, cin: 4, cout: 3, kernel: (3, 1), pad: (1, 0)),     // 3×1
    ConvCase(h: 7, w: 8, cin: 2, cout: 3, stride: 2, kernel: (3, 2), pad: (1, 0)), // stride 2, unpadded width
    ConvCase(h: 6, w: 6, cin: 2, cout: 3, kernel: (2, 3), pad: (1, 2)),     // padding beyond half the kernel
    ConvCase(h: 5, w: 7, cin: 4, cout: 6, groups: 2, kernel: (1, 3), pad: (0, 1)), // grouped rectangular
    ConvCase(h: 5, w: 7, cin: 4, cout: 4, stride: 2, groups: 4, bias: true, kernel: (3, 1), pad: (1, 0)), // depthwise
    ConvCase(n: 3, h: 4, w: 7, cin: 2, cout: 3, workspaceBytes: 1, kernel: (1, 7), pad: (0, 3)), // chunked
]

/// Direct 7-loop convolution in Double; weight in OHWI [O][Kh][Kw][Cg], PyTorch semantics.
func referenceConv(_ x: Tensor, weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?, _ c: ConvCase) -> [Double] {
    let cg = c.cin / c.groups, og = c.cout / c.groups
    var y = [Double](repeating: 0, count: c.n * c.outH * c.outW * c.cout)
    for n in 0..<c.n {
        for oy in 0..<c.outH {
            for ox in 0..<c.outW {
                for o in 0..<c.cout {
                    let g = o / og
                    var sum = bias.map { Double($0[o]) } ?? 0
                    for ky in 0..<c.kh {
                        for kx in 0..<c.kw {
                            let iy = oy * c.stride - c.ph + ky, ix = ox * c.stride - c.pw + kx
                            guard iy >= 0, iy < c.h, ix >= 0, ix < c.w else { continue }
                            for ci in 0..<cg {
                                let xv = x.pointer[((n * c.h + iy) * c.w + ix) * c.cin + g * cg + ci]
                                let wv = weight[((o * c.kh + ky) * c.kw + kx) * cg + ci]
                                sum += Double(xv) * Double(wv)
                            }
                        }
                    }
                    y[((n * c.outH + oy) * c.outW + ox) * c.cout + o] = sum
                }
            }
        }
    }
    return y
}

final class Conv2dTests: XCTestCase {
    func testRegistersPyTorchNamesShapesAndInit() {
        let store = ParameterStore()
        let conv = Conv2d(store, name: "layer1.0.conv1", inChannels: 8, outChannels: 16, kernelSize: 3,
                          padding: 1, groups: 2, bias: true)
        XCTAssertEqual(conv.weight.name, "layer1.0.conv1.weight")
        XCTAssertEqual(conv.weight.shape, [16, 4, 3, 3])
        XCTAssertEqual(conv.weight.layout, .convOHWI)
        XCTAssertTrue(conv.weight.isWeight)
        XCTAssertEqual(conv.bias?.name, "layer1.0.conv1.bias")
        XCTAssertEqual(conv.bias?.shape, [16])
        XCTAssertEqual(conv.bias?.isWeight, false)
        guard case .normal(let std) = conv.weight.initializer else { return XCTFail("weight init") }
        XCTAssertEqual(std, (2.0 / Double(16 * 9)).squareRoot(), accuracy: 1e-12)
        guard case .uniform(let bound)? = conv.bias?.initializer else { return XCTFail("bias init") }
        XCTAssertEqual(bound, 1 / Double(4 * 9).squareRoot(), accuracy: 1e-12)
        XCTAssertNil(Conv2d(store, name: "b", inChannels: 1, outChannels: 1, kernelSize: 1).bias)
    }

    /// A (1, 7) kernel registers PyTorch's OIHW shape [O, Cg, 1, 7]; `.pytorchDefault` draws
    /// U(±1/√fan_in) as nn.Conv2d.reset_parameters does.
    func testRectangularKernelShapeAndDefaultInit() {
        let store = ParameterStore()
        let conv = Conv2d(store, name: "repeat_1.0.branch1.1.conv", inChannels: 128, outChannels: 160,
                          kernelSize: (1, 7), padding: (0, 3), weightInit: .pytorchDefault)
        XCTAssertEqual(conv.weight.shape, [160, 128, 1, 7])
        XCTAssertEqual(conv.kernelHeight, 1)
        XCTAssertEqual(conv.kernelWidth, 7)
        XCTAssertEqual(conv.paddingWidth, 3)
        guard case .uniform(let bound) = conv.weight.initializer else { return XCTFail("weight init") }
        XCTAssertEqual(bound, 1 / Double(128 * 7).squareRoot(), accuracy: 1e-12)
        store.finalize(seed: 1)
        let y = conv.forward(Tensor(n: 1, h: 3, w: 5, c: 128), mode: .eval)
        XCTAssertEqual(y.shape, [1, 3, 5, 160])
    }

    func testForwardMatchesDirectConvolution() {
        for (i, c) in convCases.enumerated() {
            let (conv, store) = c.make()
            let x = randomTensor(n: c.n, h: c.h, w: c.w, c: c.cin, seed: UInt64(i) + 100)
            for mode in [Mode.train, .eval] {
                let y = conv.forward(x, mode: mode)
                XCTAssertEqual(y.shape, [c.n, c.outH, c.outW, c.cout], "\(c)")
                let expected = referenceConv(x, weight: store.value(conv.weight),
                                             bias: conv.bias.map { UnsafePointer(store.value($0)) }, c)
                let diff = maxAbsDifference(y.array, expected)
                XCTAssertLessThan(diff, 1e-5, "\(c) \(mode): max |Δ| = \(diff)")
            }
        }
    }

    func testGradients() {
        for (i, c) in convCases.enumerated() {
            let (conv, store) = c.make(seed: UInt64(i) + 7)
            let x = randomTensor(n: c.n, h: c.h, w: c.w, c: c.cin, seed: UInt64(i) + 200)
            // Convolution is linear in x and W, so a large step is exact up to rounding.
            let results = GradientChecker(step: 0.1, tolerance: 2e-3).check(conv, store: store, input: x)
            assertGradients(results, "Conv2d \(c)")
        }
    }

    /// Chunked and unchunked runs must agree exactly in forward, and parameter gradients
    /// must be accumulated (not overwritten) across chunks and calls.
    func testChunkingAndAccumulation() {
        var base = ConvCase(n: 5, h: 4, w: 4, cin: 2, cout: 3, bias: true)
        let (whole, wholeStore) = base.make()
        base.workspaceBytes = 1
        let (chunked, chunkedStore) = base.make()
        let x = randomTensor(n: 5, h: 4, w: 4, c: 2, seed: 5)
        let dy = randomTensor(n: 5, h: 4, w: 4, c: 3, seed: 6)
        let y1 = whole.forward(x, mode: .train).array, y2 = chunked.forward(x, mode: .train).array
        XCTAssertEqual(maxAbsDifference(y1, y2.map(Double.init)), 0, accuracy: 1e-6)
        let dx1 = whole.backward(dy).array, dx2 = chunked.backward(dy).array
        XCTAssertEqual(maxAbsDifference(dx1, dx2.map(Double.init)), 0, accuracy: 1e-6)
        let g1 = Array(UnsafeBufferPointer(start: wholeStore.gradients, count: wholeStore.parameterCount))
        let g2 = Array(UnsafeBufferPointer(start: chunkedStore.gradients, count: chunkedStore.parameterCount))
        XCTAssertEqual(maxAbsDifference(g1, g2.map(Double.init)), 0, accuracy: 1e-5)
        // A second backward adds the same gradient again.
        _ = chunked.forward(x, mode: .train)
        _ = chunked.backward(dy)
        let twice = Array(UnsafeBufferPointer(start: chunkedStore.gradients, count: chunkedStore.parameterCount))
        XCTAssertEqual(maxAbsDifference(twice, g2.map { 2 * Double($0) }), 0, accuracy: 1e-5)
    }

    /// The output and the workspace are sized on first use and reused afterwards, including
    /// for a smaller last batch; the input gradient comes from the gradient pool, which after
    /// the first step hands out the tensors it already has (no allocation in a steady state).
    func testBuffersAreReusedAcrossSteps() {
        let (conv, _) = ConvCase(n: 4, h: 6, w: 6, cin: 3, cout: 4, workspaceBytes: 2 * 36 * 27 * 4).make()
        let pool = TensorPool()
        let x = randomTensor(n: 4, h: 6, w: 6, c: 3, seed: 8)
        let y = conv.forward(x, mode: .train)
        conv.backward(pooledCopy(y, in: pool)).release()
        let outPointer = y.pointer
        let workspacePointer = conv.workspace.pointer, capacity = conv.workspace.capacity
        let (tensors, bytes) = (pool.tensorCount, pool.reservedBytes)
        XCTAssertLessThanOrEqual(capacity * 4, conv.maxWorkspaceBytes)
        let small = randomTensor(n: 3, h: 6, w: 6, c: 3, seed: 9)
        for input in [x, small, x] {
            let y2 = conv.forward(input, mode: .train)
            conv.backward(pooledCopy(y2, in: pool)).release()
            XCTAssertEqual(y2.pointer, outPointer)
            XCTAssertEqual(conv.workspace.pointer, workspacePointer)
            XCTAssertEqual(conv.workspace.capacity, capacity)
            XCTAssertEqual(pool.liveCount, 0)
            XCTAssertEqual(pool.tensorCount, tensors)
            XCTAssertEqual(pool.reservedBytes, bytes)
        }
    }

    /// Two convolutions sharing one workspace (Note [Shared workspace]) inside a Sequential.
    func testSharedWorkspaceInSequential() {
        let store = ParameterStore()
        let shared = FloatStorage()
        let a = Conv2d(store, name: "a", inChannels: 2, outChannels: 3, kernelSize: 3, padding: 1, workspace: shared)
        let b = Conv2d(store, name: "b", inChannels: 3, outChannels: 2, kernelSize: 3, stride: 2, padding: 1, bias: true)
        b.workspace = shared
        store.finalize(seed: 3)
        XCTAssertTrue(a.workspace === b.workspace)
        let model = Sequential([a, b])
        let x = randomTensor(n: 2, h: 5, w: 5, c: 2, seed: 10)
        assertGradients(GradientChecker(step: 0.05, tolerance: 2e-3).check(model, store: store, input: x),
                        "Sequential(conv, conv) with a shared workspace")
    }
}

/// The network's first convolution skips the input gradient nobody reads; the parameter
/// gradients stay bit for bit what they were.
final class FirstConvolutionInputGradientTests: XCTestCase {
    private func firstConvolution(_ model: ClassifierModel) -> Conv2d? {
        var first: any Layer = model.backbone
        while let composite = first as? any CompositeLayer, let head = composite.sublayers.first { first = head }
        return first as? Conv2d
    }

    func testParameterGradientsAreUnchanged() throws {
        for (architecture, size) in [("resnet18", 32), ("efficientnet_b0", 32), ("inception_resnet_v2", 75)] {
            let skipping = try ClassifierModel(architecture: architecture, numClasses: 3, stem: .imagenet, seed: 4)
            let computing = try ClassifierModel(architecture: architecture, numClasses: 3, stem: .imagenet, seed: 4)
            let first = try XCTUnwrap(firstConvolution(skipping), architecture)
            XCTAssertFalse(first.computesInputGradient, architecture)
            firstConvolution(computing)!.computesInputGradient = true
            let images = Tensor(n: 2, h: size, w: size, c: 3)
            var rng = SplitMix64(seed: 8)
            for i in 0..<images.count { images.pointer[i] = Float(rng.nextNormal()) }
            for model in [skipping, computing] {
                let loss = SoftmaxCrossEntropy()
                let logits = model.forward(images, mode: .train)
                _ = [Int32(0), 2].withUnsafeBufferPointer { loss.forward(logits: logits, labels: $0.baseAddress!) }
                model.store.zeroGradients()
                model.backward(loss.backward())
            }
            let n = skipping.store.parameterCount
            XCTAssertTrue(zip(UnsafeBufferPointer(start: skipping.store.gradients, count: n),
                              UnsafeBufferPointer(start: computing.store.gradients, count: n)).allSatisfy { $0 == $1 },
                          "\(architecture): parameter gradients differ")
        }
    }
}
