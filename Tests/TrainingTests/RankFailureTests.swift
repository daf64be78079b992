import Foundation
import TestSupport
import XCTest

/// A rank killed with SIGKILL in the middle of training: the job ends within 60 s with a
/// non-zero exit and a message naming the lost rank, and no rank is left running (the peers
/// were blocked in an all-reduce with it).
final class RankFailureTests: XCTestCase {
    func testKilledRankEndsTheWholeJob() throws {
        guard let binary = swiftDPTrainBinary() else { throw XCTSkip("release binary not built") }
        guard let mpirun = findExecutable("mpirun") else { throw XCTSkip("mpirun not installed") }
        let scratch = try makeTemporaryDirectory("sdt-kill")
        defer { try? FileManager.default.removeItem(at: scratch) }
        let data = scratch.appendingPathComponent("data"), run = scratch.appendingPathComponent("run")
        try makeTinyImageNetFixture(at: data, classes: 3, trainPerClass: 40, valPerClass: 2, size: 32)

        let process = Process()
        process.executableURL = URL(fileURLWithPath: mpirun)
        process.arguments = ["-np", "2", binary, "train", "--data", data.path, "--image-size", "32", "--batch-size", "4",
                             "--workers", "1", "--epochs", "100", "--log-every", "1", "--quiet", "--output", run.path]
        process.environment = ProcessInfo.processInfo.environment.merging(mpirunEnvironment) { _, new in new }
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let collected = OutputCollector(output.fileHandleForReading)
        defer { if process.isRunning { process.terminate() } }

        // Wait for training to be under way (a few step lines), then kill rank 1.
        let start = Date()
        while (try? metricsLines(run).count) ?? 0 < 3 {
            guard Date().timeIntervalSince(start) < 120, process.isRunning else {
                return XCTFail("training never started:\n\(collected.text)")
            }
            Thread.sleep(forTimeInterval: 0.2)
        }
        let ranks = rankProcesses(marker: run.path)
        guard let victim = ranks[1] else { return XCTFail("no rank 1 among \(ranks):\n\(collected.text)") }
        kill(victim, SIGKILL)
        let killedAt = Date()
        while process.isRunning && Date().timeIntervalSince(killedAt) < 60 { Thread.sleep(forTimeInterval: 0.2) }
        let seconds = Date().timeIntervalSince(killedAt)
        XCTAssertFalse(process.isRunning, "the job still runs 60 s after rank 1 was killed:\n\(collected.text)")
        process.waitUntilExit()
        XCTAssertNotEqual(process.terminationStatus, 0)
        let text = collected.text
        XCTAssertTrue(text.contains("rank 1") && text.contains("signal 9"), "the lost rank is not named:\n\(text)")
        XCTAssertTrue(rankProcesses(marker: run.path).isEmpty, "ranks left running after the job ended")
        print("job ended \(String(format: "%.1f", seconds)) s after rank 1 was killed")
    }
}

/// PIDs of this job's ranks by MPI rank, found through their command lines and environments.
func rankProcesses(marker: String) -> [Int: pid_t] {
    var ranks: [Int: pid_t] = [:]
    for entry in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
        guard let pid = pid_t(entry),
              let cmdline = try? Data(contentsOf: URL(fileURLWithPath: "/proc/\(entry)/cmdline")),
              String(decoding: cmdline, as: UTF8.self).contains(marker),
              let environ = try? Data(contentsOf: URL(fileURLWithPath: "/proc/\(entry)/environ")) else { continue }
        for variable in environ.split(separator: 0) {
            let text = String(decoding: variable, as: UTF8.self)
            if text.hasPrefix("OMPI_COMM_WORLD_RANK="), let rank = Int(text.dropFirst("OMPI_COMM_WORLD_RANK=".count)) {
                ranks[rank] = pid
            }
        }
    }
    return ranks
}

/// Reads a pipe on a background thread so the child never blocks on a full pipe.
final class OutputCollector: @unchecked Sendable {
    private var data = Data()
    private let lock = NSLock()

    init(_ handle: FileHandle) {
        Thread.detachNewThread { [self] in
            while true {
                let chunk = handle.availableData
                if chunk.isEmpty { break }
                lock.lock(); data.append(chunk); lock.unlock()
            }
        }
    }

    var text: String { lock.lock(); defer { lock.unlock() }; return String(decoding: data, as: UTF8.self) }
}
