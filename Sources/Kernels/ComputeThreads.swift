import Foundation
import Synchronization

// Note [Compute threads]
// ~~~~~~~~~~~~~~~~~~~~~~
// `--threads N` splits the step's work over N threads of our own: GEMMs (`sgemm` cuts C into
// row or column blocks, one single-threaded OpenBLAS call each), Winograd's tile transforms,
// BatchNorm. OpenBLAS itself stays on one thread. Measured first (ResNet-18, 64 px, batch 64,
// 2 threads, `bench --profile`): with OpenBLAS's own threads for the GEMMs and ours for the
// rest, our kernels ran 1–2.3× *slower* than on one thread, because OpenBLAS's idle workers
// busy-wait for the next GEMM on the very cores ours need (its spin timeout is read from the
// environment when the library loads, too early for us to change). One pool for everything
// has no such fight.
//
// - `parallelFor` splits a loop into N contiguous parts: the caller runs part 0 and N − 1
//   persistent workers the others. A step calls it thousands of times microseconds apart, so
//   an idle worker spins on the job counter for a while (`spinLimit`) before it sleeps on the
//   condition; the caller wakes sleepers only when there are any.
// - The body is a non-escaping closure (its context lives on the caller's stack), handed to
//   the workers through `withoutActuallyEscaping` and taken back before the call returns.
//   That hand-off costs one small heap allocation per split call (the thunk Swift makes to
//   check the closure did not escape; a closure stored without it is wrapped in a heap thunk
//   too), counted in `splits`: a step on one thread allocates nothing, and on more threads
//   nothing but these (ZeroAllocationStepTests; 786 per ResNet-18 step at 64 px, batch 8:
//   tens of microseconds of malloc in a step of hundreds of milliseconds).
// - Work below `minimumWork` (elements, roughly) stays on the caller.
// - Parts are fixed by the thread count alone, so results are the same from run to run;
//   kernels that split by channel (`parallelForChannels`) or by independent tiles give the
//   same bits as one thread.

/// The threads our own kernels and GEMMs split their work over (`--threads`).
public final class ComputeThreads: @unchecked Sendable {
    // @unchecked Sendable: `job` and `parts` are written by the caller before it publishes a
    // new generation (sequentially consistent), and read by workers after they observe it.
    public static let shared = ComputeThreads()

    /// Loops with less work than this (in elements, or multiply-adds for GEMMs ÷ 64) are not split.
    public static let minimumWork = 32_768
    /// Checks of the job counter an idle worker makes before it sleeps (about 50–100 µs).
    static let spinLimit = 20_000

    /// Threads a loop is split over (1: the caller alone).
    public private(set) var count = 1
    /// Calls that were split over more than one thread, since the process started.
    nonisolated(unsafe) public private(set) var splits = 0

    private let generation = Atomic<Int>(0)
    private let remaining = Atomic<Int>(0)
    private let sleepers = Atomic<Int>(0)
    private let busy = Atomic<Bool>(false)
    private let condition = NSCondition()
    private let setup = NSLock()
    nonisolated(unsafe) private var job: UnsafeRawPointer?
    nonisolated(unsafe) private var parts = 1
    private var workers = 0

    private struct Job { let run: (Int, Int) -> Void }

    /// Sets the thread count; workers are started as needed and never stopped (they sleep).
    public func setCount(_ newCount: Int) {
        setup.lock(); defer { setup.unlock() }
        count = max(1, newCount)
        while workers < count - 1 {
            // The worker starts from today's generation, read here: read on its own thread, it
            // could already include a job published meanwhile, which it would then never run.
            let index = workers + 1, seen = generation.load(ordering: .sequentiallyConsistent)
            let thread = Thread { [self] in work(index: index, seen: seen) }
            thread.stackSize = 1 << 20
            thread.start()
            workers += 1
        }
    }

    /// Runs `body(part, parts)` for part in 0..<parts, parts = the thread count (1 when
    /// `work` is below `minimumWork`), and returns when all have finished. Part 0 runs on the
    /// calling thread. Use `splitRange` to turn a part into its range of a loop.
    public func parallelFor(work: Int, _ body: (_ part: Int, _ parts: Int) -> Void) {
        let parts = work >= ComputeThreads.minimumWork ? count : 1
        // One job at a time: a call from inside a body, or from a second thread while a job
        // runs, does its loop alone rather than wait for workers that are busy with it.
        if parts == 1 || !busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged {
            body(0, 1)
            return
        }
        defer { busy.store(false, ordering: .releasing) }
        splits &+= 1
        withoutActuallyEscaping(body) { escapable in
            // Workers read the closure through a pointer to this stack slot, inside a struct: a
            // bare closure stored generically (an optional property, `withUnsafePointer(to:)`)
            // is wrapped in a heap-allocated reabstraction thunk.
            withUnsafePointer(to: Job(run: escapable)) { slot in
                job = UnsafeRawPointer(slot)
                self.parts = parts
                remaining.store(parts - 1, ordering: .sequentiallyConsistent)
                generation.add(1, ordering: .sequentiallyConsistent)
                if sleepers.load(ordering: .sequentiallyConsistent) > 0 {
                    condition.lock(); condition.broadcast(); condition.unlock()
                }
                escapable(0, parts)
                while remaining.load(ordering: .acquiring) > 0 {}
                job = nil
            }
        }
    }

    private func work(index: Int, seen start: Int) {
        var seen = start
        while true {
            var spins = 0
            var now = generation.load(ordering: .acquiring)
            while now == seen && spins < ComputeThreads.spinLimit {
                spins += 1
                now = generation.load(ordering: .acquiring)
            }
            if now == seen {
                condition.lock()
                sleepers.add(1, ordering: .sequentiallyConsistent)
                while generation.load(ordering: .sequentiallyConsistent) == seen { condition.wait() }
                sleepers.subtract(1, ordering: .sequentiallyConsistent)
                condition.unlock()
                now = generation.load(ordering: .sequentiallyConsistent)
            }
            seen = now
            if index < parts {
                do {
                    // Released at the block's end, before the caller may return and check that
                    // the closure did not escape.
                    let body = job!.assumingMemoryBound(to: Job.self).pointee
                    body.run(index, parts)
                }
                remaining.subtract(1, ordering: .releasing)
            }
        }
    }
}

/// The `part`-th of `parts` contiguous pieces of 0..<count (sizes differ by at most one).
@inlinable
public func splitRange(_ count: Int, part: Int, parts: Int) -> Range<Int> {
    let base = count / parts, extra = count % parts
    let start = part * base + min(part, extra)
    return start..<(start + base + (part < extra ? 1 : 0))
}

/// Runs `body(columns)` over a [rows, channels] loop split by channel ranges, one per compute
/// thread, each a multiple of 16 floats (64 bytes) wide except the last, so no two threads
/// write the same cache line and every channel's arithmetic is the same, in the same order,
/// at any thread count: results are bit for bit those of one thread.
@inlinable
public func parallelForChannels(_ channels: Int, rows: Int, _ body: (_ columns: Range<Int>) -> Void) {
    let blocks = channels / 16
    ComputeThreads.shared.parallelFor(work: blocks >= 2 ? rows * channels : 0) { part, parts in
        let own = splitRange(blocks, part: part, parts: parts)
        body((own.lowerBound * 16)..<(part == parts - 1 ? channels : own.upperBound * 16))
    }
}
