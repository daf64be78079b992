import Foundation
import TestSupport
import XCTest

/// `--config` through the real binary: every example in configs/ is accepted by the command it
/// is written for, typed flags override the file, and an unknown key is one error line with a
/// suggestion.
final class ConfigCommandTests: XCTestCase {
    func effectiveConfig(_ arguments: [String]) throws -> [String: Any] {
        let outcome = try runProcess(swiftDPTrainBinary()!, arguments + ["--print-config"])
        XCTAssertEqual(outcome.status, 0, outcome.output)
        return try JSONSerialization.jsonObject(with: Data(outcome.stdout.utf8)) as? [String: Any] ?? [:]
    }

    func testExampleConfigsAreAcceptedAndFlagsOverrideThem() throws {
        guard swiftDPTrainBinary() != nil else { throw XCTSkip("release binary not built") }
        let configs = packageRoot.appendingPathComponent("configs")
        let files = try FileManager.default.contentsOfDirectory(atPath: configs.path).filter { $0.hasSuffix(".yaml") }.sorted()
        XCTAssertGreaterThanOrEqual(files.count, 5)
        for name in files {
            let path = configs.appendingPathComponent(name).path
            if name.contains("eval") {
                // `eval` has no --print-config; --help still runs the file through the key check first.
                let outcome = try runProcess(swiftDPTrainBinary()!, ["eval", "--config", path, "--help"])
                XCTAssertEqual(outcome.status, 0, "\(name): \(outcome.output)")
                continue
            }
            let config = try effectiveConfig(["train", "--config", path])
            XCTAssertNotNil(config["model"], name)
        }
        let webvision = configs.appendingPathComponent("inception-resnet-v2-mini-webvision.yaml").path
        let fromFile = try effectiveConfig(["train", "--config", webvision])
        XCTAssertEqual(fromFile["lrSchedule"] as? String, "multistep")
        XCTAssertEqual(fromFile["milestones"] as? [Int], [30, 60])
        XCTAssertEqual(fromFile["model"] as? String, "inception_resnet_v2")
        let overridden = try effectiveConfig(["train", "--config", webvision, "--lr", "0.5", "--milestones", "10,20"])
        XCTAssertEqual(overridden["learningRate"] as? Double ?? 0, 0.5, accuracy: 1e-7)
        XCTAssertEqual(overridden["milestones"] as? [Int], [10, 20])
        XCTAssertEqual(overridden["epochs"] as? Int, 90, "the rest still comes from the file")
    }

    func testUnknownKeyIsOneLineWithASuggestion() throws {
        guard swiftDPTrainBinary() != nil else { throw XCTSkip("release binary not built") }
        let scratch = try makeTemporaryDirectory("sdt-config")
        defer { try? FileManager.default.removeItem(at: scratch) }
        let file = scratch.appendingPathComponent("typo.yaml")
        try "epochs: 2\nlr-shedule: cosine\n".write(to: file, atomically: true, encoding: .utf8)
        let outcome = try runProcess(swiftDPTrainBinary()!, ["train", "--config", file.path, "--print-config"])
        XCTAssertNotEqual(outcome.status, 0)
        XCTAssertEqual(outcome.stderr.trimmingCharacters(in: .newlines),
                       "error: \(file.path):2: unknown key 'lr-shedule'; did you mean 'lr-schedule'?")
    }
}
