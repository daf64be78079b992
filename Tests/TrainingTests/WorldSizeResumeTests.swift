import Foundation
import NN
import TestSupport
import XCTest

/// A checkpoint written mid-epoch by 4 ranks resumes on 2 and on 1 with the global batch kept
/// (batch × accumulation): every global step trains on the same samples as the uninterrupted
/// 4-rank run, no sample is repeated or skipped, and the weights agree up to float rounding
/// (the micro-batches are the same images; only the order of the gradient sums differs).
final class WorldSizeResumeTests: XCTestCase {
    func testFourRankCheckpointResumesOnTwoAndOneRanks() throws {
        guard let binary = swiftDPTrainBinary() else { throw XCTSkip("release binary not built") }
        let scratch = try makeTemporaryDirectory("sdt-world")
        defer { try? FileManager.default.removeItem(at: scratch) }
        let data = scratch.appendingPathComponent("data")
        try makeTinyImageNetFixture(at: data, classes: 3, trainPerClass: 16, valPerClass: 2, size: 32)
        // 48 images, 4 ranks × batch 4 = global batch 16: 3 steps per epoch.
        func arguments(_ run: URL) -> [String] {
            ["train", "--data", data.path, "--image-size", "32", "--batch-size", "4", "--workers", "1", "--epochs", "2",
             "--lr", "0.05", "--lr-schedule", "constant", "--warmup-epochs", "0", "--log-every", "1",
             "--checkpoint-every", "1", "--quiet", "--no-tensorboard", "--output", run.path,
             "--trace-samples", run.appendingPathComponent("trace").path]
        }
        func prepare(_ run: URL) throws -> URL {
            try FileManager.default.createDirectory(at: run.appendingPathComponent("trace"), withIntermediateDirectories: true)
            return run
        }
        let whole = try prepare(scratch.appendingPathComponent("whole"))
        let onTwo = try prepare(scratch.appendingPathComponent("two"))
        let onOne = scratch.appendingPathComponent("one")

        let reference = try runMPI(ranks: 4, binary: binary, arguments(whole))
        XCTAssertEqual(reference.status, 0, reference.output)
        let stopped = try runMPI(ranks: 4, binary: binary, arguments(onTwo) + ["--interrupt-after-step", "4"])
        XCTAssertEqual(stopped.status, 0, stopped.output)
        try FileManager.default.copyItem(at: onTwo, to: onOne)
        let scaled = scratch.appendingPathComponent("scaled")
        try FileManager.default.copyItem(at: onTwo, to: scaled)

        let two = try runMPI(ranks: 2, binary: binary, arguments(onTwo) + ["--resume", "auto"])
        XCTAssertEqual(two.status, 0, two.output)
        XCTAssertTrue(two.stdout.contains("resuming a checkpoint of 4 rank(s) with global batch 16 on 2 rank(s): "
                                          + "global batch kept as 2 rank(s) × batch 4 × 2 accumulated"), two.output)
        let one = try runProcess(binary, arguments(onOne) + ["--resume", "auto"], timeout: 180)
        XCTAssertEqual(one.status, 0, one.output)
        XCTAssertTrue(one.stdout.contains("on 1 rank(s): global batch kept as 1 rank(s) × batch 4 × 4 accumulated"), one.output)

        try checkScaledResume(scaled, arguments: arguments(scaled), binary: binary)

        let expected = try samplesByStep(whole)
        XCTAssertEqual(expected.keys.sorted(), Array(1...6))
        for epoch in 0..<2 {
            let seen = expected.filter { ($0.key - 1) / 3 == epoch }.values.flatMap { $0 }.sorted()
            XCTAssertEqual(seen, Array(0..<48), "epoch \(epoch + 1) trains on every sample once")
        }
        for run in [onTwo, onOne] {
            XCTAssertEqual(try samplesByStep(run), expected, "\(run.lastPathComponent): the same samples at every step")
            let a = try SafeTensorsFile.read(path: whole.appendingPathComponent("last.safetensors").path)
            let b = try SafeTensorsFile.read(path: run.appendingPathComponent("last.safetensors").path)
            var largest: Float = 0
            for name in a.names where !name.hasPrefix("optimizer.") && name.hasSuffix(".weight") {
                for (x, y) in zip(try a.tensors[name]!.floats(), try b.tensors[name]!.floats()) { largest = max(largest, abs(x - y)) }
            }
            XCTAssertLessThan(largest, 1e-4, "\(run.lastPathComponent): weights drift from the 4-rank run")
            print("\(run.lastPathComponent): largest weight difference from the uninterrupted 4-rank run \(largest)")
        }
    }

    /// `scale-lr`: the per-rank batch stays, so the global batch halves and so does the LR;
    /// the epoch still sees every sample once (steps renumbered in the smaller steps).
    func checkScaledResume(_ run: URL, arguments: [String], binary: String) throws {
        let resumed = try runMPI(ranks: 2, binary: binary, arguments + ["--resume", "auto", "--on-world-size-change", "scale-lr"])
        XCTAssertEqual(resumed.status, 0, resumed.output)
        XCTAssertTrue(resumed.stdout.contains("on 2 rank(s) × batch 4 = global batch 8; learning rate × 0.5"), resumed.output)
        var secondEpoch: [Int] = [], steps = Set<Int>()
        for name in try FileManager.default.contentsOfDirectory(atPath: run.appendingPathComponent("trace").path) {
            let text = try String(contentsOf: run.appendingPathComponent("trace/" + name), encoding: .utf8)
            for line in text.split(separator: "\n") {
                let fields = line.split(separator: " ").compactMap { Int($0) }
                if fields[0] == 1 { secondEpoch.append(fields[2]); steps.insert(fields[1]) }
            }
        }
        XCTAssertEqual(secondEpoch.sorted(), Array(0..<48), "epoch 2 trains on every sample once across the change")
        // Step 4 of 4 × 4 ran before; in steps of 8 images, epoch 1 is 6 steps and 16 images of epoch 2 two more.
        XCTAssertEqual(steps.sorted(), [4, 9, 10, 11, 12])
        // The halved LR holds in the resumed steps, and in a later resume on the same ranks.
        var threeEpochs = arguments
        threeEpochs[threeEpochs.firstIndex(of: "--epochs")! + 1] = "3"
        let more = try runMPI(ranks: 2, binary: binary, threeEpochs + ["--resume", "auto", "--on-world-size-change", "scale-lr"])
        XCTAssertEqual(more.status, 0, more.output)
        let rates = try metricsLines(run).filter { $0["kind"] as? String == "step" }.map { ($0["step"] as! Int, $0["lr"] as! Double) }
        for (step, lr) in rates { XCTAssertEqual(lr, step <= 4 ? 0.05 : 0.025, accuracy: 1e-9, "step \(step)") }
        XCTAssertEqual(rates.last?.0, 18, "epoch 3 ran: 6 steps of 8 images")
    }

    /// Global step → the samples all ranks trained on in it, sorted.
    func samplesByStep(_ run: URL) throws -> [Int: [Int]] {
        let trace = run.appendingPathComponent("trace")
        var steps: [Int: [Int]] = [:]
        for name in try FileManager.default.contentsOfDirectory(atPath: trace.path) {
            let text = try String(contentsOf: trace.appendingPathComponent(name), encoding: .utf8)
            for line in text.split(separator: "\n") {
                let fields = line.split(separator: " ").compactMap { Int($0) }
                steps[fields[1], default: []].append(fields[2])
            }
        }
        return steps.mapValues { $0.sorted() }
    }
}
