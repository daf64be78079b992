import Foundation
import TestSupport
import XCTest

/// A rank that hangs outside any collective (`--simulate-stall RANK:STEP` sleeps before that
/// step) must not hang the job: after `--collective-timeout` the watchdog names the ranks
/// that arrived and where the missing one is, and the whole job ends, no rank left behind.
final class CollectiveWatchdogTests: XCTestCase {
    func testHungRankIsNamedAndTheJobEnds() throws { try checkStall(rank: 1) }

    /// Rank 0 hosts the inspector; its own main thread hanging must be reported just the same.
    func testHungRankZeroIsNamedAndTheJobEnds() throws { try checkStall(rank: 0) }

    /// With `--overlap thread` the waiting rank's buckets are in the communication thread's
    /// hands; the wait must still be seen (Note [Overlapped all-reduce]).
    func testHungRankIsNamedWithTheCommunicationThread() throws { try checkStall(rank: 1, overlap: "thread") }

    func checkStall(rank hung: Int, overlap: String = "nonblocking") throws {
        guard let binary = swiftDPTrainBinary() else { throw XCTSkip("release binary not built") }
        guard let mpirun = findExecutable("mpirun") else { throw XCTSkip("mpirun not installed") }
        let scratch = try makeTemporaryDirectory("sdt-stall")
        defer { try? FileManager.default.removeItem(at: scratch) }
        let data = scratch.appendingPathComponent("data"), run = scratch.appendingPathComponent("run")
        try makeTinyImageNetFixture(at: data, classes: 3, trainPerClass: 20, valPerClass: 2, size: 32)

        let started = Date()
        let outcome = try runProcess(mpirun, ["-np", "2", binary, "train", "--data", data.path, "--image-size", "32",
                                              "--batch-size", "4", "--workers", "1", "--epochs", "3", "--quiet",
                                              "--output", run.path, "--collective-timeout", "3",
                                              "--simulate-stall", "\(hung):4", "--overlap", overlap],
                                     environment: mpirunEnvironment, timeout: 90)
        let seconds = Date().timeIntervalSince(started)
        let other = 1 - hung
        XCTAssertFalse(outcome.timedOut, "the job hung:\n\(outcome.output)")
        XCTAssertNotEqual(outcome.status, 0)
        XCTAssertTrue(outcome.stderr.contains("on rank(s) \(other); waiting for rank(s) \(hung) (--collective-timeout 3)"),
                      outcome.output)
        XCTAssertTrue(outcome.stderr.contains("rank \(hung) on \(ProcessInfo.processInfo.hostName): computing in train step 4 of epoch 1"),
                      outcome.output)
        XCTAssertTrue(rankProcesses(marker: run.path).isEmpty, "ranks left running after the job ended")
        print("stalled rank \(hung) reported and the job ended after \(String(format: "%.1f", seconds)) s in all")
    }
}
