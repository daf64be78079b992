import Foundation

/// Which classes a macro average runs over.
public enum MacroAverageScope: String, Codable, Sendable {
    /// Every class of the model, as sklearn's `average="macro"` with `labels=range(K)` and as
    /// PyTorch Ignite's `Precision(average=True)`, `Recall(average=True)` and
    /// `Fbeta(beta=1, average=True)` (the mean over the classes of the model's output). A class
    /// with no validation samples then counts with recall 0 and F1 0, whatever the model does.
    case allClasses
    /// Only the classes with at least one validation sample (sklearn with
    /// `labels=np.unique(y_true)`). Differs from `allClasses` only where the model has outputs
    /// the validation set never asks for, e.g. a 1000-class model evaluated on a subset, where
    /// the empty classes would otherwise pull every macro average down.
    case classesWithSamples
}

/// Accuracy, per-class precision / recall / F1 and their macro averages, with the semantics of
/// scikit-learn's `precision_recall_fscore_support(y_true, y_pred, labels=…, zero_division=0)`:
///
/// - precision_c = tp_c / (samples predicted as c); 0 when c is never predicted.
/// - recall_c = tp_c / (samples of class c) — the per-class accuracy; 0 when c has no samples.
/// - F1_c = 2·tp_c / (samples of c + samples predicted as c), which equals 2·P·R / (P + R) and is
///   how sklearn computes it; 0 when both counts are 0 (and whenever tp_c = 0).
/// - macro X = the unweighted mean of X_c over the classes of `scope`.
///
/// The F1 is the PyTorch Ignite tutorial's F1: `Fbeta(1, average=True)` built on per-class
/// `Precision(average=False)` and `Recall(average=False)`, i.e. the mean of per-class F1 (not the
/// harmonic mean of macro precision and macro recall). Ignite adds 1e-15 to the denominator
/// instead of special-casing 0/0; the results agree to ~1e-15.
public struct ClassificationMetrics: Codable, Sendable, Equatable {
    /// Correct / all samples (top-1).
    public var accuracy: Double
    public var macroPrecision: Double
    public var macroRecall: Double
    public var macroF1: Double
    public var scope: MacroAverageScope
    /// How many classes the macro averages ran over.
    public var averagedClassCount: Int
    public var precision: [Double]
    public var recall: [Double]
    public var f1: [Double]
    /// Validation samples of each class.
    public var support: [Int64]

    enum CodingKeys: String, CodingKey {
        case accuracy, scope, precision, recall, f1, support
        case macroPrecision = "macro_precision", macroRecall = "macro_recall", macroF1 = "macro_f1"
        case averagedClassCount = "averaged_class_count"
    }
}

extension ConfusionMatrix {
    /// Per class: correct predictions (the diagonal), samples (row sums), predictions (column sums).
    public func classTotals() -> (truePositives: [Int64], trueCounts: [Int64], predictedCounts: [Int64]) {
        let k = classCount
        var tp = [Int64](repeating: 0, count: k)
        var rows = [Int64](repeating: 0, count: k)
        var columns = [Int64](repeating: 0, count: k)
        counts.withUnsafeBufferPointer { cells in
            columns.withUnsafeMutableBufferPointer { columnSums in
                for t in 0..<k {
                    let row = cells.baseAddress! + t * k
                    var rowSum: Int64 = 0
                    for p in 0..<k {
                        rowSum += row[p]
                        columnSums[p] += row[p]
                    }
                    rows[t] = rowSum
                    tp[t] = row[t]
                }
            }
        }
        return (tp, rows, columns)
    }

    /// Correct / all samples; 0 for an empty matrix.
    public var accuracy: Double {
        var correct: Int64 = 0
        for c in 0..<classCount { correct += self[c, c] }
        let n = total
        return n == 0 ? 0 : Double(correct) / Double(n)
    }

    /// Every metric at once (one pass over the matrix). See `ClassificationMetrics` for the
    /// definitions and `MacroAverageScope` for which classes the averages include.
    public func metrics(macroOver scope: MacroAverageScope = .allClasses) -> ClassificationMetrics {
        let (tp, trueCounts, predictedCounts) = classTotals()
        let k = classCount
        var precision = [Double](repeating: 0, count: k)
        var recall = [Double](repeating: 0, count: k)
        var f1 = [Double](repeating: 0, count: k)
        var correct: Int64 = 0, n: Int64 = 0
        var sums = (precision: 0.0, recall: 0.0, f1: 0.0), averaged = 0
        for c in 0..<k {
            precision[c] = ratio(tp[c], predictedCounts[c])
            recall[c] = ratio(tp[c], trueCounts[c])
            f1[c] = ratio(2 * tp[c], trueCounts[c] + predictedCounts[c])
            correct += tp[c]
            n += trueCounts[c]
            if scope == .allClasses || trueCounts[c] > 0 {
                sums.precision += precision[c]
                sums.recall += recall[c]
                sums.f1 += f1[c]
                averaged += 1
            }
        }
        let divisor = Double(max(averaged, 1))
        return ClassificationMetrics(accuracy: ratio(correct, n), macroPrecision: sums.precision / divisor,
                                     macroRecall: sums.recall / divisor, macroF1: sums.f1 / divisor, scope: scope,
                                     averagedClassCount: averaged, precision: precision, recall: recall, f1: f1,
                                     support: trueCounts)
    }
}

/// a / b, with sklearn's zero_division=0: an undefined ratio counts as 0.
@inline(__always) private func ratio(_ a: Int64, _ b: Int64) -> Double {
    b == 0 ? 0 : Double(a) / Double(b)
}
