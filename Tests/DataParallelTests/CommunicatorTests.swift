import DataParallel
import Foundation
import TestSupport
import XCTest

final class GradientBucketTests: XCTestCase {
    func testBucketsAreContiguousReverseOrderedAndCoverEverything() {
        // Parameters of 100k, 300k, 50k, 400k and 10k floats (registration order).
        let sizes = [100_000, 300_000, 50_000, 400_000, 10_000]
        var offset = 0
        let parameters = sizes.map { s -> (offset: Int, count: Int) in defer { offset += s }; return (offset, s) }
        let b = GradientBuckets(parameters: parameters, totalCount: offset, firstBucketBytes: 1 << 20,
                                bucketBytes: 2 << 20).buckets
        // Reverse order, contiguous, covering [0, total).
        var end = offset
        for bucket in b {
            XCTAssertEqual(bucket.offset + bucket.count, end)
            end = bucket.offset
        }
        XCTAssertEqual(end, 0)
        // Cut on parameter boundaries only.
        let boundaries = Set(parameters.map(\.offset))
        for bucket in b { XCTAssertTrue(boundaries.contains(bucket.offset), "\(bucket)") }
        // The first bucket closes as soon as it reaches 1 MiB (262,144 floats): 10k + 400k.
        XCTAssertEqual(b.first!.count, 410_000)
        XCTAssertEqual(b.count, 2)
    }

    func testSingleProcessCollectivesAreIdentity() {
        let comm = SingleProcessCommunicator()
        var values = [1.5, 2.5]
        comm.allReduceSum(&values)
        XCTAssertEqual(values, [1.5, 2.5])
        XCTAssertTrue(communicatorSelfTest(comm).isEmpty)
    }
}

/// Real multi-process jobs: `mpirun -np N swift-dp-train selftest-comm`.
final class MPICommunicatorTests: XCTestCase {
    func binary() throws -> String {
        guard let path = swiftDPTrainBinary() else { throw XCTSkip("release binary not built: run scripts/test.sh first") }
        guard findExecutable("mpirun") != nil else { throw XCTSkip("mpirun not installed") }
        return path
    }

    func testCollectivesWithTwoAndThreeRanks() throws {
        let path = try binary()
        for ranks in [2, 3] {
            let outcome = try runMPI(ranks: ranks, binary: path, ["selftest-comm"], timeout: 60)
            XCTAssertFalse(outcome.timedOut)
            XCTAssertEqual(outcome.status, 0, outcome.output)
            for r in 0..<ranks { XCTAssertTrue(outcome.stdout.contains("rank \(r)/\(ranks): ok"), outcome.output) }
        }
    }

    /// The all-reduce benchmark runs and writes a row per (compression, size) with a
    /// bus bandwidth of 2(n−1)/n times the algorithm bandwidth.
    func testAllReduceBenchmarkWritesItsTable() throws {
        let csv = FileManager.default.temporaryDirectory.appendingPathComponent("allreduce-\(UUID().uuidString).csv")
        defer { try? FileManager.default.removeItem(at: csv) }
        let outcome = try runMPI(ranks: 2, binary: try binary(), ["bench-allreduce", "--sizes", "4K,64K", "--compression",
                                                                  "none,fp16", "--repeats", "1", "--csv", csv.path], timeout: 60)
        XCTAssertEqual(outcome.status, 0, outcome.output)
        let rows = try String(contentsOf: csv, encoding: .utf8).split(separator: "\n").dropFirst().map { $0.split(separator: ",") }
        XCTAssertEqual(rows.map { "\($0[0]) \($0[2])" }, ["none 4096", "none 65536", "fp16 4096", "fp16 65536"])
        for row in rows {
            let microseconds = Double(row[3])!, algbw = Double(row[4])!, busbw = Double(row[5])!
            XCTAssertGreaterThan(microseconds, 0)
            XCTAssertEqual(algbw, Double(row[2])! / microseconds / 1e3, accuracy: algbw * 1e-2 + 1e-4)
            XCTAssertEqual(busbw, algbw, accuracy: 1e-4, "2(n−1)/n = 1 on two ranks")
        }
    }

    /// One rank fails while its peers wait in a collective: the job must end, not hang.
    func testFailureOnOneRankEndsTheWholeJob() throws {
        let started = Date()
        let outcome = try runMPI(ranks: 2, binary: try binary(), ["selftest-comm", "--abort-on-rank", "1"], timeout: 60)
        XCTAssertFalse(outcome.timedOut, "job hung after a rank failed:\n\(outcome.output)")
        XCTAssertNotEqual(outcome.status, 0)
        XCTAssertTrue(outcome.stderr.contains("deliberate failure on rank 1"), outcome.output)
        XCTAssertLessThan(Date().timeIntervalSince(started), 30)
    }
}
