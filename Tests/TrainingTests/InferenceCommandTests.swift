import Foundation
import NN
import TestSupport
import XCTest

/// `eval`, `predict` and frozen-backbone fine-tuning, run as users run them (the release
/// binary, under mpirun where it matters), on small generated JPEG datasets.
final class InferenceCommandTests: XCTestCase {
    var scratch: URL!
    var binary: String!

    override func setUpWithError() throws {
        guard let binary = swiftDPTrainBinary() else {
            throw XCTSkip("release binary not built: run scripts/test.sh (or swift build -c release) first")
        }
        guard findExecutable("mpirun") != nil else { throw XCTSkip("mpirun not installed") }
        self.binary = binary
        scratch = try makeTemporaryDirectory("sdt-infer")
    }

    override func tearDownWithError() throws {
        if let scratch { try? FileManager.default.removeItem(at: scratch) }
    }

    func mpi(_ ranks: Int, _ arguments: [String]) throws -> ProcessOutcome {
        let outcome = try runMPI(ranks: ranks, binary: binary, arguments, timeout: 300)
        XCTAssertFalse(outcome.timedOut, outcome.output)
        return outcome
    }

    func json(_ path: URL) throws -> [String: Any] {
        try JSONSerialization.jsonObject(with: Data(contentsOf: path)) as! [String: Any]
    }

    /// A short 2-rank training run on a 4-class fixture; returns (data, run directory).
    func trainedRun(model: String = "plain_convnet", extra: [String] = []) throws -> (URL, URL) {
        let data = scratch.appendingPathComponent("data")
        if !FileManager.default.fileExists(atPath: data.path) {
            try makeTinyImageNetFixture(at: data, classes: 4, trainPerClass: 24, valPerClass: 9, size: 32)
        }
        let run = scratch.appendingPathComponent("run-\(model)-\(extra.count)")
        let outcome = try mpi(2, ["train", "--data", data.path, "--model", model, "--image-size", "32",
                                  "--batch-size", "8", "--epochs", "2", "--lr", "0.05", "--output", run.path] + extra)
        XCTAssertEqual(outcome.status, 0, outcome.output)
        return (data, run)
    }

    /// `eval` of a checkpoint reproduces the trainer's own validation numbers exactly, with 1
    /// rank or 3 (every image once), and exported weights give the same.
    func testEvalReproducesTrainingValidation() throws {
        let (data, run) = try trainedRun()
        let lines = try String(contentsOf: run.appendingPathComponent("metrics.jsonl"), encoding: .utf8)
            .split(separator: "\n")
        let last = try JSONSerialization.jsonObject(with: Data(lines.last!.utf8)) as! [String: Any]
        let checkpoint = run.appendingPathComponent("last.safetensors").path

        for ranks in [1, 3] {
            let out = scratch.appendingPathComponent("eval-\(ranks).json")
            let outcome = try mpi(ranks, ["eval", "--data", data.path, "--checkpoint", checkpoint,
                                          "--json", out.path, "--workers", "1"])
            XCTAssertEqual(outcome.status, 0, outcome.output)
            let result = try json(out)
            XCTAssertEqual(result["count"] as? Int, 36, "every validation image once with \(ranks) rank(s)")
            XCTAssertEqual(result["top1"] as! Double, last["val_top1"] as! Double, accuracy: 1e-12)
            XCTAssertEqual(result["top5"] as! Double, last["val_top5"] as! Double, accuracy: 1e-12)
            XCTAssertEqual(result["loss"] as! Double, last["val_loss"] as! Double, accuracy: 1e-5)
            XCTAssertTrue(outcome.stdout.contains("top-1"), outcome.output)
        }

        let weights = scratch.appendingPathComponent("w.safetensors").path
        XCTAssertEqual(try runProcess(binary, ["export", "--checkpoint", checkpoint, "--output", weights]).status, 0)
        let out = scratch.appendingPathComponent("eval-weights.json")
        // The export keeps the training size, so no --image-size is needed.
        let outcome = try runProcess(binary, ["eval", "--data", data.path, "--weights", weights, "--json", out.path])
        XCTAssertEqual(outcome.status, 0, outcome.output)
        XCTAssertEqual(try json(out)["top1"] as! Double, last["val_top1"] as! Double, accuracy: 1e-12)

        let wrong = try runProcess(binary, ["eval", "--data", data.path, "--weights", weights, "--model", "resnet18"])
        XCTAssertNotEqual(wrong.status, 0)
        XCTAssertTrue(wrong.stderr.contains("holds a plain_convnet, not a resnet18"), wrong.output)
    }

    /// `predict --json`: one object per image, probabilities sorted and summing to at most 1,
    /// class names from the checkpoint; a missing file is named and makes the exit non-zero,
    /// but the other images are still classified.
    func testPredictPrintsRankedClassesAndNamesBadFiles() throws {
        let (data, run) = try trainedRun()
        let checkpoint = run.appendingPathComponent("best.safetensors").path
        let images = try FileManager.default.contentsOfDirectory(atPath: data.appendingPathComponent("val/images").path)
            .sorted().prefix(2).map { data.appendingPathComponent("val/images/\($0)").path }
        let missing = scratch.appendingPathComponent("missing.jpg").path
        let outcome = try runProcess(binary, ["predict", "--checkpoint", checkpoint, "--json", "--top", "3",
                                              images[0], missing, images[1]])
        XCTAssertEqual(outcome.status, 1, outcome.output)
        XCTAssertTrue(outcome.stderr.contains("error: \(missing): cannot read the file"), outcome.output)
        let objects = outcome.stdout.split(separator: "\n").map {
            try! JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any]
        }
        XCTAssertEqual(objects.map { $0["file"] as? String }, images)
        let wnids = (0..<4).map { String(format: "n%08d", 1000 + $0) }
        for object in objects {
            let top = object["top"] as! [[String: Any]]
            XCTAssertEqual(top.count, 3)
            let p = top.map { $0["probability"] as! Double }
            XCTAssertEqual(p, p.sorted(by: >))
            XCTAssertLessThanOrEqual(p.reduce(0, +), 1 + 1e-9)
            for entry in top {
                XCTAssertEqual(entry["class"] as? String, wnids[entry["index"] as! Int])
            }
        }

        let text = try runProcess(binary, ["predict", "--checkpoint", checkpoint, "--classes",
                                           data.appendingPathComponent("wnids.txt").path, images[0]])
        XCTAssertEqual(text.status, 0, text.output)
        XCTAssertTrue(text.stdout.contains("%") && text.stdout.contains("n00001000"), text.output)
    }

    /// The tutorial's fine-tuning: one class-per-folder directory split by --val-split, a
    /// --freeze-backbone run with an MLP head on 2 ranks. The backbone's weights and BatchNorm
    /// statistics come out bit for bit as loaded, the head trains, and `eval` with the same
    /// split reproduces the run's validation numbers.
    func testFrozenBackboneTrainsOnlyTheHead() throws {
        let (data, run) = try trainedRun(model: "resnet18", extra: ["--max-steps-per-epoch", "2", "--stem", "small"])
        let weights = scratch.appendingPathComponent("backbone.safetensors").path
        XCTAssertEqual(try runProcess(binary, ["export", "--checkpoint", run.appendingPathComponent("last.safetensors").path,
                                               "--output", weights]).status, 0)
        let tuned = scratch.appendingPathComponent("tuned")
        // train/ holds class folders (wnid/images/*.JPEG): an ImageFolder tree, detected as such.
        let split = ["--data", data.appendingPathComponent("train").path, "--val-split", "0.25", "--split-seed", "3"]
        let outcome = try mpi(2, ["train"] + split + ["--model", "resnet18", "--stem", "small",
                                  "--image-size", "32", "--batch-size", "8", "--epochs", "2", "--lr", "0.05",
                                  "--max-steps-per-epoch", "3", "--pretrained", weights, "--freeze-backbone",
                                  "--head", "mlp:16", "--output", tuned.path])
        XCTAssertEqual(outcome.status, 0, outcome.output)
        XCTAssertTrue(outcome.stdout.contains("replacing the head"), outcome.output)
        XCTAssertTrue(outcome.stdout.contains("backbone frozen"), outcome.output)
        XCTAssertTrue(outcome.stdout.contains("72 training / 24 validation images (imagefolder layout)"), outcome.output)
        XCTAssertTrue(outcome.stdout.contains("replicas: all 2 ranks hold identical weights"), outcome.output)

        let before = try SafeTensorsFile.read(path: weights)
        let after = try SafeTensorsFile.read(path: tuned.appendingPathComponent("last.safetensors").path)
        var compared = 0
        for (name, record) in before.tensors where !name.hasPrefix("fc.") {
            XCTAssertEqual(after.tensors[name], record, "\(name) changed although the backbone is frozen")
            compared += 1
        }
        XCTAssertGreaterThan(compared, 100)
        XCTAssertEqual(after.tensors["fc.0.weight"]?.shape, [16, 512])
        XCTAssertEqual(after.tensors["fc.3.weight"]?.shape, [4, 16])
        XCTAssertNil(after.tensors["fc.weight"])
        // The head moved: its momentum is non-zero, the backbone's is exactly zero.
        let headMomentum = try after.tensors["optimizer.momentum_buffer.fc.3.weight"]!.floats()
        XCTAssertTrue(headMomentum.contains { $0 != 0 })
        let frozenMomentum = try after.tensors["optimizer.momentum_buffer.layer4.1.conv2.weight"]!.floats()
        XCTAssertTrue(frozenMomentum.allSatisfy { $0 == 0 })

        let result = scratch.appendingPathComponent("split-eval.json")
        let check = try runProcess(binary, ["eval"] + split + ["--checkpoint", tuned.appendingPathComponent("last.safetensors").path,
                                                               "--json", result.path])
        XCTAssertEqual(check.status, 0, check.output)
        XCTAssertTrue(check.stdout.contains("mlp:16 head"), check.output)
        let lines = try String(contentsOf: tuned.appendingPathComponent("metrics.jsonl"), encoding: .utf8).split(separator: "\n")
        let last = try JSONSerialization.jsonObject(with: Data(lines.last!.utf8)) as! [String: Any]
        XCTAssertEqual(try json(result)["count"] as? Int, 24)
        XCTAssertEqual(try json(result)["top1"] as! Double, last["val_top1"] as! Double, accuracy: 1e-12)
    }
}
