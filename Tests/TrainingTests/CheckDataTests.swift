import Foundation
import TestSupport
import XCTest

/// `check-data` under mpirun: every file training would skip is listed once, with its reason,
/// and nothing that decodes is (a PNG named .JPEG decodes).
final class CheckDataTests: XCTestCase {
    func testListsExactlyTheFilesTrainingWouldSkip() throws {
        guard let binary = swiftDPTrainBinary() else { throw XCTSkip("release binary not built") }
        guard findExecutable("mpirun") != nil else { throw XCTSkip("mpirun not installed") }
        let scratch = try makeTemporaryDirectory("sdt-check")
        defer { try? FileManager.default.removeItem(at: scratch) }
        let data = scratch.appendingPathComponent("data")
        try makeTinyImageNetFixture(at: data, classes: 3, trainPerClass: 8, valPerClass: 3, size: 16)
        let images = data.appendingPathComponent("train/n00001001/images")
        let empty = images.appendingPathComponent("empty.JPEG"), text = images.appendingPathComponent("text.JPEG")
        let truncated = data.appendingPathComponent("val/images/val_2.JPEG")
        try Data().write(to: empty)
        try Data("not an image\n".utf8).write(to: text)
        try Data(try Data(contentsOf: truncated).prefix(40)).write(to: truncated)
        let png = packageRoot.appendingPathComponent("Tests/DataPipelineTests/Fixtures/png/rgb8.png")
        try FileManager.default.copyItem(at: png, to: images.appendingPathComponent("really_a_png.JPEG"))

        let report = scratch.appendingPathComponent("report.json")
        let outcome = try runMPI(ranks: 2, binary: binary, ["check-data", "--data", data.path, "--json", report.path])
        XCTAssertNotEqual(outcome.status, 0, "problems found must give a non-zero exit\n\(outcome.output)")
        XCTAssertTrue(outcome.stdout.contains("3 file(s) would be skipped"), outcome.output)
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: report)) as! [String: Any]
        XCTAssertEqual(json["format"] as? String, "tiny-imagenet")
        let splits = json["splits"] as! [String: [String: Any]]
        XCTAssertEqual(splits["train"]?["samples"] as? Int, 3 * 8 + 3)
        XCTAssertEqual((splits["train"]?["per_class"] as? [String: Int])?["n00001001"], 8 + 3)
        XCTAssertEqual(splits["val"]?["samples"] as? Int, 9)
        let problems = (json["problems"] as! [[String: String]])
        XCTAssertEqual(problems.map { $0["file"]! }, [empty.path, text.path, truncated.path])
        XCTAssertEqual(problems[0]["reason"], "empty file (0 bytes)")
        XCTAssertTrue(problems[1]["reason"]!.contains("not a JPEG or PNG image"), problems[1]["reason"]!)
        XCTAssertTrue(problems[2]["reason"]!.lowercased().contains("jpeg"), problems[2]["reason"]!)
    }
}

/// --strict-data turns the first undecodable image into an error that ends the job and names
/// the file; --max-pixels refuses an image by its header before decoding.
final class StrictDataTests: XCTestCase {
    func testStrictDataAndPixelLimit() throws {
        guard let binary = swiftDPTrainBinary() else { throw XCTSkip("release binary not built") }
        guard findExecutable("mpirun") != nil else { throw XCTSkip("mpirun not installed") }
        let scratch = try makeTemporaryDirectory("sdt-strict")
        defer { try? FileManager.default.removeItem(at: scratch) }
        let data = scratch.appendingPathComponent("data")
        try makeTinyImageNetFixture(at: data, classes: 2, trainPerClass: 8, valPerClass: 2, size: 16)
        let bad = data.appendingPathComponent("train/n00001000/images/bad.JPEG")
        try Data("garbage".utf8).write(to: bad)
        let common = ["train", "--data", data.path, "--model", "plain_convnet", "--image-size", "16", "--batch-size", "4",
                      "--epochs", "1", "--output", scratch.appendingPathComponent("run").path]
        let strict = try runMPI(ranks: 2, binary: binary, common + ["--strict-data"])
        XCTAssertNotEqual(strict.status, 0, strict.output)
        XCTAssertTrue(strict.stderr.contains("\(bad.path): not a JPEG or PNG image") && strict.stderr.contains("--strict-data"),
                      strict.output)

        try FileManager.default.removeItem(at: bad)
        // 16×16 = 256 pixels: a limit of 255 refuses every image, each named, and the run goes on.
        let limited = try runMPI(ranks: 1, binary: binary, ["check-data", "--data", data.path, "--max-pixels", "255"])
        XCTAssertNotEqual(limited.status, 0)
        XCTAssertTrue(limited.stdout.contains("20 file(s) would be skipped"), limited.output)
        XCTAssertTrue(limited.stdout.contains("header claims 16×16 = 256 pixels, more than --max-pixels 255"), limited.output)
    }
}
