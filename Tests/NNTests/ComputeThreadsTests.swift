import Kernels
import NN
import XCTest

/// Note [Compute threads]: what our own thread pool splits gives the same results as one
/// thread — bit for bit where the split is by channel or by independent tiles, within float
/// rounding where OpenBLAS multiplies blocks of a product — for layers and whole models.
final class ComputeThreadsTests: XCTestCase {
    override func tearDown() {
        setComputeThreads(1)  // the pool is process-wide: leave the next test one thread
        super.tearDown()
    }

    func testParallelForRunsEveryPartOnceAndSmallWorkOnTheCaller() {
        setComputeThreads(3)
        for work in [ComputeThreads.minimumWork - 1, ComputeThreads.minimumWork, 10 * ComputeThreads.minimumWork] {
            var runs = [Int](repeating: 0, count: 3)
            var partCounts = [Int](repeating: 0, count: 3)
            runs.withUnsafeMutableBufferPointer { runs in
                partCounts.withUnsafeMutableBufferPointer { partCounts in
                    for _ in 0..<200 {
                        ComputeThreads.shared.parallelFor(work: work) { part, parts in
                            runs[part] += 1  // each part writes only its own slot
                            partCounts[part] = parts
                        }
                    }
                }
            }
            if work < ComputeThreads.minimumWork {
                XCTAssertEqual(runs, [200, 0, 0], "work \(work)")
                XCTAssertEqual(partCounts[0], 1)
            } else {
                XCTAssertEqual(runs, [200, 200, 200], "work \(work)")
                XCTAssertEqual(partCounts, [3, 3, 3])
            }
        }
    }

    func testSplitRangeCoversEveryIndexOnceInOrder() {
        for count in [0, 1, 5, 16, 17, 100] {
            for parts in 1...4 {
                let ranges = (0..<parts).map { splitRange(count, part: $0, parts: parts) }
                XCTAssertEqual(ranges.flatMap { Array($0) }, Array(0..<count), "\(count) in \(parts)")
                XCTAssertLessThanOrEqual((ranges.map(\.count).max() ?? 0) - (ranges.map(\.count).min() ?? 0), 1)
            }
        }
    }

    /// Every transpose, rows split (m ≥ n) and columns split (n > m), sizes off the 16-wide
    /// blocks, beta 0 and 1, leading dimensions wider than the matrices.
    func testThreadedGEMMMatchesOneThread() {
        var rng = SplitMix64(seed: 5)
        for (m, n, k) in [(200, 40, 70), (33, 300, 50), (1000, 64, 64), (64, 576, 1000), (17, 33, 5000)] {
            for transA in [false, true] {
                for transB in [false, true] {
                    for beta: Float in [0, 1] {
                        let lda = (transA ? m : k) + 3, ldb = (transB ? k : n) + 5, ldc = n + 2
                        let a = (0..<((transA ? k : m) * lda)).map { _ in Float(rng.nextNormal()) }
                        let b = (0..<((transB ? n : k) * ldb)).map { _ in Float(rng.nextNormal()) }
                        let c0 = (0..<(m * ldc)).map { _ in Float(rng.nextNormal()) }
                        func product(threads: Int) -> [Float] {
                            setComputeThreads(threads)
                            var c = c0
                            c.withUnsafeMutableBufferPointer { c in
                                sgemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: 0.5, a: a, lda: lda,
                                      b: b, ldb: ldb, beta: beta, c: c.baseAddress!, ldc: ldc)
                            }
                            return c
                        }
                        let one = product(threads: 1), two = product(threads: 2), three = product(threads: 3)
                        let what = "m \(m) n \(n) k \(k) transA \(transA) transB \(transB) beta \(beta)"
                        // Blocks of a product may take another OpenBLAS path (small-matrix kernels), so the
                        // sums round differently: within a few ulps per term of the k-long dot product.
                        let tolerance = 1e-6 * max(1, Double(k) / 1000)
                        XCTAssertLessThanOrEqual(relativeDifference(two, one), tolerance, what)
                        XCTAssertLessThanOrEqual(relativeDifference(three, one), tolerance, what)
                        // The padding between rows is never written.
                        for row in 0..<m { XCTAssertEqual(two[row * ldc + n], c0[row * ldc + n], what) }
                    }
                }
            }
        }
    }

    /// BatchNorm splits by channel: forward and backward, train and eval, every fused
    /// activation, the same bits at 1, 2 and 3 threads (channels off the 16-wide blocks too).
    func testBatchNormIsBitIdenticalOnMoreThreads() {
        for channels in [64, 72, 40] {
            for activation in [FusedActivation.none, .relu, .silu] {
                for mode in [Mode.train, .eval] {
                    func run(threads: Int) -> [[Float]] {
                        setComputeThreads(threads)
                        let store = ParameterStore()
                        let bn = BatchNorm2d(store, name: "bn", channels: channels, activation: activation)
                        store.finalize(seed: 0)
                        randomizeBatchNorms(store, seed: 4)
                        let x = randomImages(batch: 4, size: 13, channels: channels, seed: 7)
                        let y = bn.forward(x, mode: mode).array
                        let dy = randomImages(batch: 4, size: 13, channels: channels, seed: 8)
                        let dx = bn.backward(dy).array
                        let grads = Array(UnsafeBufferPointer(start: store.gradients, count: store.parameterCount))
                        let running = Array(UnsafeBufferPointer(start: store.floatBuffer(bn.runningVar), count: channels))
                        return [y, dx, grads, running]
                    }
                    let one = run(threads: 1)
                    XCTAssertEqual(run(threads: 2), one, "\(channels) channels, \(activation), \(mode)")
                    XCTAssertEqual(run(threads: 3), one, "\(channels) channels, \(activation), \(mode)")
                }
            }
        }
    }

    /// Winograd's transforms split by tile (forward) and by image (the input gradient, whose
    /// patches overlap); its GEMMs by block. A 3×3 convolution's output and both gradients
    /// agree with one thread's to float rounding, for F(2×2) and F(4×4), odd batch sizes too.
    func testWinogradConvolutionMatchesOneThread() {
        for algorithm in [ConvolutionAlgorithm.winogradF2, .winogradF4] {
            for batch in [1, 3] {
                func run(threads: Int) -> [[Float]] {
                    setComputeThreads(threads)
                    let store = ParameterStore()
                    let conv = Conv2d(store, name: "conv", inChannels: 40, outChannels: 48, kernelSize: 3, padding: 1)
                    conv.algorithm = algorithm
                    store.finalize(seed: 3)
                    let x = randomImages(batch: batch, size: 21, channels: 40, seed: 9)
                    let y = conv.forward(x, mode: .train).array
                    let dx = conv.backward(randomImages(batch: batch, size: 21, channels: 48, seed: 10)).array
                    return [y, dx, Array(UnsafeBufferPointer(start: store.gradients, count: store.parameterCount))]
                }
                let one = run(threads: 1), two = run(threads: 2)
                for (name, i) in [("output", 0), ("input gradient", 1), ("weight gradient", 2)] {
                    XCTAssertLessThanOrEqual(relativeDifference(two[i], one[i]), 1e-6, "\(algorithm) batch \(batch) \(name)")
                }
            }
        }
    }

    /// A whole training step's loss gradient flows through every split kernel: logits and all
    /// parameter gradients of ResNet-18 and EfficientNet-B0 agree with one thread's.
    func testModelStepMatchesOneThread() throws {
        for architecture in ["resnet18", "efficientnet_b0"] {
            func run(threads: Int) throws -> ([Float], [Float]) {
                setComputeThreads(threads)
                let model = try ClassifierModel(architecture: architecture, numClasses: 10, stem: .imagenet, seed: 1)
                let x = randomImages(batch: 4, size: 48, seed: 2)
                let logits = model.forward(x, mode: .train)
                let loss = SoftmaxCrossEntropy()
                let labels: [Int32] = [1, 2, 3, 4]
                _ = labels.withUnsafeBufferPointer { loss.forward(logits: logits, labels: $0.baseAddress!) }
                let logitValues = logits.array
                model.store.zeroGradients()
                model.backward(loss.backward())
                return (logitValues, Array(UnsafeBufferPointer(start: model.store.gradients, count: model.store.parameterCount)))
            }
            let one = try run(threads: 1), two = try run(threads: 2)
            XCTAssertLessThanOrEqual(relativeDifference(two.0, one.0), 1e-5, "\(architecture) logits")
            XCTAssertLessThanOrEqual(relativeDifference(two.1, one.1), 1e-5, "\(architecture) gradients")
        }
    }
}
