import Foundation
import NN
import TestSupport
import XCTest

/// Every listed model trains under `mpirun -np 2` (two steps, tiny batch) and writes a
/// checkpoint whose replicas agree: the whole path, not just the layers.
final class ModelSmokeTests: XCTestCase {
    func testEveryModelTrainsUnderMPI() throws {
        guard let binary = swiftDPTrainBinary() else { throw XCTSkip("release binary not built") }
        guard findExecutable("mpirun") != nil else { throw XCTSkip("mpirun not installed") }
        let scratch = try makeTemporaryDirectory("sdt-smoke")
        defer { try? FileManager.default.removeItem(at: scratch) }
        let data = scratch.appendingPathComponent("data")
        try makeTinyImageNetFixture(at: data, classes: 3, trainPerClass: 4, valPerClass: 1, size: 40)
        for model in Architecture.listedNames {
            let run = scratch.appendingPathComponent(model)
            // 75 px: the smallest input InceptionResNetV2's pooling allows.
            let outcome = try runMPI(ranks: 2, binary: binary, [
                "train", "--data", data.path, "--model", model, "--image-size", "75", "--batch-size", "2",
                "--epochs", "1", "--max-steps-per-epoch", "2", "--workers", "1", "--warmup-epochs", "0",
                "--output", run.path,
            ], timeout: 300)
            XCTAssertEqual(outcome.status, 0, "\(model):\n\(outcome.output)")
            XCTAssertTrue(outcome.stdout.contains("replicas: all 2 ranks hold identical weights"), "\(model):\n\(outcome.output)")
            let metrics = try String(contentsOf: run.appendingPathComponent("metrics.jsonl"), encoding: .utf8)
            let line = try JSONSerialization.jsonObject(with: Data(metrics.split(separator: "\n").last!.utf8)) as! [String: Any]
            XCTAssertTrue((line["train_loss"] as? Double)?.isFinite == true, "\(model): \(line)")
            XCTAssertEqual(line["val_images"] as? Int, 3, model)
        }
    }
}
