import DataParallel
import XCTest

/// The watchdog's verdict from every rank's latest report (Note [Collective watchdog]).
final class StallReportTests: XCTestCase {
    func report(_ sequence: Int, waiting: Bool, _ seconds: Double, phase: String = "train step 3 of epoch 1") -> RankReport {
        RankReport(sequence: sequence, waiting: waiting, seconds: seconds, host: "node\(sequence)", phase: phase,
                   collective: "all-reduce (float) of 100 value(s)")
    }

    func testNoStallWhileEveryWaitIsShorterThanTheTimeout() {
        let reports = [report(13, waiting: true, 59), report(12, waiting: false, 59)]
        XCTAssertNil(stallReport(reports: reports, silentFor: [0, 0], timeout: 60, silentAfter: 5))
    }

    func testNamesTheRanksThatArrivedAndWhereTheOthersAre() throws {
        let reports: [RankReport?] = [
            report(13, waiting: true, 61), report(13, waiting: true, 60.5), report(12, waiting: false, 62),
            report(11, waiting: true, 40, phase: "evaluation of epoch 1"), nil,
        ]
        let text = try XCTUnwrap(stallReport(reports: reports, silentFor: [0, 0, 0, 30, 0], timeout: 60, silentAfter: 5))
        let lines = text.split(separator: "\n").map(String.init)
        XCTAssertTrue(lines[0].hasPrefix("collective #13 (all-reduce (float) of 100 value(s), train step 3 of epoch 1) has waited 61 s on rank(s) 0-1; waiting for rank(s) 2-4 (--collective-timeout 60)"), lines[0])
        XCTAssertEqual(lines[1], "  rank 2 on node12: computing in train step 3 of epoch 1 for 62 s, after collective #12")
        XCTAssertEqual(lines[2], "  rank 3 on node11: waiting in collective #11 (all-reduce (float) of 100 value(s), evaluation of epoch 1) "
                       + "for 40 s; silent for 30 s (stopped, swapping, or its network is down)")
        XCTAssertEqual(lines[3], "  rank 4: no report yet (it may not have finished starting)")
    }

    /// A link goes down half-way through collective #11: rank 0's part completed and it waits
    /// in #13, while rank 1, cut off, stays in #11 as its last report said. The longest wait is
    /// rank 1's, so #11 heads the report, and rank 1 must still be named as silent.
    func testASilentRankInsideTheStuckCollectiveIsNamed() throws {
        let reports = [report(13, waiting: true, 62), report(11, waiting: true, 65)]
        let text = try XCTUnwrap(stallReport(reports: reports, silentFor: [0, 20], timeout: 60, silentAfter: 5))
        let lines = text.split(separator: "\n").map(String.init)
        XCTAssertTrue(lines[0].hasPrefix("collective #11 (all-reduce (float) of 100 value(s), train step 3 of epoch 1) has waited 65 s on rank(s) 1; waiting for rank(s) 0"), lines[0])
        XCTAssertTrue(lines.contains("  rank 1 on node11: waiting in collective #11 (all-reduce (float) of 100 value(s), train step 3 of epoch 1) "
                                     + "for 65 s; silent for 20 s (stopped, swapping, or its network is down)"), text)
        // Not silent: not repeated.
        XCTAssertEqual(stallReport(reports: reports, silentFor: [0, 0], timeout: 60, silentAfter: 5)?.contains("rank 1 on"), false)
    }

    func testEveryRankInsideAStuckCollectiveIsANetworkFault() throws {
        let text = try XCTUnwrap(stallReport(reports: [report(5, waiting: true, 70), report(5, waiting: true, 70)],
                                             silentFor: [0, 0], timeout: 60, silentAfter: 5))
        XCTAssertTrue(text.contains("every rank is in it, yet it does not complete"), text)
    }

    /// With --eval-on rank0 the others wait for rank 0's whole evaluation: no stall while
    /// rank 0 reports, a stall once it falls silent.
    func testPatientWaitsCountOnlyWhenRankZeroIsSilent() {
        var waiting = report(40, waiting: true, 300, phase: "waiting for rank 0's evaluation (--eval-on rank0)")
        waiting.patient = true
        let reports = [report(39, waiting: false, 300, phase: "evaluation of epoch 2"), waiting]
        XCTAssertNil(stallReport(reports: reports, silentFor: [1, 1], timeout: 60, silentAfter: 5))
        let text = stallReport(reports: reports, silentFor: [200, 1], timeout: 60, silentAfter: 5) ?? ""
        XCTAssertTrue(text.contains("rank 0 on node39: computing in evaluation of epoch 2 for 300 s, after collective #39; silent for 200 s"), text)
    }

    func testReportsSurviveTheWire() {
        let original = RankReport(sequence: 123_456, waiting: true, seconds: 1.25, host: "gpu-node-7",
                                  phase: "train step 9 of epoch 2, gradient bucket 1 of 3", collective: "barrier of 0 value(s)",
                                  patient: true)
        let bytes = original.encoded()
        XCTAssertEqual(bytes.count, RankReport.wireSize)
        XCTAssertEqual(RankReport(decoding: bytes), original)
        XCTAssertNil(RankReport(decoding: [UInt8](repeating: 0, count: 16)))
    }

    func testRankListsCompressRuns() {
        XCTAssertEqual(rankList([0, 2, 3, 4, 5, 7]), "0, 2-5, 7")
        XCTAssertEqual(rankList([1]), "1")
        XCTAssertEqual(rankList([]), "")
    }
}
