import Foundation

// Note [Per-layer profile]
// ~~~~~~~~~~~~~~~~~~~~~~~~
// `bench --profile` answers "where does a step's time go": every leaf layer times its forward
// and backward under a category fixed at construction ("conv 3×3 s1", "BatchNorm+ReLU", ...),
// with the floating-point operations it did, and the GEMM, im2col, col2im and Winograd-
// transform kernels time themselves inside those. Categories are registered once as small
// integers, so a step records into fixed arrays. Off (the default), each timer costs one load
// and branch. Only the thread that runs the model records (one rank, one model): the data is
// global and unsynchronised on purpose.

public enum Profiler {
    public enum Phase: Int, Sendable, CaseIterable { case forward, backward, optimizer }

    public struct Row: Sendable {
        public var name: String
        /// Seconds and calls per phase (forward, backward, optimizer).
        public var seconds: [Double]
        public var calls: [Int]
        public var flops: [Double]
        /// Kernels (GEMM, im2col, col2im) run inside layers: their time is part of the layers'.
        public var isKernel: Bool
    }

    nonisolated(unsafe) public static var isEnabled = false
    /// What the model is doing now: set by whoever drives it (the benchmark).
    nonisolated(unsafe) public static var phase = Phase.forward
    nonisolated(unsafe) static var rows: [Row] = []
    nonisolated(unsafe) static var ids: [String: Int] = [:]
    static let lock = NSLock()

    /// The id of a category, registered on first use (layer construction: any thread).
    public static func category(_ name: String, isKernel: Bool = false) -> Int {
        lock.lock(); defer { lock.unlock() }
        if let id = ids[name] { return id }
        rows.append(Row(name: name, seconds: [0, 0, 0], calls: [0, 0, 0], flops: [0, 0, 0], isKernel: isKernel))
        ids[name] = rows.count - 1
        return rows.count - 1
    }

    public static let gemm = category("GEMM (OpenBLAS sgemm)", isKernel: true)
    public static let im2col = category("im2col", isKernel: true)
    public static let col2im = category("col2im", isKernel: true)
    public static let winogradTransforms = category("Winograd transforms", isKernel: true)

    /// A start time when profiling, else 0.
    @inline(__always) public static func start() -> UInt64 {
        isEnabled ? DispatchTime.now().uptimeNanoseconds : 0
    }

    /// Adds the time since `start` (from `start()`) to `category` in the current phase.
    @inline(__always) public static func record(_ category: Int, since start: UInt64, flops: Double = 0) {
        guard isEnabled, start != 0 else { return }
        add(category, seconds: Double(DispatchTime.now().uptimeNanoseconds - start) * 1e-9, flops: flops)
    }

    @usableFromInline static func add(_ category: Int, seconds: Double, flops: Double) {
        let p = phase.rawValue
        rows[category].seconds[p] += seconds
        rows[category].calls[p] += 1
        rows[category].flops[p] += flops
    }

    /// Zeroes every total (after warm-up).
    public static func reset() {
        for i in rows.indices {
            rows[i].seconds = [0, 0, 0]
            rows[i].calls = [0, 0, 0]
            rows[i].flops = [0, 0, 0]
        }
    }

    /// The categories that recorded anything.
    public static func snapshot() -> [Row] { rows.filter { $0.calls.contains { $0 > 0 } } }
}
