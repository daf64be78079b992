/// Contiguous slices of the flat gradient buffer, cut in reverse registration order (the
/// last layers' gradients are ready first in backward), with a small first bucket and then
/// `bucketBytes` each, on parameter boundaries — PyTorch DDP's `compute_bucket_assignment_by_size`.
/// Every rank computes the same buckets and reduces them in the same order.
public struct GradientBuckets: Sendable {
    /// (offset, count) in floats, in the order they are reduced.
    public let buckets: [(offset: Int, count: Int)]

    public init(parameters: [(offset: Int, count: Int)], totalCount: Int,
                firstBucketBytes: Int = 1 << 20, bucketBytes: Int = 25 << 20) {
        var result: [(Int, Int)] = []
        var end = totalCount, start = totalCount
        var limit = firstBucketBytes / 4
        for p in parameters.sorted(by: { $0.offset > $1.offset }) {
            start = p.offset
            if end - start >= limit {
                result.append((start, end - start))
                end = start
                limit = bucketBytes / 4
            }
        }
        if end > 0 { result.append((0, end)) }
        buckets = result.map { (offset: $0.0, count: $0.1) }
    }

    /// Sums each bucket across ranks, in order (the optimizer folds in 1/worldSize).
    public func allReduceSum(_ gradients: UnsafeMutablePointer<Float>, communicator: any Communicator,
                             compression: GradientCompression = .none) {
        guard communicator.worldSize > 1 else { return }
        for (index, b) in buckets.enumerated() {
            communicator.setBucket(index + 1, of: buckets.count)
            if compression == .none {
                communicator.allReduceSum(gradients + b.offset, count: b.count)
            } else {
                communicator.allReduceSum(gradients + b.offset, count: b.count, compression: compression)
            }
        }
        communicator.setBucket(0, of: 0)
    }
}
