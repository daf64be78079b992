import DataParallel
import Foundation
import TestSupport
import Training
import XCTest

/// The reference: what scikit-learn computes from random labels (Fixtures/metrics/make_metrics_fixture.py).
private struct MetricsFixture: Decodable {
    struct Macro: Decodable { var precision, recall, f1: Double; var classes: Int }
    var class_count: Int
    var y_true: [Int]
    var y_pred: [Int]
    var confusion_matrix: [[Int64]]
    var accuracy: Double
    var precision, recall, f1: [Double]
    var support: [Int64]
    var macro_all: Macro
    var macro_present: Macro

    static func load() throws -> MetricsFixture {
        let url = packageRoot.appendingPathComponent("Tests/TrainingTests/Fixtures/metrics/metrics_fixture.json")
        return try JSONDecoder().decode(MetricsFixture.self, from: Data(contentsOf: url))
    }

    func matrix() -> ConfusionMatrix {
        var matrix = ConfusionMatrix(classCount: class_count)
        for (t, p) in zip(y_true, y_pred) { matrix.add(trueClass: t, predicted: p) }
        return matrix
    }
}

/// Stands in for the other ranks of an all-reduce: adds their matrices to this rank's.
private final class OtherRanksCommunicator: Communicator {
    let others: [[Double]]
    init(others: [[Double]]) { self.others = others }
    var rank: Int { 0 }
    var worldSize: Int { others.count + 1 }
    var localRank: Int { 0 }
    var localSize: Int { worldSize }
    func allReduceSum(_ buffer: UnsafeMutablePointer<Float>, count: Int) { fatalError("unused") }
    func allReduceSum(_ values: inout [Double]) {
        for other in others { for i in values.indices { values[i] += other[i] } }
    }
    func broadcast(_ buffer: UnsafeMutablePointer<Float>, count: Int, root: Int) {}
    func broadcast(_ buffer: UnsafeMutablePointer<Int64>, count: Int, root: Int) {}
    func broadcast(bytes: inout [UInt8], root: Int) {}
    func barrier() {}
    func abort(_ message: String, code: Int32) -> Never { fatalError(message) }
    func finalize() {}
}

final class ConfusionMatrixTests: XCTestCase {
    /// Per-class precision, recall and F1 and their macro averages as sklearn's
    /// precision_recall_fscore_support(zero_division=0) gives them, with a class never predicted,
    /// a class without samples that is predicted, and one that is neither.
    func testMetricsMatchScikitLearn() throws {
        let fixture = try MetricsFixture.load()
        let matrix = fixture.matrix()
        XCTAssertEqual(matrix.counts, fixture.confusion_matrix.flatMap { $0 })
        XCTAssertEqual(matrix.total, Int64(fixture.y_true.count))
        XCTAssertEqual(matrix.accuracy, fixture.accuracy, accuracy: 1e-12)

        let all = matrix.metrics(macroOver: .allClasses)
        XCTAssertEqual(all.support, fixture.support)
        for c in 0..<fixture.class_count {
            XCTAssertEqual(all.precision[c], fixture.precision[c], accuracy: 1e-12, "precision of class \(c)")
            XCTAssertEqual(all.recall[c], fixture.recall[c], accuracy: 1e-12, "recall of class \(c)")
            XCTAssertEqual(all.f1[c], fixture.f1[c], accuracy: 1e-12, "F1 of class \(c)")
        }
        XCTAssertEqual(all.accuracy, fixture.accuracy, accuracy: 1e-12)
        XCTAssertEqual(all.macroPrecision, fixture.macro_all.precision, accuracy: 1e-12)
        XCTAssertEqual(all.macroRecall, fixture.macro_all.recall, accuracy: 1e-12)
        XCTAssertEqual(all.macroF1, fixture.macro_all.f1, accuracy: 1e-12)
        XCTAssertEqual(all.averagedClassCount, fixture.macro_all.classes)

        let present = matrix.metrics(macroOver: .classesWithSamples)
        XCTAssertEqual(present.macroPrecision, fixture.macro_present.precision, accuracy: 1e-12)
        XCTAssertEqual(present.macroRecall, fixture.macro_present.recall, accuracy: 1e-12)
        XCTAssertEqual(present.macroF1, fixture.macro_present.f1, accuracy: 1e-12)
        XCTAssertEqual(present.averagedClassCount, fixture.macro_present.classes)
        XCTAssertEqual(present.precision, all.precision)

        // The edge cases the fixture was built to have, with the zero_division=0 values.
        XCTAssertEqual(all.support[10], 0); XCTAssertEqual(all.support[12], 0)
        XCTAssertEqual([all.precision[10], all.recall[10], all.f1[10]], [0, 0, 0])
        XCTAssertGreaterThan(all.support[11], 0)
        XCTAssertEqual(all.precision[11], 0)
        XCTAssertEqual(all.f1[12], 0)
    }

    /// Shards merged, or all-reduced over ranks, give the matrix of all samples.
    func testMergeAndAllReduceEqualOneMatrixOfEverything() throws {
        let fixture = try MetricsFixture.load()
        let whole = fixture.matrix()
        var shards = (0..<3).map { _ in ConfusionMatrix(classCount: fixture.class_count) }
        for (i, (t, p)) in zip(fixture.y_true, fixture.y_pred).enumerated() {
            shards[i % 3].add(trueClass: t, predicted: p)   // rank r takes samples r, r+W, …
        }
        var merged = shards[0]
        merged.merge(shards[1])
        merged.merge(shards[2])
        XCTAssertEqual(merged, whole)

        var reduced = shards[0]
        reduced.allReduce(over: OtherRanksCommunicator(others: [shards[1].countsAsDoubles, shards[2].countsAsDoubles]))
        XCTAssertEqual(reduced, whole)
        XCTAssertEqual(ConfusionMatrix(classCount: fixture.class_count, reducedCounts: whole.countsAsDoubles), whole)

        var single = whole
        single.allReduce(over: SingleProcessCommunicator())
        XCTAssertEqual(single, whole)
    }

    func testEmptyMatrixHasZeroMetrics() {
        let metrics = ConfusionMatrix(classCount: 4).metrics()
        XCTAssertEqual(metrics.accuracy, 0)
        XCTAssertEqual([metrics.macroPrecision, metrics.macroRecall, metrics.macroF1], [0, 0, 0])
        XCTAssertEqual(ConfusionMatrix(classCount: 4).metrics(macroOver: .classesWithSamples).averagedClassCount, 0)
    }

    /// Names with commas, quotes or line breaks are quoted (RFC 4180); classes without a name
    /// are named by index; rows are true classes, columns predictions.
    func testCSVQuotesNamesAsRFC4180() {
        var matrix = ConfusionMatrix(classCount: 4)
        matrix.add(trueClass: 0, predicted: 0)
        matrix.add(trueClass: 0, predicted: 1)
        matrix.add(trueClass: 1, predicted: 2)
        matrix.add(trueClass: 2, predicted: 2)
        matrix.add(trueClass: 2, predicted: 2)
        matrix.add(trueClass: 3, predicted: 0)
        let csv = matrix.csv(classNames: ["plain", "tench, Tinca tinca", "say \"hi\""])
        // Raw string: the expected text holds runs of quotes and a backslash.
        XCTAssertEqual(csv, #"""
            true\predicted,plain,"tench, Tinca tinca","say ""hi""",3
            plain,1,1,0,0
            "tench, Tinca tinca",0,0,1,0
            "say ""hi""",0,0,2,0
            3,1,0,0,0

            """#)
        XCTAssertEqual(ConfusionMatrix(classCount: 1).csv(classNames: ["line\r\nbreak"]),
                       "true\\predicted,\"line\r\nbreak\"\n\"line\r\nbreak\",0\n")
    }

    /// Lowest recall first, ties by index; classes without samples left out; confusions most
    /// first, ties by index, only real ones.
    func testWorstClassesAndTheirConfusions() {
        var matrix = ConfusionMatrix(classCount: 5)
        func add(_ t: Int, _ p: Int, times: Int) { for _ in 0..<times { matrix.add(trueClass: t, predicted: p) } }
        add(0, 0, times: 9); add(0, 1, times: 1)                      // recall 0.9
        add(1, 1, times: 1); add(1, 0, times: 2); add(1, 3, times: 2); add(1, 2, times: 5)   // 0.1
        add(2, 2, times: 1); add(2, 4, times: 9)                      // 0.1, tie with class 1
        add(3, 3, times: 4)                                           // 1.0
        add(0, 4, times: 0)                                           // class 4 has no samples
        let worst = matrix.worstClasses(count: 10, confusionsPerClass: 2)
        XCTAssertEqual(worst.map(\.classIndex), [1, 2, 0, 3])
        XCTAssertEqual(worst[0].recall, 0.1, accuracy: 1e-15)
        XCTAssertEqual(worst[0].topConfusions.map(\.predicted), [2, 0])
        XCTAssertEqual(worst[0].topConfusions.map(\.count), [5, 2])
        XCTAssertEqual(worst[2].topConfusions.map(\.predicted), [1])
        XCTAssertTrue(worst[3].topConfusions.isEmpty)
        XCTAssertEqual(matrix.worstClasses(count: 1).map(\.classIndex), [1])

        let summary = matrix.summary(classNames: ["a", "b", "c", "d", "e"], worst: 2)
        XCTAssertTrue(summary.hasPrefix("accuracy 44.12%  macro precision "), summary)
        XCTAssertTrue(summary.contains("(5 classes, 34 images)"), summary)
        XCTAssertTrue(summary.contains("1 class(es) have no samples; over the 4 that do:"), summary)
        XCTAssertTrue(summary.contains("worst 2 class(es) by recall:\n  b (#1): recall 10.00% (1/10); mistaken for c (#2) 5, a (#0) 2, d (#3) 2\n  c (#2): recall 10.00% (1/10); mistaken for e (#4) 9"), summary)
    }

    /// 1000 classes (ImageNet): the sizes the trainer will see stay cheap and exact.
    func testThousandClasses() {
        var matrix = ConfusionMatrix(classCount: 1000)
        for i in 0..<20_000 { matrix.add(trueClass: i % 1000, predicted: (i % 7 == 0) ? (i * 31) % 1000 : i % 1000) }
        let metrics = matrix.metrics()
        XCTAssertEqual(metrics.support.reduce(0, +), 20_000)
        XCTAssertEqual(metrics.accuracy, matrix.accuracy)
        XCTAssertEqual(matrix.csv(classNames: []).split(separator: "\n").count, 1001)
    }
}
