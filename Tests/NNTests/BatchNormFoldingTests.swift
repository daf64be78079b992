import Kernels
import NN
import TestSupport
import XCTest

/// Note [BatchNorm folding]: eval runs every Conv2d + BatchNorm2d pair as one convolution with
/// W' = W·γ/√(σ²+eps), b' = β + (b − μ)·γ/√(σ²+eps). Folded and unfolded eval are equal up to
/// rounding, not bit for bit: W·s is rounded to float before the GEMM sums it where BatchNorm
/// scales the rounded sum, and the sums run in another order. Whole networks' logits are held
/// to 1e-5 of their largest magnitude (measured: ≤ 2e-6), single layers to 1e-5 too.
final class BatchNormFoldingTests: XCTestCase {
    static let tolerance = 1e-5

    // MARK: Whole models

    func testResNet18FoldedEvalMatchesUnfolded() throws {
        try checkModel("resnet18", imageSize: 32, batch: 3)
        try checkModel("resnet18", stem: .small, imageSize: 16, batch: 2)
    }

    func testResNet50FoldedEvalMatchesUnfolded() throws { try checkModel("resnet50", imageSize: 32, batch: 2) }

    func testEfficientNetB0FoldedEvalMatchesUnfolded() throws { try checkModel("efficientnet_b0", imageSize: 32, batch: 2) }

    func testInceptionResNetV2FoldedEvalMatchesUnfolded() throws {
        try checkModel("inception_resnet_v2", imageSize: 75, batch: 1)
    }

    /// Folded vs unfolded eval logits on random weights and non-trivial BatchNorm statistics
    /// and affine parameters; every BatchNorm of the model must have been folded.
    private func checkModel(_ architecture: String, stem: ResNetStem = .imagenet, imageSize: Int, batch: Int,
                            file: StaticString = #filePath, line: UInt = #line) throws {
        let model = try ClassifierModel(architecture: architecture, numClasses: 10, stem: stem, seed: 5)
        randomizeBatchNorms(model.store, seed: 11)
        let x = randomImages(batch: batch, size: imageSize, seed: 3)
        let folds = batchNorms(in: model).compactMap(\.fold)
        XCTAssertFalse(folds.isEmpty, file: file, line: line)
        model.store.foldsBatchNormInEval = false
        let reference = model.forward(x, mode: .eval).array
        XCTAssertTrue(folds.allSatisfy { $0.foldCount == 0 }, "folding off must not fold", file: file, line: line)
        model.store.foldsBatchNormInEval = true
        let folded = model.forward(x, mode: .eval).array
        XCTAssertTrue(folds.allSatisfy { $0.foldCount == 1 }, "every pair folds on the first folded eval",
                      file: file, line: line)
        let relative = relativeDifference(folded, reference)
        print("\(architecture) (\(stem.rawValue) stem) \(imageSize) px: folded vs unfolded eval logits, relative max |diff| \(relative)")
        XCTAssertLessThanOrEqual(relative, Self.tolerance, file: file, line: line)
        // The BatchNorms' statistics really act: the logits differ from the default ones'.
        let plain = try ClassifierModel(architecture: architecture, numClasses: 10, stem: stem, seed: 5)
        XCTAssertGreaterThan(relativeDifference(plain.forward(x, mode: .eval).array, reference), 1e-2,
                             file: file, line: line)
    }

    /// Every BatchNorm2d in every architecture is paired with its convolution, so a model
    /// added without `foldInEval` fails here rather than evaluating slowly.
    func testEveryBatchNormOfEveryArchitectureIsFolded() throws {
        for spec in Architecture.all {
            let model = try ClassifierModel(architecture: spec.name, numClasses: 10, stem: .imagenet, seed: 0)
            let all = batchNorms(in: model)
            let bufferCount = model.store.buffers.filter { $0.name.hasSuffix(".running_mean") }.count
            XCTAssertEqual(all.count, bufferCount, "\(spec.name): the walk must find every BatchNorm")
            let unfolded = all.filter { $0.fold == nil }
            XCTAssertTrue(unfolded.isEmpty, "\(spec.name): \(unfolded.count) of \(all.count) BatchNorms not folded")
        }
    }

    // MARK: Layers: every Conv2d path, conv bias, each activation

    func testConvBatchNormPairsMatchUnfoldedOnEveryPath() throws {
        struct Case {
            var name: String, cin: Int, cout: Int, kernel: (Int, Int), stride = 1, padding = (0, 0), groups = 1
            var bias = false, activation = FusedActivation.none, workspaceBytes = 4 << 20
        }
        let cases = [
            Case(name: "3×3 im2col, conv bias, ReLU", cin: 5, cout: 7, kernel: (3, 3), padding: (1, 1), bias: true,
                 activation: .relu),
            Case(name: "3×3 s2, chunked (one image per chunk)", cin: 6, cout: 9, kernel: (3, 3), stride: 2,
                 padding: (1, 1), activation: .relu, workspaceBytes: 1),
            Case(name: "1×1 pointwise, several row blocks", cin: 8, cout: 12, kernel: (1, 1), activation: .none,
                 workspaceBytes: 1),
            Case(name: "1×1 pointwise with bias, SiLU", cin: 4, cout: 16, kernel: (1, 1), bias: true, activation: .silu),
            Case(name: "depthwise 3×3 s2, SiLU", cin: 8, cout: 8, kernel: (3, 3), stride: 2, padding: (1, 1),
                 groups: 8, activation: .silu),
            Case(name: "depthwise 5×5 with bias", cin: 4, cout: 4, kernel: (5, 5), padding: (2, 2), groups: 4,
                 bias: true),
            Case(name: "grouped 1×7", cin: 6, cout: 4, kernel: (1, 7), padding: (0, 3), groups: 2, activation: .relu),
        ]
        for c in cases {
            let store = ParameterStore()
            let conv = Conv2d(store, name: "conv", inChannels: c.cin, outChannels: c.cout, kernelSize: c.kernel,
                              stride: c.stride, padding: c.padding, groups: c.groups, bias: c.bias)
            conv.maxWorkspaceBytes = c.workspaceBytes
            let bn = BatchNorm2d(store, name: "bn", channels: c.cout, eps: 1e-3, activation: c.activation)
            conv.foldInEval(bn)
            store.finalize(seed: 2)
            randomizeBatchNorms(store, seed: 4)
            if let b = conv.bias { for i in 0..<c.cout { store.value(b)[i] = Float(i) * 0.1 - 0.3 } }
            let x = randomImages(batch: 3, size: 11, channels: c.cin, seed: 9)
            func run() -> [Float] { bn.forward(conv.forward(x, mode: .eval), mode: .eval).array }
            store.foldsBatchNormInEval = false
            let reference = run()
            store.foldsBatchNormInEval = true
            let folded = run()
            let relative = relativeDifference(folded, reference)
            XCTAssertLessThanOrEqual(relative, Self.tolerance, "\(c.name): relative max |diff| \(relative)")
            XCTAssertEqual(conv.batchNormFold?.foldCount, 1, c.name)
        }
    }

    /// The BatchNorm skips its pass only for its convolution's finished output: given any other
    /// tensor in eval, it normalises as usual.
    func testBatchNormNormalisesATensorItsConvolutionDidNotProduce() {
        let store = ParameterStore()
        let conv = Conv2d(store, name: "conv", inChannels: 3, outChannels: 4, kernelSize: 1)
        let bn = BatchNorm2d(store, name: "bn", channels: 4)
        conv.foldInEval(bn)
        store.finalize(seed: 1)
        randomizeBatchNorms(store, seed: 2)
        let x = randomImages(batch: 2, size: 3, channels: 3, seed: 1)
        let other = randomImages(batch: 2, size: 3, channels: 4, seed: 2)
        _ = conv.forward(x, mode: .eval)
        let viaFoldedPair = bn.forward(other, mode: .eval).array
        store.foldsBatchNormInEval = false
        let plain = bn.forward(other, mode: .eval).array
        XCTAssertEqual(viaFoldedPair, plain)
    }

    // MARK: Staleness: every writer of parameters or running statistics refolds

    func testCachedFoldIsReusedUntilSomethingChanges() throws {
        let model = try ClassifierModel(architecture: "resnet18", numClasses: 10, stem: .imagenet, seed: 1)
        let folds = batchNorms(in: model).compactMap(\.fold)
        let x = randomImages(batch: 2, size: 32, seed: 1)
        for _ in 0..<3 { _ = model.forward(x, mode: .eval) }
        XCTAssertTrue(folds.allSatisfy { $0.foldCount == 1 }, "three evals, one fold")
        _ = model.store.value(model.store.parameters[0])  // a write permit (Note [Parameter version])
        _ = model.forward(x, mode: .eval)
        XCTAssertTrue(folds.allSatisfy { $0.foldCount == 2 })
    }

    func testEvalAfterOptimizerStepUsesNewWeights() throws {
        try checkStaleness("SGD step") { model, x in
            // Gradients from an eval-free source, so only the step changes anything.
            let grads = model.store.gradients
            var rng = SplitMix64(seed: 8)
            for i in 0..<model.store.parameterCount { grads[i] = Float(rng.nextNormal()) }
            SGD(store: model.store, momentum: 0.9, weightDecay: 1e-4).step(learningRate: 0.05, gradientScale: 1, range: nil)
        }
    }

    func testEvalAfterTrainForwardUsesNewRunningStatistics() throws {
        try checkStaleness("train forward") { model, x in _ = model.forward(x, mode: .train) }
    }

    func testEvalAfterWeightLoadUsesLoadedWeights() throws {
        let source = try ClassifierModel(architecture: "resnet18", numClasses: 10, stem: .imagenet, seed: 99)
        randomizeBatchNorms(source.store, seed: 98)
        let x = randomImages(batch: 2, size: 32, seed: 4)
        let expected = source.forward(x, mode: .eval).array
        let records = Dictionary(uniqueKeysWithValues: StateDict.records(of: source.store).map { ($0.name, $0) })
        try checkStaleness("weights load") { model, _ in try StateDict.load(records, into: model.store, source: "test") }
        let model = try ClassifierModel(architecture: "resnet18", numClasses: 10, stem: .imagenet, seed: 1)
        _ = model.forward(x, mode: .eval)
        try StateDict.load(records, into: model.store, source: "test")
        XCTAssertEqual(model.forward(x, mode: .eval).array, expected, "loaded model evaluates as its source")
    }

    func testEvalAfterDirectWritesUsesThem() throws {
        try checkStaleness("write to a running variance") { model, _ in
            let b = model.store.buffer(named: "layer2.0.bn1.running_var")!
            for i in 0..<b.count { model.store.floatBuffer(b)[i] *= 4 }
        }
        try checkStaleness("write to a convolution weight") { model, _ in
            let p = model.store.parameter(named: "layer3.1.conv2.weight")!
            model.store.value(p)[17] += 0.5
        }
        try checkStaleness("bulk copy into the flat buffers, as ModelEMA and broadcasts do") { model, _ in
            let values = model.store.values
            for i in 0..<model.store.parameterCount { values[i] *= 0.99 }
            let buffers = model.store.floatBuffers
            for i in 0..<model.store.floatBufferCount { buffers[i] *= 1.01 }
        }
    }

    /// eval → `change` → eval: the second eval must equal an unfolded eval of the changed
    /// model, and differ from the first (the change matters).
    private func checkStaleness(_ what: String, file: StaticString = #filePath, line: UInt = #line,
                                _ change: (ClassifierModel, Tensor) throws -> Void) throws {
        let model = try ClassifierModel(architecture: "resnet18", numClasses: 10, stem: .imagenet, seed: 1)
        randomizeBatchNorms(model.store, seed: 2)
        let x = randomImages(batch: 2, size: 32, seed: 4)
        let before = model.forward(x, mode: .eval).array
        try change(model, x)
        let after = model.forward(x, mode: .eval).array
        model.store.foldsBatchNormInEval = false
        let reference = model.forward(x, mode: .eval).array
        model.store.foldsBatchNormInEval = true
        XCTAssertGreaterThan(relativeDifference(before, reference), 1e-4, "\(what) changed nothing", file: file, line: line)
        let relative = relativeDifference(after, reference)
        XCTAssertLessThanOrEqual(relative, Self.tolerance, "after \(what): eval used a stale fold (relative \(relative))",
                                 file: file, line: line)
    }

    // MARK: Training is untouched

    /// A model that evaluates with folding (and so holds folded weights) trains bit for bit as
    /// one that never folded: logits, gradients and running statistics.
    func testTrainingIsBitIdenticalWithFolding() throws {
        for architecture in ["resnet18", "efficientnet_b0"] {
            func trainedState(folding: Bool) throws -> [[Float]] {
                let model = try ClassifierModel(architecture: architecture, numClasses: 10, stem: .imagenet, seed: 3)
                model.store.foldsBatchNormInEval = folding
                let x = randomImages(batch: 2, size: 32, seed: 6)
                _ = model.forward(x, mode: .eval)
                model.store.zeroGradients()
                let logits = model.forward(x, mode: .train).array
                let loss = SoftmaxCrossEntropy()
                let labels: [Int32] = [1, 7]
                let t = Tensor(n: 2, h: 1, w: 1, c: 10)
                t.pointer.update(from: logits, count: logits.count)
                _ = labels.withUnsafeBufferPointer { loss.forward(logits: t, labels: $0.baseAddress!) }
                model.backward(loss.backward())
                let store = model.store
                return [logits, Array(UnsafeBufferPointer(start: store.gradients, count: store.parameterCount)),
                        Array(UnsafeBufferPointer(start: store.floatBuffers, count: store.floatBufferCount)),
                        model.forward(x, mode: .train).array]
            }
            XCTAssertEqual(try trainedState(folding: true), try trainedState(folding: false), architecture)
        }
    }
}

// MARK: Helpers

/// γ ∈ [0.5, 1.5], β ∈ [−0.3, 0.3], μ ∈ [−0.3, 0.3], σ² ∈ [0.4, 2.5] for every BatchNorm.
func randomizeBatchNorms(_ store: ParameterStore, seed: UInt64) {
    var rng = SplitMix64(seed: seed)
    func uniform(_ low: Double, _ high: Double) -> Float { Float(low + (high - low) * rng.nextDouble()) }
    for b in store.buffers where b.kind == .float32 {
        let prefix = String(b.name.dropLast(b.name.hasSuffix(".running_mean") ? 13 : 12))
        let values = store.floatBuffer(b)
        let isMean = b.name.hasSuffix(".running_mean")
        for i in 0..<b.count { values[i] = isMean ? uniform(-0.3, 0.3) : uniform(0.4, 2.5) }
        guard isMean, let gamma = store.parameter(named: prefix + ".weight"),
              let beta = store.parameter(named: prefix + ".bias") else { continue }
        for i in 0..<gamma.count { store.value(gamma)[i] = uniform(0.5, 1.5) }
        for i in 0..<beta.count { store.value(beta)[i] = uniform(-0.3, 0.3) }
    }
}

func randomImages(batch: Int, size: Int, channels: Int = 3, seed: UInt64) -> Tensor {
    let x = Tensor(n: batch, h: size, w: size, c: channels)
    var rng = SplitMix64(seed: seed)
    for i in 0..<x.count { x.pointer[i] = Float(rng.nextNormal()) }
    return x
}

/// max |a − b| over max |b|.
func relativeDifference(_ a: [Float], _ b: [Float]) -> Double {
    precondition(a.count == b.count)
    let scale = Double(b.map { abs($0) }.max() ?? 0)
    let diff = zip(a, b).map { abs(Double($0) - Double($1)) }.max() ?? 0
    return diff / max(scale, 1e-30)
}

/// Every BatchNorm2d reachable from the model's layers (stored properties, arrays and
/// optionals, found by reflection, so blocks need not expose their children).
func batchNorms(in model: ClassifierModel) -> [BatchNorm2d] {
    var seen = Set<ObjectIdentifier>()
    var found: [BatchNorm2d] = []
    func visit(_ value: Any) {
        if let bn = value as? BatchNorm2d {
            if seen.insert(ObjectIdentifier(bn)).inserted { found.append(bn) }
            return
        }
        if value is Tensor || value is ParameterStore || value is FloatStorage { return }
        let mirror = Mirror(reflecting: value)
        if mirror.displayStyle == .class {
            guard seen.insert(ObjectIdentifier(value as AnyObject)).inserted else { return }
        }
        for child in mirror.children { visit(child.value) }
        var superclass = mirror.superclassMirror
        while let s = superclass { for child in s.children { visit(child.value) }; superclass = s.superclassMirror }
    }
    visit(model.backbone)
    visit(model.headNetwork)
    return found
}
