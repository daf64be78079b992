import Foundation

// Note [Overlapped all-reduce]
// ~~~~~~~~~~~~~~~~~~~~~~~~~~~~
// Backward produces gradients last layer first, and the buckets (GradientBuckets) are cut in
// that order, so the first bucket is complete long before backward ends. Every layer tells
// the parameter store when one of its parameter gradients is final (`gradientReady`); the
// reducer counts, per bucket, the values still outstanding, and hands a bucket to the
// network when its count reaches zero and every earlier bucket has gone — so all ranks start
// the same sums in the same order (MPI requires it; PyTorch DDP does the same). After
// backward, `finish` hands over what is left (parameters no layer reported) and waits.
//
// How the sums progress while backward computes is the `OverlapMode`:
// - `nonblocking`: MPI_Iallreduce on the main thread; Open MPI advances a non-blocking
//   collective only inside MPI calls, so every gradient-ready callback also tests the
//   outstanding requests (MPI_Testall), a few hundred cheap calls per step.
// - `thread`: a communication thread starts each bucket as it arrives and tests the sums in
//   flight every 0.2 ms, sleeping in between (needs MPI_THREAD_MULTIPLE); after backward it
//   waits in MPI_Waitall. Progress no longer waits for the next layer to finish; a blocking
//   MPI_Allreduce on the thread, tried first, busy-polled and took a core from backward
//   where ranks fill the cores.
// - `off`: all buckets after backward, one after another.
// benchmarks/overlap_bench.sh measures the three (results in benchmarks/README.md).
// --sync-bn's all-reduces run on the main thread inside backward, on the same communicator:
// legal beside non-blocking sums started in the same order on every rank, not beside a
// second thread's blocking ones, so `thread` becomes `nonblocking` there.

/// How the gradient all-reduce overlaps backward (`--overlap`); Note [Overlapped all-reduce].
public enum OverlapMode: String, Sendable, CaseIterable, Codable {
    case nonblocking, thread, off
}

/// Reduces one step's gradient buckets, overlapped with backward as `mode` says.
/// Use: `beginBackward` before the backward whose gradients are the step's last, the store's
/// `gradientReady` forwarded to `gradientReady`, then `finish` before reading the sums.
public final class OverlappedAllReduce: @unchecked Sendable {
    // @unchecked Sendable: the main thread owns everything but the hand-off counters, which
    // both threads touch only under `handOff`.
    public let buckets: GradientBuckets
    public let mode: OverlapMode
    private let communicator: any Communicator
    private let compression: GradientCompression
    /// Values of each bucket whose gradients are not final yet, this backward.
    private var outstanding: [Int]
    /// Bucket start offsets in ascending order, and the bucket index each belongs to.
    private let startsAscending: [Int]
    private let bucketOfStart: [Int]
    private var gradients: UnsafeMutablePointer<Float>?
    private var armed = false
    /// Buckets handed to the network so far this step (always a prefix, in order).
    private var launched = 0

    // `thread` mode: the main thread raises `handedOver`, the communication thread works
    // through them and raises `completed`.
    private let handOff = NSCondition()
    private var handedOver = 0
    private var taken = 0
    private var completed = 0
    /// Backward is over: the thread may block in MPI for what is left.
    private var finishing = false
    private var stopping = false
    private var commThread: Thread?

    public init(buckets: GradientBuckets, communicator: any Communicator, compression: GradientCompression,
                mode: OverlapMode) {
        self.buckets = buckets
        self.communicator = communicator
        self.compression = compression
        // One rank has nothing to overlap; an unlisted parameter layout has nothing to count.
        self.mode = communicator.worldSize > 1 ? mode : .off
        outstanding = buckets.buckets.map(\.count)
        let order = buckets.buckets.indices.sorted { buckets.buckets[$0].offset < buckets.buckets[$1].offset }
        startsAscending = order.map { buckets.buckets[$0].offset }
        bucketOfStart = order
        if self.mode == .thread {
            // The thread holds the reducer until `stop`.
            let thread = Thread { self.communicationLoop() }
            thread.name = "gradient all-reduce"
            commThread = thread
            thread.start()
        }
    }

    /// Ends the communication thread (after `finish`); a `thread`-mode reducer lives until then.
    public func stop() {
        handOff.lock()
        stopping = true
        handOff.broadcast()
        handOff.unlock()
        commThread = nil
    }

    /// The next backward's gradients complete the step: count them as they come.
    public func beginBackward(gradients: UnsafeMutablePointer<Float>) {
        self.gradients = gradients
        guard mode != .off else { return }
        for (b, bucket) in buckets.buckets.enumerated() { outstanding[b] = bucket.count }
        launched = 0
        armed = true
    }

    /// A parameter's gradient is final: `offset` and `count` in floats from the start of the
    /// buffer given to `beginBackward` (values outside it — a frozen backbone's — are ignored).
    public func gradientReady(offset: Int, count: Int) {
        guard armed, offset >= 0, let first = startsAscending.first, offset >= first else { return }
        // The bucket holding `offset`: the last start at or below it.
        var low = 0, high = startsAscending.count - 1
        while low < high {
            let mid = (low + high + 1) / 2
            if startsAscending[mid] <= offset { low = mid } else { high = mid - 1 }
        }
        let b = bucketOfStart[low]
        guard offset < buckets.buckets[b].offset + buckets.buckets[b].count else { return }
        outstanding[b] -= count
        while launched < outstanding.count && outstanding[launched] <= 0 { launch() }
        if mode == .nonblocking && launched > 0 { communicator.testStarted() }
    }

    /// Hands over every bucket not yet handed over, waits for all, and returns the seconds
    /// spent waiting (the communication backward did not hide). `gradients`: the buffer the
    /// buckets cut (a step whose last backward never ran has started none of them).
    @discardableResult
    public func finish(gradients: UnsafeMutablePointer<Float>) -> Double {
        let start = ProcessInfo.processInfo.systemUptime
        defer { armed = false }
        guard communicator.worldSize > 1 else { return 0 }
        if !armed {
            self.gradients = gradients
            launched = 0
        }
        precondition(self.gradients == gradients, "OverlappedAllReduce.finish: another buffer than beginBackward's")
        switch mode {
        case .off:
            buckets.allReduceSum(gradients, communicator: communicator, compression: compression)
        case .nonblocking:
            while launched < buckets.buckets.count { launch() }
            communicator.waitStarted()
            communicator.setBucket(0, of: 0)
        case .thread:
            while launched < buckets.buckets.count { launch() }
            handOff.lock()
            finishing = true
            handOff.broadcast()
            while completed < buckets.buckets.count { handOff.wait() }
            handedOver = 0; taken = 0; completed = 0; finishing = false
            handOff.unlock()
            communicator.setBucket(0, of: 0)
        }
        return ProcessInfo.processInfo.systemUptime - start
    }

    private func launch() {
        let b = launched
        launched += 1
        switch mode {
        case .nonblocking:
            let bucket = buckets.buckets[b]
            communicator.setBucket(b + 1, of: buckets.buckets.count)
            communicator.startAllReduceSum(gradients! + bucket.offset, count: bucket.count, compression: compression)
        case .thread:
            handOff.lock()
            handedOver += 1
            handOff.signal()
            handOff.unlock()
        case .off:
            break
        }
    }

    /// The communication thread: starts each bucket handed over (MPI_Iallreduce) and, while
    /// any is in flight, tests them every `pollInterval` — a blocking MPI_Allreduce would
    /// busy-poll and take a core from backward; a short sleep between tests leaves it there.
    private func communicationLoop() {
        var inFlight = 0
        while true {
            handOff.lock()
            while taken == handedOver && inFlight == 0 && !stopping { handOff.wait() }
            if stopping { handOff.unlock(); return }
            let first = taken, end = handedOver
            taken = end
            let lastOnes = finishing && end == buckets.buckets.count
            handOff.unlock()
            for b in first..<end {
                let bucket = buckets.buckets[b]
                communicator.setBucket(b + 1, of: buckets.buckets.count)
                communicator.startAllReduceSum(gradients! + bucket.offset, count: bucket.count, compression: compression)
                inFlight += 1
            }
            if lastOnes {
                // Nothing left to compute beside: wait inside MPI, where the stall watchdog
                // sees this rank waiting (Note [Collective watchdog]).
                communicator.waitStarted()
            }
            if lastOnes || communicator.testStarted() {
                handOff.lock()
                completed += inFlight
                handOff.broadcast()
                handOff.unlock()
                inFlight = 0
            } else {
                Thread.sleep(forTimeInterval: OverlappedAllReduce.pollInterval)
            }
        }
    }

    /// Between tests of the sums in flight (`thread` mode).
    public static let pollInterval = 0.000_2
}
