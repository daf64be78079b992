import Foundation
import DataPipeline
import NN
import TestSupport
import Training
import XCTest

/// `train --color-jitter 0.4 --auto-augment trivial-augment-wide` end to end on the built-in
/// dataset (one process, 16 px crops, two steps: a few seconds a run).
final class AugmentTrainingTests: XCTestCase {
    var scratch: URL!

    override func setUpWithError() throws {
        guard swiftDPTrainBinary() != nil else { throw XCTSkip("release binary not built") }
        scratch = try makeTemporaryDirectory("sdt-augment-train")
    }

    override func tearDownWithError() throws {
        if let scratch { try? FileManager.default.removeItem(at: scratch) }
    }

    private func train(_ name: String, _ arguments: [String]) throws -> [String: [Float]] {
        let run = scratch.appendingPathComponent(name)
        let outcome = try runProcess(swiftDPTrainBinary()!, ["train", "--epochs", "1", "--max-steps-per-epoch", "2",
            "--batch-size", "8", "--image-size", "16", "--stem", "small", "--threads", "1", "--quiet",
            "--no-tensorboard", "--output", run.path] + arguments,
            environment: ["SWIFT_DP_TRAIN_CACHE": scratch.appendingPathComponent("cache").path], timeout: 300)
        XCTAssertFalse(outcome.timedOut, outcome.output)
        XCTAssertEqual(outcome.status, 0, outcome.output)
        let file = try SafeTensorsFile.read(path: run.appendingPathComponent("last.safetensors").path)
        var tensors: [String: [Float]] = [:]
        for (key, record) in file.tensors where record.dtype == .f32 { tensors[key] = try record.floats() }
        return tensors
    }

    /// The run trains with both augmentations and records them in config.json; the same seed
    /// gives the same weights with one decode worker or two (the draws follow the sample, not
    /// the thread); and the augmentations change what the model saw.
    func testTrainWithColorJitterAndTrivialAugmentWide() throws {
        let flags = ["--color-jitter", "0.4", "--auto-augment", "trivial-augment-wide"]
        let two = try train("two-workers", flags + ["--workers", "2"])
        let config = try TrainConfig.decode(from: Data(contentsOf: scratch.appendingPathComponent("two-workers/config.json")))
        XCTAssertEqual(config.colorJitter, [0.4, 0.4, 0.4, 0])
        XCTAssertEqual(config.autoAugment, "trivial-augment-wide")
        XCTAssertFalse(two.isEmpty)

        let one = try train("one-worker", flags + ["--workers", "1"])
        XCTAssertEqual(Set(one.keys), Set(two.keys))
        for (key, values) in two { XCTAssertEqual(one[key], values, "\(key) depends on the worker count") }

        let plain = try train("plain", ["--workers", "2"])
        XCTAssertTrue(two.contains { plain[$0.key] != $0.value }, "the augmentations changed nothing")
    }
}

/// `--color-jitter` and `--auto-augment`: parsing, validation, the transform they build, and
/// the same keys in a --config file.
final class AugmentOptionTests: XCTestCase {
    func testColorJitterTextAndTheTransformItBuilds() throws {
        XCTAssertEqual(try TrainConfig.parseColorJitter("0.4"), [0.4, 0.4, 0.4, 0])
        XCTAssertEqual(try TrainConfig.parseColorJitter("0.1, 0.2,0.3,0.05"), [0.1, 0.2, 0.3, 0.05])
        for bad in ["", "0.4,0.1", "a", "0.1,0.2,0.3,0.4,0.5", "0.1,,0.3,0.4"] {
            XCTAssertThrowsError(try TrainConfig.parseColorJitter(bad), bad)
        }
        var config = TrainConfig()
        XCTAssertFalse(try config.trainTransform().augments, "augmentations must be off by default")
        config.colorJitter = [0.4, 0.3, 0.2, 0.1]
        config.autoAugment = "trivial-augment-wide"
        let transform = try config.trainTransform()
        XCTAssertEqual(transform.colorJitter, ColorJitter(brightness: 0.4, contrast: 0.3, saturation: 0.2, hue: 0.1))
        XCTAssertEqual(transform.autoAugment, .trivialAugmentWide)
        config.colorJitter = [0, 0, 0, 0]
        XCTAssertNil(try config.trainTransform().colorJitter, "all-zero jitter is off")
        for (jitter, augment, message) in [([Float](arrayLiteral: 0.4, 0.4, 0.4, 0.7), "none", "at most 0.5"),
                                           ([-0.1, 0, 0, 0], "none", "≥ 0"),
                                           ([0.4, 0.4, 0.4, 0], "rand-augment", "unknown --auto-augment 'rand-augment'")] {
            config.colorJitter = jitter
            config.autoAugment = augment
            XCTAssertThrowsError(try config.validate()) { XCTAssertTrue("\($0)".contains(message), "\($0)") }
        }
    }

    func testConfigFileKeys() throws {
        guard let binary = swiftDPTrainBinary() else { throw XCTSkip("release binary not built") }
        let scratch = try makeTemporaryDirectory("sdt-augment-config")
        defer { try? FileManager.default.removeItem(at: scratch) }
        let file = scratch.appendingPathComponent("augment.yaml")
        try "color-jitter: [0.3, 0.3, 0.2, 0.05]\nauto-augment: trivial-augment-wide\n"
            .write(to: file, atomically: true, encoding: .utf8)
        let outcome = try runProcess(binary, ["train", "--config", file.path, "--print-config"])
        XCTAssertEqual(outcome.status, 0, outcome.output)
        let config = try TrainConfig.decode(from: Data(outcome.stdout.utf8))
        XCTAssertEqual(config.colorJitter, [0.3, 0.3, 0.2, 0.05])
        XCTAssertEqual(config.autoAugment, "trivial-augment-wide")
        // A config saved before these options existed reads back with them off.
        let old = try JSONSerialization.data(withJSONObject: ["model": "resnet18"])
        XCTAssertFalse(try TrainConfig.decode(from: old).trainTransform().augments)
    }
}
