import Foundation

/// What people read of a confusion matrix: the CSV written per evaluation and the lines logged.
extension ConfusionMatrix {
    /// The matrix as CSV: a header `true\predicted,<class names…>`, then one row per true class,
    /// its name first. Names containing a comma, a double quote or a line break are quoted as
    /// RFC 4180 says (quotes doubled); lines end with "\n". Classes beyond `classNames` (a model
    /// with more outputs than the dataset has names) are named by their index.
    public func csv(classNames: [String]) -> String {
        let names = (0..<classCount).map { csvField(displayName(of: $0, in: classNames)) }
        var text = "true\\predicted," + names.joined(separator: ",") + "\n"
        text.reserveCapacity(text.utf8.count * (classCount + 1) + counts.count * 2)
        for t in 0..<classCount {
            text += names[t]
            let row = t * classCount
            for p in 0..<classCount {
                text += ","
                text += String(counts[row + p])
            }
            text += "\n"
        }
        return text
    }

    /// One row per class: `class,support,precision,recall,f1` (recall is the per-class accuracy),
    /// with the definitions of `metrics()`.
    public func classMetricsCSV(classNames: [String]) -> String {
        let m = metrics()
        var text = "class,support,precision,recall,f1\n"
        for c in 0..<classCount {
            text += csvField(displayName(of: c, in: classNames)) + ",\(m.support[c])"
            text += String(format: ",%.6f,%.6f,%.6f\n", m.precision[c], m.recall[c], m.f1[c])
        }
        return text
    }

    /// The `count` classes with the lowest recall (per-class accuracy), lowest first, ties by
    /// class index; classes without samples have no recall and are left out. With each, the
    /// classes its samples were most often mistaken for (most first, ties by index, at most
    /// `confusionsPerClass`, only classes it was actually mistaken for).
    public func worstClasses(count: Int, confusionsPerClass: Int = 3)
        -> [(classIndex: Int, recall: Double, topConfusions: [(predicted: Int, count: Int64)])] {
        let k = classCount
        let (correct, samples, _) = classTotals()
        var candidates: [(classIndex: Int, recall: Double)] = []
        for t in 0..<k where samples[t] > 0 { candidates.append((t, Double(correct[t]) / Double(samples[t]))) }
        candidates.sort { $0.recall != $1.recall ? $0.recall < $1.recall : $0.classIndex < $1.classIndex }
        return candidates.prefix(max(count, 0)).map { candidate in
            let t = candidate.classIndex
            var confusions: [(predicted: Int, count: Int64)] = []
            for p in 0..<k where p != t && counts[t * k + p] > 0 { confusions.append((p, counts[t * k + p])) }
            confusions.sort { $0.count != $1.count ? $0.count > $1.count : $0.predicted < $1.predicted }
            return (t, candidate.recall, Array(confusions.prefix(max(confusionsPerClass, 0))))
        }
    }

    /// Lines for the log: accuracy and macro precision / recall / F1 (over all classes, the
    /// Ignite and sklearn convention), the same over the classes with samples where some have
    /// none, then the `worst` classes by recall with what they were mistaken for.
    public func summary(classNames: [String], worst: Int = 5) -> String {
        let all = metrics(macroOver: .allClasses)
        let percent = { (x: Double) in String(format: "%.2f%%", x * 100) }
        var lines = ["accuracy \(percent(all.accuracy))  macro precision \(percent(all.macroPrecision))  "
                     + "macro recall \(percent(all.macroRecall))  macro F1 \(percent(all.macroF1))  "
                     + "(\(classCount) classes, \(total) images)"]
        let present = metrics(macroOver: .classesWithSamples)
        if present.averagedClassCount < classCount {
            lines.append("  \(classCount - present.averagedClassCount) class(es) have no samples; over the "
                         + "\(present.averagedClassCount) that do: macro precision \(percent(present.macroPrecision))  "
                         + "macro recall \(percent(present.macroRecall))  macro F1 \(percent(present.macroF1))")
        }
        let worstClasses = worstClasses(count: worst)
        if !worstClasses.isEmpty {
            lines.append("worst \(worstClasses.count) class(es) by recall:")
            for entry in worstClasses {
                let t = entry.classIndex
                let samples = all.support[t]
                var line = "  \(label(of: t, in: classNames)): recall \(percent(entry.recall)) (\(counts[t * classCount + t])/\(samples))"
                if !entry.topConfusions.isEmpty {
                    line += "; mistaken for "
                        + entry.topConfusions.map { "\(label(of: $0.predicted, in: classNames)) \($0.count)" }
                            .joined(separator: ", ")
                }
                lines.append(line)
            }
        }
        return lines.joined(separator: "\n")
    }

    private func displayName(of index: Int, in classNames: [String]) -> String {
        index < classNames.count ? classNames[index] : String(index)
    }

    /// "name (#index)" so a class can be found in the CSV either way; the bare index without names.
    private func label(of index: Int, in classNames: [String]) -> String {
        index < classNames.count ? "\(classNames[index]) (#\(index))" : "#\(index)"
    }
}

/// One CSV field, quoted only where RFC 4180 requires it.
func csvField(_ text: String) -> String {
    // Scalars, not Characters: "\r\n" is one Character and equals neither "\r" nor "\n".
    guard text.unicodeScalars.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else {
        return text
    }
    return "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\""
}
