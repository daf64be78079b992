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
    // Compressed: small integers are exact in fp16 and bf16, and so are their sums here.
    for compression in [GradientCompression.fp16, .bf16] {
        for i in 0..<count { buffer[i] = Float(r + 1) * Float(i % 16) }
        buffer[count - 1] = 0.1  // inexact: every partial sum is rounded to 16 bits
        buckets.allReduceSum(buffer, communicator: comm, compression: compression)
        if let bad = (0..<(count - 1)).first(where: { buffer[$0] != ranksSum * Float($0 % 16) }) {
            failures.append("\(compression) all-reduce wrong at \(bad): \(buffer[bad]) ≠ \(ranksSum * Float(bad % 16))")
        }
        // One process sends nothing, so nothing is rounded.
        let expected = w == 1 ? Float(0.1) : roundedSum(of: 0.1, times: w, compression)
        if buffer[count - 1] != expected {
            failures.append("\(compression) all-reduce of 0.1 gave \(buffer[count - 1]), not \(expected) (rounded per addition)")
        }
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

/// x + x + … (n terms) with every value and partial sum rounded to 16 bits, as the
/// compressed all-reduce adds them (all terms are equal, so the tree's shape does not matter).
func roundedSum(of x: Float, times n: Int, _ compression: GradientCompression) -> Float {
    var packed: UInt16 = 0
    var value: Float = 0
    func round(_ v: Float) -> Float {
        var v = v
        compression.compress(&v, into: &packed, count: 1)
        compression.decompress(&packed, into: &value, count: 1)
        return value
    }
    let term = round(x)
    var sum = term
    for _ in 1..<max(n, 1) { sum = round(sum + term) }
    return sum
}
