import DataParallel
import Foundation

/// Counts of (true class, predicted class) pairs over an evaluation: row = true class, column =
/// predicted class, row-major. Every rank fills its own over its shard; `allReduce` sums them so
/// every rank holds the matrix of the whole validation set.
///
/// The metrics derived from it are in `ClassificationMetrics.swift`, the CSV and the log text in
/// `ConfusionMatrixReport.swift`.
public struct ConfusionMatrix: Sendable, Equatable {
    public let classCount: Int
    /// `classCount × classCount`, `counts[t * classCount + p]` = samples of class t predicted as p.
    public var counts: [Int64]
    /// Evaluations keep a matrix up to this many classes (ImageNet's 1000): larger ones would
    /// all-reduce K² numbers every evaluation.
    public static let largestClassCount = 1000

    public init(classCount: Int) {
        precondition(classCount > 0, "a confusion matrix needs at least one class")
        self.classCount = classCount
        counts = [Int64](repeating: 0, count: classCount * classCount)
    }

    /// Rebuilds a matrix from `countsAsDoubles` after an all-reduce. Sums of counts stay exact in
    /// Double up to 2^53 samples, far beyond any validation set.
    public init(classCount: Int, reducedCounts: [Double]) {
        self.init(classCount: classCount)
        precondition(reducedCounts.count == counts.count,
                     "\(reducedCounts.count) counts for a \(classCount)-class confusion matrix")
        for (i, value) in reducedCounts.enumerated() {
            precondition(value >= 0 && value == value.rounded() && value < 0x1p53, "count \(value) is not a whole number")
            counts[i] = Int64(value)
        }
    }

    /// The counts as Doubles, the element type `Communicator.allReduceSum` sums.
    public var countsAsDoubles: [Double] { counts.map { Double($0) } }

    public mutating func add(trueClass: Int, predicted: Int) {
        precondition(trueClass >= 0 && trueClass < classCount, "true class \(trueClass) outside 0..<\(classCount)")
        precondition(predicted >= 0 && predicted < classCount, "predicted class \(predicted) outside 0..<\(classCount)")
        counts[trueClass * classCount + predicted] += 1
    }

    /// Adds another matrix's counts (another rank's, or another shard's) to this one.
    public mutating func merge(_ other: ConfusionMatrix) {
        precondition(other.classCount == classCount,
                     "cannot merge a \(other.classCount)-class confusion matrix into a \(classCount)-class one")
        let n = counts.count
        counts.withUnsafeMutableBufferPointer { mine in
            other.counts.withUnsafeBufferPointer { theirs in
                for i in 0..<n { mine[i] += theirs[i] }
            }
        }
    }

    /// Sums the matrices of all ranks; every rank holds the total afterwards. Collective: every
    /// rank must call it, with the same `classCount`.
    public mutating func allReduce(over communicator: any Communicator) {
        var values = countsAsDoubles
        communicator.allReduceSum(&values)
        self = ConfusionMatrix(classCount: classCount, reducedCounts: values)
    }

    /// Samples counted (the sum of every cell).
    public var total: Int64 { counts.reduce(0, +) }

    /// Samples of `trueClass` predicted as `predicted`.
    public subscript(trueClass: Int, predicted: Int) -> Int64 {
        counts[trueClass * classCount + predicted]
    }
}
