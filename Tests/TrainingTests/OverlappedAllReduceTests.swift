import DataParallel
import Foundation
import Kernels
import NN
import XCTest

/// A world of two that records, in one event list with the model's gradient-ready calls, when
/// each bucket's sum starts (its offset in the gradient buffer). The sums themselves are the
/// identity: what is tested is the schedule.
private final class RecordingCommunicator: Communicator, @unchecked Sendable {
    enum Event: Equatable { case ready(offset: Int, count: Int), started(offset: Int, count: Int, thread: Bool) }
    let lock = NSLock()
    var events: [Event] = []
    var base: UnsafeMutablePointer<Float>?
    var waits = 0

    func record(_ event: Event) { lock.lock(); events.append(event); lock.unlock() }

    var rank: Int { 0 }
    var worldSize: Int { 2 }
    var localRank: Int { 0 }
    var localSize: Int { 2 }
    func allReduceSum(_ buffer: UnsafeMutablePointer<Float>, count: Int) {
        record(.started(offset: buffer - base!, count: count, thread: !Thread.isMainThread))
    }
    func startAllReduceSum(_ buffer: UnsafeMutablePointer<Float>, count: Int, compression: GradientCompression) {
        record(.started(offset: buffer - base!, count: count, thread: !Thread.isMainThread))
    }
    func waitStarted() { waits += 1 }
    func allReduceSum(_ values: inout [Double]) {}
    func broadcast(_ buffer: UnsafeMutablePointer<Float>, count: Int, root: Int) {}
    func broadcast(_ buffer: UnsafeMutablePointer<Int64>, count: Int, root: Int) {}
    func broadcast(bytes: inout [UInt8], root: Int) {}
    func barrier() {}
    func abort(_ message: String, code: Int32) -> Never { fatalError(message) }
    func finalize() {}
}

final class OverlappedAllReduceTests: XCTestCase {
    /// One training backward of `architecture` with a recording world of two: every parameter
    /// reports its gradient once, each bucket starts only after all of its parameters have
    /// reported, buckets start in order, and the first starts long before backward ends.
    private func checkSchedule(_ architecture: String, imageSize: Int, mode: OverlapMode,
                               bucketMB: Double = 1, frozen: Bool = false) throws {
        let model = try ClassifierModel(architecture: architecture, numClasses: 5, stem: .imagenet, seed: 3)
        model.freezeBackbone = frozen
        let trainable = model.trainableRange
        let comm = RecordingCommunicator()
        let buckets = GradientBuckets(
            parameters: model.store.parameters.filter { trainable.contains($0.offset) }
                .map { ($0.offset - trainable.lowerBound, $0.count) },
            totalCount: trainable.count, bucketBytes: Int(bucketMB * 1_048_576))
        let reduction = OverlappedAllReduce(buckets: buckets, communicator: comm, compression: .none, mode: mode)
        defer { reduction.stop() }
        let gradients = model.store.gradients + trainable.lowerBound
        comm.base = gradients
        model.store.gradientReady = { offset, count in
            comm.record(.ready(offset: offset - trainable.lowerBound, count: count))
            reduction.gradientReady(offset: offset - trainable.lowerBound, count: count)
        }
        let images = Tensor(n: 2, h: imageSize, w: imageSize, c: 3)
        var rng = SplitMix64(seed: 5)
        for i in 0..<images.count { images.pointer[i] = Float(rng.nextNormal()) }
        let loss = SoftmaxCrossEntropy()
        let logits = model.forward(images, mode: .train)
        _ = [Int32(1), 3].withUnsafeBufferPointer { loss.forward(logits: logits, labels: $0.baseAddress!) }
        model.store.zeroGradients()
        reduction.beginBackward(gradients: gradients)
        model.backward(loss.backward())
        let lastReady = comm.events.lastIndex { if case .ready = $0 { return true } else { return false } }!
        reduction.finish(gradients: gradients)

        let events = comm.events
        // Each trainable parameter reported exactly once (nothing left for `finish` to find).
        let reported = events.compactMap { event -> Int? in
            if case .ready(let offset, _) = event { return offset } else { return nil }
        }.filter { $0 >= 0 }
        let expected = model.store.parameters.filter { trainable.contains($0.offset) }.map { $0.offset - trainable.lowerBound }
        XCTAssertEqual(reported.sorted(), expected.sorted(), "\(architecture): parameters reported")
        // Buckets start in their order, each once.
        let starts = events.enumerated().compactMap { i, event -> (Int, Int, Int, Bool)? in
            if case .started(let offset, let count, let thread) = event { return (i, offset, count, thread) } else { return nil }
        }
        XCTAssertEqual(starts.map { $0.1 }, buckets.buckets.map(\.offset), "\(architecture): start order")
        XCTAssertEqual(starts.map { $0.2 }, buckets.buckets.map(\.count))
        if !frozen { XCTAssertGreaterThan(buckets.buckets.count, 2, "\(architecture): too few buckets to test overlap") }
        // A bucket starts after every parameter inside it reported.
        for (position, offset, count, _) in starts {
            let inside = expected.filter { $0 >= offset && $0 < offset + count }
            let before = Set(events[..<position].compactMap { event -> Int? in
                if case .ready(let o, _) = event { return o } else { return nil }
            })
            XCTAssertTrue(inside.allSatisfy(before.contains), "\(architecture): bucket at \(offset) started early")
        }
        switch mode {
        case .nonblocking:
            // Started by backward itself, on the main thread, and all but the last bucket before it ended.
            XCTAssertTrue(starts.allSatisfy { !$0.3 })
            if starts.count >= 2 { XCTAssertLessThan(starts[starts.count - 2].0, lastReady, "\(architecture): no overlap") }
            XCTAssertEqual(comm.waits, 1)
        case .thread:
            XCTAssertTrue(starts.allSatisfy { $0.3 }, "sums run on the communication thread")
        case .off:
            XCTAssertGreaterThan(starts[0].0, lastReady, "off: after backward")
        }
    }

    func testResNetBucketsStartAsBackwardFillsThem() throws {
        try checkSchedule("resnet18", imageSize: 32, mode: .nonblocking)
        try checkSchedule("resnet18", imageSize: 32, mode: .thread)
        try checkSchedule("resnet18", imageSize: 32, mode: .off)
    }

    func testEfficientNetAndInceptionReportEveryParameter() throws {
        try checkSchedule("efficientnet_b0", imageSize: 32, mode: .nonblocking, bucketMB: 0.5)
        try checkSchedule("inception_resnet_v2", imageSize: 75, mode: .nonblocking, bucketMB: 4)
    }

    /// A frozen backbone reduces only the head (the tail of the buffers): offsets are counted
    /// from the head's start, and the backbone, which runs no backward, reports nothing.
    func testFrozenBackboneReducesTheHead() throws {
        try checkSchedule("resnet18", imageSize: 32, mode: .nonblocking, frozen: true)
    }

    /// Gradients that become final out of bucket order (a later bucket first) wait for the
    /// earlier bucket: every rank must start the same sums in the same order.
    func testOutOfOrderReadinessKeepsBucketOrder() {
        let comm = RecordingCommunicator()
        let buffer = UnsafeMutablePointer<Float>.allocate(capacity: 100)
        defer { buffer.deallocate() }
        comm.base = buffer
        // Parameters at 0 (40 values), 40 (30), 70 (30), one per bucket (20 and 25 floats at least).
        let buckets = GradientBuckets(parameters: [(0, 40), (40, 30), (70, 30)], totalCount: 100,
                                      firstBucketBytes: 80, bucketBytes: 100)
        XCTAssertEqual(buckets.buckets.map(\.offset), [70, 40, 0])
        let reduction = OverlappedAllReduce(buckets: buckets, communicator: comm, compression: .none, mode: .nonblocking)
        reduction.beginBackward(gradients: buffer)
        reduction.gradientReady(offset: 40, count: 30)
        XCTAssertTrue(comm.events.isEmpty, "bucket 2 must wait for bucket 1")
        reduction.gradientReady(offset: 70, count: 30)
        XCTAssertEqual(comm.events, [.started(offset: 70, count: 30, thread: false), .started(offset: 40, count: 30, thread: false)])
        reduction.finish(gradients: buffer)
        XCTAssertEqual(comm.events.last, .started(offset: 0, count: 40, thread: false), "finish starts what never reported")
    }
}
