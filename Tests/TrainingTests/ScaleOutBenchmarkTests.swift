import Foundation
import TestSupport
import XCTest

/// `benchmarks/scale-out --quick`, end to end: the one command runs 1 and 2 ranks on this
/// machine (tiny images, two steps: about 7 s on 2 cores) and writes the CSV, the chart and the
/// summary. What it checks is the plumbing (columns, rows, baselines), never a speed: speeds
/// live in benchmarks/, not in tests.
final class ScaleOutBenchmarkTests: XCTestCase {
    /// The overlap fraction the projection uses: 1 − communication cost ÷ all-reduce, where
    /// the cost (step − step without communication) is never taken below the exposed wait it
    /// contains — noise that makes the difference negative must not claim everything hidden.
    func testOverlapFractionNeverCountsCommunicationBelowItsExposedWait() throws {
        guard let python = findExecutable("python3") else { throw XCTSkip("python3 not installed (the report is Python)") }
        let check = """
            from scaleout.report import overlap_fraction
            row = lambda cost, exposed: {"framework": "ours", "ranks": 2, "oversubscribed": False,
                                         "allreduce_ms": 600.0, "comm_cost_ms": cost, "exposed_comm_ms": exposed}
            print(overlap_fraction([row(-300.0, 60.0)], "ours"), overlap_fraction([row(150.0, 60.0)], "ours"),
                  overlap_fraction([row(None, 60.0)], "ours"))
            """
        let run = try runProcess(python, ["-c", check],
                                 environment: ["PYTHONPATH": packageRoot.appendingPathComponent("benchmarks").path])
        XCTAssertEqual(run.status, 0, run.output)
        XCTAssertEqual(run.stdout.trimmingCharacters(in: .whitespacesAndNewlines), "0.9 0.75 0.9")
    }

    func testQuickRunWritesTheTableChartAndSummary() throws {
        guard let binary = swiftDPTrainBinary() else {
            throw XCTSkip("release binary not built: run scripts/test.sh (or swift build -c release) first")
        }
        guard findExecutable("mpirun") != nil else { throw XCTSkip("mpirun not installed") }
        guard findExecutable("python3") != nil else { throw XCTSkip("python3 not installed (the report is Python)") }
        let output = try makeTemporaryDirectory("sdt-scale-out")
        let script = packageRoot.appendingPathComponent("benchmarks/scale-out").path
        let outcome = try runProcess("/bin/bash", [script, "--quick", "--output", output.path],
                                     environment: mpirunEnvironment.merging(["SWIFT_DP_TRAIN_BINARY": binary]) { _, new in new },
                                     timeout: 120)
        XCTAssertEqual(outcome.status, 0, "benchmarks/scale-out --quick failed:\n\(outcome.output)")
        guard outcome.status == 0 else { return }
        // Kept for inspection when a check below fails (the path is in the message).
        var passed = false
        defer { if passed { try? FileManager.default.removeItem(at: output) } }

        let csv = try String(contentsOf: output.appendingPathComponent("scale-out.csv"), encoding: .utf8)
        let lines = csv.split(separator: "\n").map { $0.split(separator: ",", omittingEmptySubsequences: false).map(String.init) }
        let header = try XCTUnwrap(lines.first)
        // The columns first, in its order; ours may follow.
        XCTAssertEqual(Array(header.prefix(10)), ["mode", "ranks", "hosts", "link", "images_per_second", "efficiency",
                                                  "compute_ms", "data_wait_ms", "exposed_comm_ms", "optimizer_ms"])
        let rows = lines.dropFirst().map { Dictionary(uniqueKeysWithValues: zip(header, $0)) }
        for mode in ["weak", "strong"] {
            for ranks in ["1", "2"] {
                let row = rows.first { $0["mode"] == mode && $0["ranks"] == ranks && $0["framework"] == "ours" }
                XCTAssertNotNil(row, "no \(mode) row for \(ranks) rank(s) in \(output.path)/scale-out.csv:\n\(csv)\n\(outcome.output)")
                if let row, ranks == "1" { XCTAssertEqual(row["efficiency"], "1.0000", "the 1-rank run is the baseline") }
                if let row, ranks == "2" {
                    XCTAssertEqual(row["link"], "shm")
                    XCTAssertGreaterThan(Double(row["images_per_second"] ?? "") ?? 0, 0)
                }
            }
        }
        let svg = try String(contentsOf: output.appendingPathComponent("scale-out.svg"), encoding: .utf8)
        XCTAssertTrue(svg.hasPrefix("<svg") && svg.contains("</svg>"), "scale-out.svg is not an SVG document")
        let summary = try String(contentsOf: output.appendingPathComponent("summary.md"), encoding: .utf8)
        XCTAssertTrue(summary.contains("## Targets"), summary)
        passed = testRun?.failureCount == 0
    }
}
