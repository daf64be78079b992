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
        let order = paddedOrder(epoch: epoch)
        return stride(from: rank, to: totalSize, by: worldSize).map { order[$0] }
    }

    /// The epoch's permutation padded (or cut) to `totalSize`, before it is split over ranks.
    public func paddedOrder(epoch: Int) -> [Int] {
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
        return order
    }
}

// Note [Global sample cursor]
// ~~~~~~~~~~~~~~~~~~~~~~~~~~~
// Training walks the epoch's padded permutation (DistributedSampler's, which depends on seed
// and epoch only) one global batch at a time: a step takes the next `globalBatch` positions,
// and rank r's share is the r-th contiguous block of them, cut into micro-batches in order.
// Block k of a step therefore holds the same images whatever the world size: 4 ranks × 16
// and 2 ranks × 16 × 2 accumulated form the same four micro-batches of 16 (the stochastic
// layers are seeded per block too), so a run resumes on another world size where the global
// batch divides, without repeating or skipping a sample. A checkpoint stores how many
// positions of the epoch are done (the cursor). PyTorch's DistributedSampler deals positions
// out round-robin instead (rank r takes r, r+W, …); within one global batch the two choose
// the same images, only their grouping into per-rank batches differs.

/// Each rank's samples for the rest of an epoch, from a cursor (Note [Global sample cursor]).
public struct GlobalBatchSampler: Sendable {
    public let sampler: DistributedSampler
    public let globalBatch: Int

    public init(datasetSize: Int, worldSize: Int, rank: Int, seed: UInt64, globalBatch: Int) {
        precondition(globalBatch % worldSize == 0, "the global batch must be a multiple of the world size")
        sampler = DistributedSampler(datasetSize: datasetSize, worldSize: worldSize, rank: rank, seed: seed)
        self.globalBatch = globalBatch
    }

    /// Positions in an epoch: the dataset padded to a multiple of the world size.
    public var epochLength: Int { sampler.totalSize }

    /// Steps left in the epoch once `cursor` positions are done (the last may be short).
    public func steps(from cursor: Int) -> Int { max(0, (epochLength - cursor + globalBatch - 1) / globalBatch) }

    /// The positions a step starting at `cursor` takes: the next global batch, or what is left.
    public func stepLength(at cursor: Int) -> Int { min(globalBatch, epochLength - cursor) }

    /// This rank's sample indices for `steps` steps from `cursor`, in order, and where each
    /// step's share ends in that list.
    public func indices(epoch: Int, from cursor: Int, steps: Int) -> (indices: [Int], stepEnds: [Int]) {
        let order = sampler.paddedOrder(epoch: epoch)
        let w = sampler.worldSize, r = sampler.rank
        var indices: [Int] = [], ends: [Int] = []
        var position = cursor
        for _ in 0..<steps {
            let length = stepLength(at: position)
            guard length > 0 else { break }
            // Even shares, but for a short step after resuming on another world size.
            let share = length / w, extra = length % w
            let start = position + r * share + min(r, extra)
            indices += order[start..<(start + share + (r < extra ? 1 : 0))]
            ends.append(indices.count)
            position += length
        }
        return (indices, ends)
    }
}

/// Evaluation sharding: every index goes to exactly one rank (r, r+W, …), no padding, so no
/// image is counted twice (the PyTorch recipe's DistributedSampler duplicates some).
public func evaluationShard(datasetSize: Int, worldSize: Int, rank: Int) -> [Int] {
    Array(stride(from: rank, to: datasetSize, by: worldSize))
}
