import Foundation
import NN
import TestSupport
import XCTest

/// Real `mpirun` runs of the release binary on small generated JPEG datasets.
final class MultiProcessTrainingTests: XCTestCase {
    var scratch: URL!

    override func setUpWithError() throws {
        guard swiftDPTrainBinary() != nil else {
            throw XCTSkip("release binary not built: run scripts/test.sh (or swift build -c release) first")
        }
        guard findExecutable("mpirun") != nil else { throw XCTSkip("mpirun not installed") }
        scratch = try makeTemporaryDirectory("sdt-train")
    }

    override func tearDownWithError() throws {
        if let scratch { try? FileManager.default.removeItem(at: scratch) }
    }

    /// Runs `train` under mpirun and fails the test (with the output) on a non-zero exit.
    @discardableResult
    func train(ranks: Int, _ arguments: [String], expectSuccess: Bool = true) throws -> ProcessOutcome {
        let outcome = try runMPI(ranks: ranks, binary: swiftDPTrainBinary()!, ["train"] + arguments, timeout: 300)
        XCTAssertFalse(outcome.timedOut, "mpirun timed out:\n\(outcome.output)")
        if expectSuccess {
            XCTAssertEqual(outcome.status, 0, "training failed:\n\(outcome.output)")
        }
        return outcome
    }

    func dataset(classes: Int = 4, trainPerClass: Int = 48, valPerClass: Int = 10, size: Int = 32) throws -> URL {
        let root = scratch.appendingPathComponent("data")
        try makeTinyImageNetFixture(at: root, classes: classes, trainPerClass: trainPerClass,
                                    valPerClass: valPerClass, size: size)
        return root
    }

    /// The epoch lines of the run's metrics.jsonl (step lines left out).
    func metrics(_ run: URL) throws -> [[String: Any]] {
        try metricsLines(run).filter { $0["kind"] as? String == "epoch" }
    }

    func testTwoRanksLossFallsAndReplicasStayIdentical() throws {
        let data = try dataset()
        let run = scratch.appendingPathComponent("run")
        let outcome = try train(ranks: 2, ["--data", data.path, "--model", "resnet18", "--image-size", "32",
                                           "--batch-size", "16", "--epochs", "4", "--lr", "0.05",
                                           "--output", run.path, "--workers", "1"])
        let lines = try metrics(run)
        XCTAssertEqual(lines.count, 4)
        let first = lines.first!["train_loss"] as! Double, last = lines.last!["train_loss"] as! Double
        XCTAssertLessThan(last, first * 0.8, "loss did not fall: \(lines.map { $0["train_loss"]! })")
        XCTAssertEqual(lines.last!["world_size"] as? Int, 2)
        XCTAssertEqual(lines.last!["val_images"] as? Int, 40, "every validation image counted exactly once")
        XCTAssertTrue(outcome.stdout.contains("replicas: all 2 ranks hold identical weights"), outcome.output)
        XCTAssertTrue(FileManager.default.fileExists(atPath: run.appendingPathComponent("best.safetensors").path))
        XCTAssertTrue(FileManager.default.fileExists(atPath: run.appendingPathComponent("config.json").path))
    }

    /// Without BatchNorm, 2 ranks × batch B must reach the weights of 1 rank × batch 2B.
    func testTwoRanksEqualOneRankWithDoubleBatch() throws {
        let data = try dataset(trainPerClass: 32)
        let common = ["--data", data.path, "--model", "plain_convnet", "--image-size", "32", "--epochs", "2",
                      "--max-steps-per-epoch", "3", "--lr", "0.05", "--momentum", "0.9", "--weight-decay", "1e-3",
                      "--workers", "1", "--threads", "1"]
        let two = scratch.appendingPathComponent("two"), one = scratch.appendingPathComponent("one")
        try train(ranks: 2, common + ["--batch-size", "8", "--output", two.path])
        try train(ranks: 1, common + ["--batch-size", "16", "--output", one.path])
        let a = try SafeTensorsFile.read(path: two.appendingPathComponent("last.safetensors").path)
        let b = try SafeTensorsFile.read(path: one.appendingPathComponent("last.safetensors").path)
        XCTAssertEqual(Set(a.tensors.keys), Set(b.tensors.keys))
        var checked = 0
        for (name, ra) in a.tensors where ra.dtype == .f32 {
            let x = try ra.floats(), y = try b.tensors[name]!.floats()
            let scale = x.map { abs($0) }.max() ?? 0
            let worst = zip(x, y).map { abs($0 - $1) }.max() ?? 0
            print("\(name): max |2×B − 1×2B| = \(worst) (scale \(scale))")
            XCTAssertLessThanOrEqual(worst, 1e-5 * scale + 1e-7, name)
            checked += 1
        }
        XCTAssertGreaterThan(checked, 0)
    }

    /// With --sync-bn, BatchNorm sees the global batch: 2 ranks × B reach the weights and
    /// running statistics of 1 rank × 2B (each rank's block of the global batch is half of the
    /// single rank's batch). Without it they do not, which shows the test can tell.
    func testSyncBatchNormTwoRanksEqualOneRankWithDoubleBatch() throws {
        let data = try dataset(trainPerClass: 32)
        // One step: its running statistics show the forward's global statistics, its weights
        // the backward's global sums. The summation order differs (per rank, then across
        // ranks), and in a BatchNorm network on tiny batches that rounding grows fast (on the
        // built-in dataset at lr 0.05: 8e-8 after one step, 7e-6 after three, 0.3 after six),
        // so longer runs would compare chaos, not the statistics.
        let common = ["--data", data.path, "--model", "resnet18", "--image-size", "32", "--epochs", "1",
                      "--max-steps-per-epoch", "1", "--lr", "0.05", "--workers", "1", "--threads", "1", "--quiet"]
        let synced = scratch.appendingPathComponent("synced"), unsynced = scratch.appendingPathComponent("unsynced")
        let one = scratch.appendingPathComponent("one")
        try train(ranks: 2, common + ["--batch-size", "8", "--sync-bn", "--output", synced.path])
        try train(ranks: 2, common + ["--batch-size", "8", "--output", unsynced.path])
        try train(ranks: 1, common + ["--batch-size", "16", "--output", one.path])
        let reference = try SafeTensorsFile.read(path: one.appendingPathComponent("last.safetensors").path)
        func worstRelative(_ run: URL) throws -> (Float, String) {
            let file = try SafeTensorsFile.read(path: run.appendingPathComponent("last.safetensors").path)
            var worst: (Float, String) = (0, "")
            for (name, r) in reference.tensors where r.dtype == .f32 && !name.hasPrefix("optimizer.") {
                let x = try r.floats(), y = try file.tensors[name]!.floats()
                let scale = max(x.map { abs($0) }.max() ?? 0, 1e-3)
                let difference = (zip(x, y).map { abs($0 - $1) }.max() ?? 0) / scale
                if difference > worst.0 { worst = (difference, name) }
            }
            return worst
        }
        let (syncedWorst, syncedName) = try worstRelative(synced)
        let (unsyncedWorst, unsyncedName) = try worstRelative(unsynced)
        print("largest relative difference from 1 rank × 16: --sync-bn \(syncedWorst) (\(syncedName)), without \(unsyncedWorst) (\(unsyncedName))")
        XCTAssertLessThan(syncedWorst, 1e-5, syncedName)
        XCTAssertGreaterThan(unsyncedWorst, 1e-2, "per-rank statistics should differ from the global batch's")
    }

    /// Overlapping the all-reduce with backward changes when the sums run, not what they are:
    /// with small buckets (dozens per step), `--overlap nonblocking` and `thread` end bit for
    /// bit where `off` ends, with and without fp16 compression and with --sync-bn (whose own
    /// all-reduces then run inside backward beside the started bucket sums).
    func testOverlapModesReachTheSameWeights() throws {
        let data = try dataset(trainPerClass: 16)
        let common = ["--data", data.path, "--model", "resnet18", "--image-size", "32", "--batch-size", "8",
                      "--epochs", "1", "--max-steps-per-epoch", "3", "--lr", "0.05", "--workers", "1", "--threads", "1",
                      "--bucket-mb", "0.25", "--quiet"]
        func weights(_ name: String, _ extra: [String]) throws -> SafeTensorsFile {
            let run = scratch.appendingPathComponent(name)
            try train(ranks: 2, common + extra + ["--output", run.path])
            return try SafeTensorsFile.read(path: run.appendingPathComponent("last.safetensors").path)
        }
        func assertIdentical(_ a: SafeTensorsFile, _ b: SafeTensorsFile, _ what: String) {
            XCTAssertEqual(Set(a.tensors.keys), Set(b.tensors.keys))
            for (name, ra) in a.tensors {
                XCTAssertEqual(ra.data, b.tensors[name]?.data, "\(what): \(name) differs")
            }
        }
        let off = try weights("off", ["--overlap", "off"])
        assertIdentical(off, try weights("nonblocking", ["--overlap", "nonblocking"]), "nonblocking")
        assertIdentical(off, try weights("thread", ["--overlap", "thread"]), "thread")
        assertIdentical(try weights("off-fp16", ["--overlap", "off", "--grad-compression", "fp16"]),
                        try weights("nonblocking-fp16", ["--overlap", "nonblocking", "--grad-compression", "fp16"]), "fp16")
        assertIdentical(try weights("off-sync", ["--overlap", "off", "--sync-bn"]),
                        try weights("thread-sync", ["--overlap", "thread", "--sync-bn"]), "sync-bn")
    }

    /// A run interrupted after epoch 1 and resumed ends bit for bit where an uninterrupted run ends.
    func testResumeIsBitExact() throws {
        let data = try dataset(trainPerClass: 24)
        let common = ["--data", data.path, "--model", "resnet18", "--image-size", "32", "--batch-size", "8",
                      "--epochs", "3", "--max-steps-per-epoch", "3", "--workers", "2", "--lr", "0.05"]
        let whole = scratch.appendingPathComponent("whole"), parts = scratch.appendingPathComponent("parts")
        try train(ranks: 2, common + ["--output", whole.path])
        let stopped = try train(ranks: 2, common + ["--output", parts.path, "--interrupt-after-epoch", "1"])
        XCTAssertTrue(stopped.stdout.contains("stopping after epoch 1"), stopped.output)
        try train(ranks: 2, common + ["--resume", parts.appendingPathComponent("last.safetensors").path])
        let a = try SafeTensorsFile.read(path: whole.appendingPathComponent("last.safetensors").path)
        let b = try SafeTensorsFile.read(path: parts.appendingPathComponent("last.safetensors").path)
        XCTAssertEqual(Set(a.tensors.keys), Set(b.tensors.keys))
        XCTAssertTrue(a.tensors.keys.contains("optimizer.momentum_buffer.fc.weight"))
        for (name, ra) in a.tensors {
            XCTAssertEqual(ra.data, b.tensors[name]!.data, "\(name) differs after resume")
        }
        XCTAssertEqual(try metrics(parts).count, 3)
    }

    func testMissingDatasetIsOneClearErrorAndNoHang() throws {
        let missing = scratch.appendingPathComponent("no-such-dataset").path
        let outcome = try train(ranks: 2, ["--data", missing, "--output", scratch.appendingPathComponent("r").path],
                                expectSuccess: false)
        XCTAssertNotEqual(outcome.status, 0)
        let errors = outcome.stderr.split(separator: "\n").filter { $0.hasPrefix("error:") }
        let host = ProcessInfo.processInfo.hostName
        XCTAssertEqual(errors, ["error: rank 0 on \(host) (and 1 other rank(s)): \(missing): dataset directory not found"],
                       outcome.output)
        XCTAssertFalse(outcome.output.contains("MPI_ABORT"), "set-up errors end the job cleanly:\n\(outcome.output)")
    }

    func testCorruptImageIsSkippedAndCounted() throws {
        let data = try dataset(classes: 2, trainPerClass: 16, valPerClass: 4)
        let classDir = try FileManager.default.contentsOfDirectory(atPath: data.appendingPathComponent("train").path)
            .sorted().first!
        let bad = data.appendingPathComponent("train/\(classDir)/images/zz_corrupt.JPEG")
        try Data([0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10, 0x4A, 0x46]).write(to: bad)
        let run = scratch.appendingPathComponent("run")
        let outcome = try train(ranks: 2, ["--data", data.path, "--model", "plain_convnet", "--image-size", "32",
                                           "--batch-size", "8", "--epochs", "1", "--output", run.path])
        XCTAssertTrue(outcome.stderr.contains("zz_corrupt.JPEG"), outcome.output)
        XCTAssertEqual(try metrics(run).last!["skipped_images"] as? Int, 1)
    }

    /// export drops the optimizer state; --pretrained loads strictly and replaces a head of
    /// another size; a file for another architecture is refused with the names that differ.
    func testExportThenFineTuneFromPretrained() throws {
        let data = try dataset(trainPerClass: 16, valPerClass: 4)
        let run = scratch.appendingPathComponent("run")
        let common = ["--data", data.path, "--model", "plain_convnet", "--image-size", "32", "--batch-size", "8",
                      "--epochs", "1", "--max-steps-per-epoch", "2"]
        try train(ranks: 2, common + ["--output", run.path])
        let exported = scratch.appendingPathComponent("weights.safetensors").path
        let export = try runProcess(swiftDPTrainBinary()!, ["export", "--checkpoint",
                                    run.appendingPathComponent("last.safetensors").path, "--output", exported])
        XCTAssertEqual(export.status, 0, export.output)
        let checkpoint = try SafeTensorsFile.read(path: run.appendingPathComponent("last.safetensors").path)
        let weights = try SafeTensorsFile.read(path: exported)
        XCTAssertEqual(weights.metadata["format"], "pt")
        XCTAssertEqual(Set(weights.tensors.keys), Set(checkpoint.tensors.keys.filter { !$0.hasPrefix("optimizer.") }))
        for (name, record) in weights.tensors { XCTAssertEqual(record, checkpoint.tensors[name], name) }

        // Fine-tune into 7 classes with a learning rate too small to move the weights.
        let tuned = scratch.appendingPathComponent("tuned")
        let outcome = try train(ranks: 2, common + ["--output", tuned.path, "--pretrained", exported,
                                                    "--num-classes", "7", "--lr", "1e-9", "--warmup-epochs", "0"])
        XCTAssertTrue(outcome.stdout.contains("replacing the head"), outcome.output)
        let after = try SafeTensorsFile.read(path: tuned.appendingPathComponent("last.safetensors").path)
        XCTAssertEqual(after.tensors["fc.weight"]!.shape, [7, 32])
        let before = try weights.tensors["conv2.weight"]!.floats(), now = try after.tensors["conv2.weight"]!.floats()
        XCTAssertLessThan(zip(before, now).map { abs($0 - $1) }.max()!, 1e-6)

        let refused = try train(ranks: 2, ["--data", data.path, "--model", "resnet18", "--pretrained", exported,
                                           "--output", scratch.appendingPathComponent("x").path], expectSuccess: false)
        XCTAssertNotEqual(refused.status, 0)
        XCTAssertTrue(refused.stderr.contains("\(exported): state dict does not match the model: missing"), refused.output)
        XCTAssertTrue(refused.stderr.contains("unexpected conv1.bias"), refused.output)
    }
}
