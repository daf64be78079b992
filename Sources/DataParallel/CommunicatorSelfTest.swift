/// Checks every collective against closed-form results of rank-dependent values; run under
/// mpirun by the multi-process tests (`swift-dp-train selftest-comm`). Returns the failures.
public func communicatorSelfTest(_ comm: any Communicator) -> [String] {
    var failures: [String] = []
    let w = comm.worldSize, r = comm.rank
    // A buffer larger than one bucket and not a multiple of anything, reduced through buckets.
    let count = (1 << 20) * 3 / 2 + 17
    let buffer = UnsafeMutablePointer<Float>.allocate(capacity: count)
    defer { buffer.deallocate() }
    for i in 0..<count { buffer[i] = Float(r + 1) * Float(i % 97) }
    let buckets = GradientBuckets(parameters: [(0, 1000), (1000, count - 1000)], totalCount: count,
                                  firstBucketBytes: 4096, bucketBytes: 1 << 20)
    buckets.allReduceSum(buffer, communicator: comm)
    let ranksSum = Float(w * (w + 1) / 2)
    if let bad = (0..<count).first(where: { buffer[$0] != ranksSum * Float($0 % 97) }) {
        failures.append("bucketed float all-reduce wrong at \(bad): \(buffer[bad]) ≠ \(ranksSum * Float(bad % 97))")
    }
    var doubles = [Double(r), 1, Double(r * r)]
    comm.allReduceSum(&doubles)
    let squares = Double((w - 1) * w * (2 * w - 1) / 6)
    if doubles != [Double(w * (w - 1) / 2), Double(w), squares] { failures.append("double all-reduce gave \(doubles)") }
    // An array, not a Set: Set order is seeded per process, and every rank must issue the
    // broadcasts in the same order.
    for root in w > 1 ? [0, w - 1] : [0] {
        var floats: [Float] = r == root ? [1.5, -2, Float(root)] : [0, 0, 0]
        floats.withUnsafeMutableBufferPointer { comm.broadcast($0.baseAddress!, count: 3, root: root) }
        if floats != [1.5, -2, Float(root)] { failures.append("float broadcast from \(root) gave \(floats)") }
        var ints: [Int64] = r == root ? [Int64.max, -7] : [0, 0]
        ints.withUnsafeMutableBufferPointer { comm.broadcast($0.baseAddress!, count: 2, root: root) }
        if ints != [Int64.max, -7] { failures.append("int64 broadcast from \(root) gave \(ints)") }
        var bytes: [UInt8] = r == root ? Array("from rank \(root)".utf8) : []
        comm.broadcast(bytes: &bytes, root: root)
        if bytes != Array("from rank \(root)".utf8) { failures.append("byte broadcast from \(root) gave \(bytes.count) bytes") }
    }
    comm.barrier()
    return failures
}
