import Foundation

/// One row of `swift-dp-train bench-allreduce`: the all-reduce of `bytes` of float32 gradients.
public struct AllReduceTiming: Sendable {
    public var compression: GradientCompression
    public var bytes: Int
    public var ranks: Int
    /// Median over repeats of the mean time of one all-reduce (compression included).
    public var seconds: Double

    /// Data size over time (the float32 bytes, whatever travels).
    public var algorithmBandwidth: Double { Double(bytes) / seconds }
    /// What each link carries in a bandwidth-optimal all-reduce, 2(n−1)/n of the data (the
    /// nccl-tests definition), so figures compare across rank counts.
    public var busBandwidth: Double { algorithmBandwidth * 2 * Double(ranks - 1) / Double(ranks) }
}

/// Collective: every rank runs the same sizes and repeats. Each size is timed as `repeats`
/// batches of back-to-back all-reduces (enough for ~0.2 s a batch); a batch's time is the
/// mean over ranks; the row keeps the median batch.
public func benchmarkAllReduce(sizes: [Int], compressions: [GradientCompression], repeats: Int,
                               communicator comm: any Communicator) -> [AllReduceTiming] {
    let largest = sizes.max() ?? 0
    let buffer = UnsafeMutablePointer<Float>.allocate(capacity: max(largest / 4, 1))
    defer { buffer.deallocate() }
    // Small values, so repeated sums stay finite in fp16.
    for i in 0..<(largest / 4) { buffer[i] = Float(i % 7) * 1e-3 }
    var rows: [AllReduceTiming] = []
    for compression in compressions {
        for bytes in sizes {
            let count = bytes / 4
            func reduce() {
                if compression == .none { comm.allReduceSum(buffer, count: count) }
                else { comm.allReduceSum(buffer, count: count, compression: compression) }
            }
            // Warm-up, and a probe that sizes the batches (rank 0 decides for all).
            reduce(); reduce()
            comm.barrier()
            let probeStart = monotonicSeconds()
            reduce()
            var probe = [monotonicSeconds() - probeStart]
            comm.allReduceSum(&probe)
            let perCall = max(probe[0] / Double(comm.worldSize), 1e-7)
            let iterations = max(3, min(10_000, Int(0.2 / perCall)))
            var batches: [Double] = []
            for _ in 0..<repeats {
                comm.barrier()
                let start = monotonicSeconds()
                for _ in 0..<iterations { reduce() }
                var elapsed = [(monotonicSeconds() - start) / Double(iterations)]
                comm.allReduceSum(&elapsed)
                batches.append(elapsed[0] / Double(comm.worldSize))
            }
            batches.sort()
            rows.append(AllReduceTiming(compression: compression, bytes: bytes, ranks: comm.worldSize,
                                        seconds: batches[batches.count / 2]))
        }
    }
    return rows
}
