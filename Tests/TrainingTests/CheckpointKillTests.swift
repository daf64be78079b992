import Foundation
import NN
import TestSupport
import Training
import XCTest

/// A run killed half-way through writing a checkpoint: the previous checkpoint stays whole
/// (the write goes to a temporary file renamed over it only when complete), `--resume auto`
/// continues from it, and the half-written leftover is cleaned up.
final class CheckpointKillTests: XCTestCase {
    func testKillDuringACheckpointWriteKeepsThePreviousOne() throws {
        guard let binary = swiftDPTrainBinary() else { throw XCTSkip("release binary not built") }
        let scratch = try makeTemporaryDirectory("sdt-killwrite")
        defer { try? FileManager.default.removeItem(at: scratch) }
        let data = scratch.appendingPathComponent("data"), run = scratch.appendingPathComponent("run")
        try makeTinyImageNetFixture(at: data, classes: 3, trainPerClass: 8, valPerClass: 2, size: 32)
        let arguments = ["train", "--data", data.path, "--image-size", "32", "--batch-size", "8", "--workers", "1",
                         "--epochs", "3", "--quiet", "--no-tensorboard", "--output", run.path]

        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = arguments
        // Every write pauses half-way, so the kill can land inside one.
        process.environment = ProcessInfo.processInfo.environment.merging(["SWIFT_DP_TRAIN_TEST_PAUSE_MID_WRITE": "1"]) { _, new in new }
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        defer { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }

        // last.safetensors exists (epoch 1) while its replacement is being written (epoch 2).
        let last = run.appendingPathComponent("last.safetensors").path
        var partial: String?
        let start = Date()
        while partial == nil {
            guard process.isRunning, Date().timeIntervalSince(start) < 120 else { return XCTFail("never caught a write of epoch 2") }
            let names = (try? FileManager.default.contentsOfDirectory(atPath: run.path)) ?? []
            if FileManager.default.fileExists(atPath: last), let temporary = names.first(where: { $0.hasPrefix(".last.safetensors.tmp-") }) {
                partial = run.appendingPathComponent(temporary).path
            } else {
                Thread.sleep(forTimeInterval: 0.05)
            }
        }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()

        let kept = try SafeTensorsFile.read(path: last)
        let state = try JSONDecoder().decode(TrainingState.self, from: Data(kept.metadata["swift_dp_train.state"]!.utf8))
        XCTAssertEqual(state.epoch, 1, "last.safetensors is still epoch 1's, whole")
        let size = { (path: String) in (try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0 }
        XCTAssertLessThan(try size(partial!), try size(last), "the kill landed mid-write")
        XCTAssertThrowsError(try SafeTensorsFile.read(path: partial!), "the leftover is a torn file")

        let resumed = try runProcess(binary, arguments + ["--resume", "auto"], timeout: 180)
        XCTAssertEqual(resumed.status, 0, resumed.output)
        XCTAssertTrue(resumed.stdout.contains("removed 1 unfinished write(s) left by a killed run"), resumed.output)
        XCTAssertTrue(resumed.stdout.contains("resuming from \(last): epoch 2"), resumed.output)
        let names = try FileManager.default.contentsOfDirectory(atPath: run.path)
        XCTAssertFalse(names.contains { $0.contains(".tmp-") }, "\(names)")
        let final = try SafeTensorsFile.read(path: last)
        let finalState = try JSONDecoder().decode(TrainingState.self, from: Data(final.metadata["swift_dp_train.state"]!.utf8))
        XCTAssertEqual(finalState.epoch, 3)
    }
}
