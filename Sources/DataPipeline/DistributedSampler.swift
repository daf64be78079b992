import Kernels

/// PyTorch's `DistributedSampler` (torch/utils/data/distributed.py): a permutation seeded by
/// seed + epoch, padded by repeating its head to a multiple of the world size (or truncated
/// with dropLast), and rank r takes indices r, r+W, r+2W, …. The permutation comes from our
/// own generator, not torch.randperm's, so the order differs from PyTorch's; the properties
/// (same steps per rank, disjoint shards before padding, new order every epoch) are the same.
public struct DistributedSampler: Sendable {
    public let datasetSize: Int
    public let worldSize: Int
    public let rank: Int
    public let shuffle: Bool
    public let seed: UInt64
    public let dropLast: Bool
    /// Indices per rank per epoch.
    public let numSamples: Int

    public init(datasetSize: Int, worldSize: Int, rank: Int, shuffle: Bool = true, seed: UInt64, dropLast: Bool = false) {
        precondition(worldSize >= 1 && rank >= 0 && rank < worldSize)
        self.datasetSize = datasetSize; self.worldSize = worldSize; self.rank = rank
        self.shuffle = shuffle; self.seed = seed; self.dropLast = dropLast
        if dropLast && datasetSize % worldSize != 0 {
            numSamples = (datasetSize - worldSize + worldSize - 1) / worldSize  // ceil((N − W) / W)
        } else {
            numSamples = (datasetSize + worldSize - 1) / worldSize
        }
    }

    public var totalSize: Int { numSamples * worldSize }

    /// The same on every rank for a given epoch.
    public func permutation(epoch: Int) -> [Int] {
        var order = Array(0..<datasetSize)
        guard shuffle else { return order }
        var rng = SplitMix64(seed: seed, UInt64(epoch), 0x5A4D_504C)
        // Fisher–Yates.
        var i = order.count - 1
        while i > 0 {
            let j = rng.nextInt(below: i + 1)
            order.swapAt(i, j)
            i -= 1
        }
        return order
    }

    public func indices(epoch: Int) -> [Int] {
        var order = permutation(epoch: epoch)
        if !dropLast {
            let padding = totalSize - order.count
            if padding > 0 && !order.isEmpty {
                let head = order
                var k = 0
                while order.count < totalSize { order.append(head[k % head.count]); k += 1 }
            }
        } else {
            order.removeLast(order.count - totalSize)
        }
        return stride(from: rank, to: totalSize, by: worldSize).map { order[$0] }
    }
}

/// Evaluation sharding: every index goes to exactly one rank (r, r+W, …), no padding, so no
/// image is counted twice (the PyTorch recipe's DistributedSampler duplicates some).
public func evaluationShard(datasetSize: Int, worldSize: Int, rank: Int) -> [Int] {
    Array(stride(from: rank, to: datasetSize, by: worldSize))
}
