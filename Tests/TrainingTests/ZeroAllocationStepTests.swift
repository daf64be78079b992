import CAllocationCounter
import DataParallel
import Foundation
import Kernels
import NN
import Training
import XCTest

/// A steady-state training step — forward, loss, backward (with the overlapped all-reduce's
/// bookkeeping), optimizer — allocates nothing on the heap: every buffer is sized in the
/// first steps and reused (Note [Gradient pool]). Counted by the test process's own
/// allocator (Tests/CAllocationCounter), on every thread. Set
/// SWIFT_DP_TRAIN_TRACE_ALLOCATIONS=1 to print a backtrace of each allocation that remains.
/// With one compute thread; with two (our own pool splits the work, Note [Compute threads];
/// OpenBLAS stays on one thread, whose own thread hand-off would allocate), the only
/// allocations are the pool's one per split call.
final class ZeroAllocationStepTests: XCTestCase {
    private func allocationsPerStep(_ architecture: String, imageSize: Int, batch: Int,
                                    optimizerKind: String = "sgd", threads: Int = 1) throws -> (allocations: Int, splits: Int) {
        setComputeThreads(threads)
        defer { setComputeThreads(1) }
        let model = try ClassifierModel(architecture: architecture, numClasses: 10, stem: .imagenet, seed: 1)
        let optimizer: any Optimizer = optimizerKind == "adamw"
            ? Adam(store: model.store, weightDecay: 0.05, decoupledWeightDecay: true)
            : SGD(store: model.store, momentum: 0.9, weightDecay: 1e-4)
        let loss = SoftmaxCrossEntropy(labelSmoothing: 0.1)
        let images = Tensor(n: batch, h: imageSize, w: imageSize, c: 3)
        var rng = SplitMix64(seed: 2)
        for i in 0..<images.count { images.pointer[i] = Float(rng.nextNormal()) }
        let labels = (0..<batch).map { Int32($0 % 10) }
        let buckets = GradientBuckets(parameters: model.store.parameters.map { ($0.offset, $0.count) },
                                      totalCount: model.store.parameterCount)
        let reduction = OverlappedAllReduce(buckets: buckets, communicator: SingleProcessCommunicator(),
                                            compression: .none, mode: .nonblocking)
        model.store.gradientReady = { reduction.gradientReady(offset: $0, count: $1) }
        func step() {
            let logits = model.forward(images, mode: .train)
            _ = labels.withUnsafeBufferPointer { loss.forward(logits: logits, labels: $0.baseAddress!) }
            model.store.zeroGradients()
            reduction.beginBackward(gradients: model.store.gradients)
            model.backward(loss.backward())
            reduction.finish(gradients: model.store.gradients)
            optimizer.step(learningRate: 0.01, gradientScale: 1, range: nil)
        }
        for _ in 0..<3 { step() }
        let tracing = ProcessInfo.processInfo.environment["SWIFT_DP_TRAIN_TRACE_ALLOCATIONS"] == "1"
        allocation_trace(tracing)
        let before = allocation_count(), splitsBefore = ComputeThreads.shared.splits
        for _ in 0..<2 { step() }
        let after = allocation_count(), splitsAfter = ComputeThreads.shared.splits
        allocation_trace(false)
        return ((after - before) / 2, (splitsAfter - splitsBefore) / 2)
    }

    /// A steady-state eval forward allocates nothing either, with BatchNorm folded into the
    /// convolutions (Note [BatchNorm folding]), also when a weight change makes it refold: the
    /// folded weights reuse their buffers.
    private func allocationsPerEval(_ architecture: String, imageSize: Int, batch: Int) throws -> (Int, Int) {
        setComputeThreads(1)
        let model = try ClassifierModel(architecture: architecture, numClasses: 10, stem: .imagenet, seed: 1)
        let images = Tensor(n: batch, h: imageSize, w: imageSize, c: 3)
        var rng = SplitMix64(seed: 2)
        for i in 0..<images.count { images.pointer[i] = Float(rng.nextNormal()) }
        for _ in 0..<2 { _ = model.forward(images, mode: .eval) }
        let before = allocation_count()
        for _ in 0..<2 { _ = model.forward(images, mode: .eval) }
        let steady = allocation_count() - before
        let p = model.store.parameters[0]
        let afterChange = allocation_count()
        model.store.value(p)[0] += 1  // bumps the version: the next eval refolds every pair
        _ = model.forward(images, mode: .eval)
        return (steady / 2, allocation_count() - afterChange)
    }

    func testEvalForwardAllocatesNothing() throws {
        for (architecture, size, batch) in [("resnet18", 32, 4), ("resnet50", 32, 2), ("efficientnet_b0", 32, 4),
                                            ("inception_resnet_v2", 75, 1)] {
            let (steady, refold) = try allocationsPerEval(architecture, imageSize: size, batch: batch)
            XCTAssertEqual(steady, 0, "\(architecture): allocations per eval forward")
            XCTAssertEqual(refold, 0, "\(architecture): allocations of an eval forward that refolds")
        }
    }

    /// The counter sees Swift allocations at all (otherwise zero would prove nothing).
    func testCounterSeesAllocations() {
        let before = allocation_count()
        let array = (0..<100).map { [$0] }
        XCTAssertEqual(array.count, 100)
        XCTAssertGreaterThanOrEqual(allocation_count() - before, 100)
    }

    func testResNetStepAllocatesNothing() throws {
        XCTAssertEqual(try allocationsPerStep("resnet18", imageSize: 32, batch: 4).allocations, 0)
        XCTAssertEqual(try allocationsPerStep("resnet50", imageSize: 32, batch: 2, optimizerKind: "adamw").allocations, 0)
    }

    /// Batch and size big enough that GEMMs, Winograd transforms and BatchNorm really split.
    func testStepOnTwoComputeThreadsAllocatesOnlyThePoolsHandOffs() throws {
        for (architecture, batch) in [("resnet18", 8), ("efficientnet_b0", 4)] {
            let (allocations, splits) = try allocationsPerStep(architecture, imageSize: 64, batch: batch, threads: 2)
            XCTAssertGreaterThan(splits, 50, "\(architecture): the step's work was split")
            XCTAssertEqual(allocations, splits, "\(architecture): allocations per step against split calls")
        }
    }

    func testEfficientNetStepAllocatesNothing() throws {
        XCTAssertEqual(try allocationsPerStep("efficientnet_b0", imageSize: 32, batch: 4).allocations, 0)
    }

    func testInceptionResNetV2StepAllocatesNothing() throws {
        XCTAssertEqual(try allocationsPerStep("inception_resnet_v2", imageSize: 75, batch: 2).allocations, 0)
    }
}
