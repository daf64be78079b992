import Foundation
import NN
import TestSupport
import Training
import XCTest

/// Run control under real `mpirun`: step lines, --eval-every, --save-best-by, the stop on a
/// non-finite gradient, gradient clipping.
final class TrainingControlTests: XCTestCase {
    var scratch: URL!
    var data: URL!

    override func setUpWithError() throws {
        guard swiftDPTrainBinary() != nil else { throw XCTSkip("release binary not built") }
        guard findExecutable("mpirun") != nil else { throw XCTSkip("mpirun not installed") }
        scratch = try makeTemporaryDirectory("sdt-control")
        data = scratch.appendingPathComponent("data")
        try makeTinyImageNetFixture(at: data, classes: 3, trainPerClass: 8, valPerClass: 2, size: 32)
    }

    override func tearDownWithError() throws {
        if let scratch { try? FileManager.default.removeItem(at: scratch) }
    }

    func train(_ arguments: [String], ranks: Int = 2) throws -> ProcessOutcome {
        let outcome = try runMPI(ranks: ranks, binary: swiftDPTrainBinary()!, ["train", "--data", data.path,
            "--image-size", "32", "--batch-size", "4", "--workers", "1", "--warmup-epochs", "0"]
            + (arguments.contains("--progress") ? [] : ["--quiet"]) + arguments,
            timeout: 300)
        XCTAssertFalse(outcome.timedOut, outcome.output)
        return outcome
    }

    /// --grad-compression: the run trains, the replicas stay identical (the check after every
    /// epoch), and the step differs from float32's by the 16-bit rounding.
    func testCompressedGradientsTrainCloseToFloat32() throws {
        var weights: [String: [Float]] = [:]
        // lr 1e-30 keeps the initial weights: the yardstick is how far float32 training moved them.
        for mode in ["initial", "none", "fp16", "bf16"] {
            let run = scratch.appendingPathComponent("compress-\(mode)")
            let outcome = try train(["--epochs", "1", "--max-steps-per-epoch", "1", "--lr", mode == "initial" ? "1e-30" : "0.05",
                                     "--grad-compression", mode == "initial" ? "none" : mode, "--output", run.path])
            XCTAssertEqual(outcome.status, 0, outcome.output)
            XCTAssertTrue(outcome.stdout.contains("replicas: all 2 ranks hold identical weights"), outcome.output)
            let file = try SafeTensorsFile.read(path: run.appendingPathComponent("last.safetensors").path)
            weights[mode] = try file.tensors["fc.weight"]!.floats()
        }
        func distance(_ a: [Float], _ b: [Float]) -> Float { zip(a, b).map { ($0 - $1) * ($0 - $1) }.reduce(0, +).squareRoot() }
        let moved = distance(weights["initial"]!, weights["none"]!)
        XCTAssertGreaterThan(moved, 0)
        // One step: the update is the gradient, so its error is the 16-bit rounding (relative
        // 2^-11 for fp16 and 2^-8 for bf16 per value; later steps amplify it chaotically).
        for (mode, bound) in [("fp16", Float(1e-3)), ("bf16", Float(5e-3))] {
            let relative = distance(weights["none"]!, weights[mode]!) / moved
            XCTAssertGreaterThan(relative, 0, "\(mode): the gradients were not compressed")
            XCTAssertLessThan(relative, bound, "\(mode) strays from float32 training")
            print("\(mode): fc.weight after one step differs from float32's by \(relative) of float32's update")
        }
    }

    /// --workers auto: the cores per rank left after --threads, at least 1, at most 4.
    func testAutomaticDecodeWorkersUseTheCoresLeft() throws {
        let cores = ProcessInfo.processInfo.activeProcessorCount
        let outcome = try runMPI(ranks: 2, binary: swiftDPTrainBinary()!, ["train", "--data", data.path, "--image-size", "32",
            "--batch-size", "4", "--threads", "1", "--epochs", "1", "--max-steps-per-epoch", "1", "--quiet",
            "--output", scratch.appendingPathComponent("workers").path])
        XCTAssertEqual(outcome.status, 0, outcome.output)
        let expected = min(4, max(1, max(1, cores / 2) - 1))
        XCTAssertTrue(outcome.stdout.contains("1 thread(s) and \(expected) decode worker(s) per rank"), outcome.stdout)
    }

    /// 6 validation images on 4 ranks (not a multiple): spread over all ranks each image is
    /// counted once, and rank 0 alone (--eval-on rank0) finds the same figures.
    func testEvaluationCountsEveryImageOnceOnAllRanksOrRankZero() throws {
        var results: [[String: Any]] = []
        for mode in ["all", "rank0"] {
            let run = scratch.appendingPathComponent("eval-\(mode)")
            let outcome = try train(["--epochs", "1", "--lr", "0.001", "--eval-on", mode, "--output", run.path], ranks: 4)
            XCTAssertEqual(outcome.status, 0, outcome.output)
            results.append(try XCTUnwrap(metricsLines(run).last { $0["kind"] as? String == "epoch" }))
        }
        for result in results { XCTAssertEqual(result["val_images"] as? Int, 6, "\(result)") }
        XCTAssertEqual(results[0]["val_top1"] as? Double, results[1]["val_top1"] as? Double)
        // The same sums, added in another order.
        let losses = results.map { $0["val_loss"] as? Double ?? .nan }
        XCTAssertEqual(losses[0], losses[1], accuracy: 1e-6 * max(1, abs(losses[0])))
    }

    /// 24 images, 2 ranks × 4 = 3 steps per epoch: a step line every 2 steps carries the step's
    /// LR; validation only in epochs 2 and 3; best.safetensors by the lowest validation loss.
    func testStepLinesEvalEveryAndBestByLoss() throws {
        let run = scratch.appendingPathComponent("run")
        let outcome = try train(["--epochs", "3", "--log-every", "2", "--eval-every", "2", "--save-best-by", "val_loss",
                                 "--progress", "lines",
                                 "--lr-schedule", "constant", "--lr", "0.01", "--output", run.path])
        XCTAssertEqual(outcome.status, 0, outcome.output)
        let lines = try metricsLines(run)
        let steps = lines.filter { $0["kind"] as? String == "step" }
        let epochs = lines.filter { $0["kind"] as? String == "epoch" }
        XCTAssertEqual(steps.map { $0["step"] as? Int }, [2, 4, 6, 8])
        XCTAssertEqual(steps[1]["epoch"] as? Double ?? 0, 4.0 / 3, accuracy: 1e-9)
        for line in steps {
            XCTAssertEqual(line["lr"] as? Double ?? 0, 0.01, accuracy: 1e-9)
            XCTAssertTrue((line["loss"] as? Double)?.isFinite == true, "\(line)")
            XCTAssertGreaterThan(line["grad_norm"] as? Double ?? 0, 0)
        }
        XCTAssertEqual(epochs.map { $0["epoch"] as? Int }, [1, 2, 3])
        XCTAssertNil(epochs[0]["val_top1"], "epoch 1 does not evaluate with --eval-every 2")
        XCTAssertNotNil(epochs[1]["val_top1"])
        XCTAssertNotNil(epochs[2]["val_top1"], "the last epoch always evaluates")
        let losses = epochs.dropFirst().map { $0["val_loss"] as! Double }
        let file = try SafeTensorsFile.read(path: run.appendingPathComponent("best.safetensors").path)
        let state = try JSONDecoder().decode(TrainingState.self, from: Data(file.metadata["swift_dp_train.state"]!.utf8))
        XCTAssertEqual(state.bestScore ?? 0, -losses.min()!, accuracy: 1e-12)
        XCTAssertEqual(state.epoch, losses[1] < losses[0] ? 3 : 2)

        // Macro F1 and the confusion matrix come with every evaluation.
        XCTAssertNotNil(epochs[1]["val_f1"])
        let csv = try String(contentsOf: run.appendingPathComponent("confusion_matrix.csv"), encoding: .utf8)
        XCTAssertEqual(csv.split(separator: "\n").count, 4, "header + 3 classes:\n\(csv)")
        let perClass = try String(contentsOf: run.appendingPathComponent("class_metrics.csv"), encoding: .utf8)
        let rows = perClass.split(separator: "\n").dropFirst().map { $0.split(separator: ",") }
        XCTAssertEqual(rows.count, 3)
        XCTAssertEqual(rows.map { Int($0[1]) ?? 0 }.reduce(0, +), 6, "supports add up to the 6 validation images")
        let meanRecall = rows.map { Double($0[3]) ?? -1 }.reduce(0, +) / 3
        XCTAssertEqual(meanRecall, epochs[2]["val_recall"] as? Double ?? -1, accuracy: 1e-5)

        // --progress lines: a plain progress line with every step line, no carriage returns.
        XCTAssertFalse(outcome.stdout.contains("\r"), outcome.stdout)
        let progressLines = outcome.stdout.split(separator: "\n").filter { $0.hasPrefix("epoch ") && $0.contains(" step ") }
        XCTAssertEqual(progressLines.count, 4, outcome.stdout)
        XCTAssertTrue(progressLines.first?.hasPrefix("epoch 1/3  step 2/3  loss ") == true, outcome.stdout)

        // The TensorBoard file holds the same numbers: the LR of every step, the step lines'
        // scalars every 2 steps, validation at the steps where epochs 2 and 3 ended.
        let events = try FileManager.default.contentsOfDirectory(atPath: run.path).filter { $0.hasPrefix("events.out.tfevents.") }
        XCTAssertEqual(events.count, 1)
        let eventPath = run.appendingPathComponent(events[0]).path
        let (version, scalars) = try TensorBoardReader.readScalars(path: eventPath)
        XCTAssertEqual(version, "brain.Event:2")
        func stepsOf(_ tag: String) -> [Int] { scalars.filter { $0.tag == tag }.map(\.step) }
        XCTAssertEqual(stepsOf("train/lr"), Array(1...9))
        XCTAssertEqual(stepsOf("train/loss"), [2, 4, 6, 8])
        XCTAssertEqual(stepsOf("val/top1"), [6, 9])
        let valLoss = scalars.filter { $0.tag == "val/loss" }.map { Double($0.value) }
        for (ours, logged) in zip(valLoss, losses) { XCTAssertEqual(ours, logged, accuracy: 1e-5 * max(1, logged)) }
        // TensorBoard's own reader, where it is installed (pip install tensorboard).
        if let python = findExecutable("python3"), try runProcess(python, ["-c", "import tensorboard"]).status == 0 {
            let check = try runProcess(python, [packageRoot.appendingPathComponent("scripts/check_tensorboard.py").path,
                                                                   "--print", eventPath])
            XCTAssertEqual(check.status, 0, check.output)
            XCTAssertTrue(check.stdout.contains("val/top1"), check.output)
        }

        // `inspect` reads it back: model, classes, progress, the epoch's metrics, the config.
        let inspect = try runProcess(swiftDPTrainBinary()!, ["inspect", run.appendingPathComponent("last.safetensors").path])
        XCTAssertEqual(inspect.status, 0, inspect.output)
        for expected in ["swift-dp-train checkpoint (format 1)", "model    resnet18 (imagenet stem, linear head, trained at 32 px",
                         "classes  3: ", "trained  3 epoch(s), 9 step(s) on 2 rank(s)", "metrics  epoch 3: train loss ",
                         "\"saveBestBy\":\"val_loss\""] {
            XCTAssertTrue(inspect.stdout.contains(expected), "missing '\(expected)' in:\n\(inspect.output)")
        }
    }

    /// --ema-decay: the average is evaluated beside the model every epoch, saved as `ema.*` in
    /// the checkpoint (which `eval` still reads as plain weights), and an interrupted run resumed
    /// ends with the same average as the uninterrupted one.
    func testEMAIsEvaluatedSavedAndResumedExactly() throws {
        let whole = scratch.appendingPathComponent("whole"), parts = scratch.appendingPathComponent("parts")
        let common = ["--epochs", "2", "--ema-decay", "0.9", "--lr", "0.05"]
        XCTAssertEqual(try train(common + ["--output", whole.path]).status, 0)
        XCTAssertEqual(try train(common + ["--output", parts.path, "--interrupt-after-epoch", "1"]).status, 0)
        let resumed = try train(common + ["--resume", parts.appendingPathComponent("last.safetensors").path])
        XCTAssertEqual(resumed.status, 0, resumed.output)
        let epochs = try metricsLines(whole).filter { $0["kind"] as? String == "epoch" }
        XCTAssertEqual(epochs.count, 2)
        for line in epochs { XCTAssertNotNil(line["ema_val_top1"], "\(line)") }
        let a = try SafeTensorsFile.read(path: whole.appendingPathComponent("last.safetensors").path)
        let b = try SafeTensorsFile.read(path: parts.appendingPathComponent("last.safetensors").path)
        let averaged = a.names.filter { $0.hasPrefix("ema.") }
        XCTAssertTrue(averaged.contains("ema.fc.weight") && averaged.contains("ema.bn1.running_mean"), "\(averaged.prefix(5))")
        for name in averaged { XCTAssertEqual(a.tensors[name]!.data, b.tensors[name]?.data, name) }
        XCTAssertNotEqual(a.tensors["ema.fc.weight"]!.data, a.tensors["fc.weight"]!.data, "the average lags the model")
        let eval = try runProcess(swiftDPTrainBinary()!, ["eval", "--data", data.path, "--checkpoint",
                                                          whole.appendingPathComponent("last.safetensors").path, "--workers", "1"])
        XCTAssertEqual(eval.status, 0, eval.output)
    }

    /// AdamW (its exp_avg / exp_avg_sq and step count), mixup + CutMix and a multistep schedule
    /// survive an interruption: the resumed run ends bit for bit where the whole run does, and
    /// the step lines carry the schedule's LR.
    func testAdamWWithMixupResumesBitForBit() throws {
        let whole = scratch.appendingPathComponent("whole"), parts = scratch.appendingPathComponent("parts")
        let common = ["--epochs", "3", "--optimizer", "adamw", "--lr", "0.002", "--weight-decay", "0.05",
                      "--no-wd-on-norm-and-bias", "--mixup-alpha", "0.2", "--cutmix-alpha", "1.0",
                      "--lr-schedule", "multistep", "--milestones", "2", "--gamma", "0.1", "--log-every", "1"]
        XCTAssertEqual(try train(common + ["--output", whole.path]).status, 0)
        XCTAssertEqual(try train(common + ["--output", parts.path, "--interrupt-after-epoch", "1"]).status, 0)
        let resumed = try train(common + ["--resume", parts.appendingPathComponent("last.safetensors").path])
        XCTAssertEqual(resumed.status, 0, resumed.output)
        let a = try SafeTensorsFile.read(path: whole.appendingPathComponent("last.safetensors").path)
        let b = try SafeTensorsFile.read(path: parts.appendingPathComponent("last.safetensors").path)
        XCTAssertTrue(a.names.contains("optimizer.exp_avg_sq.fc.weight"), "\(a.names.filter { $0.hasPrefix("optimizer.") }.prefix(3))")
        XCTAssertEqual(a.names, b.names)
        for name in a.names { XCTAssertEqual(a.tensors[name]!.data, b.tensors[name]!.data, name) }
        let lrs = try metricsLines(whole).filter { $0["kind"] as? String == "step" }.map { $0["lr"] as! Double }
        XCTAssertEqual(lrs.count, 9)
        XCTAssertEqual(lrs[2], 0.002, accuracy: 1e-9)
        XCTAssertEqual(lrs[8], 0.0002, accuracy: 1e-9, "×0.1 from epoch 2 on (milestone 2 after no warm-up)")
    }

    /// --accumulate 2 with batch 4 takes the same step as batch 8 (checked where the step is
    /// deterministic: a frozen backbone in eval mode, so BatchNorm does not see the smaller
    /// micro-batches), and --lr-scaling linear sets lr × global batch ÷ 256.
    func testAccumulationEqualsTheLargerBatchAndLinearScaling() throws {
        func headAfterTwoSteps(_ extra: [String], _ name: String) throws -> [Float] {
            let run = scratch.appendingPathComponent(name)
            let outcome = try train(["--epochs", "1", "--max-steps-per-epoch", "2", "--freeze-backbone", "--lr", "0.1",
                                     "--lr-schedule", "constant", "--output", run.path] + extra, ranks: 1)
            XCTAssertEqual(outcome.status, 0, outcome.output)
            let file = try SafeTensorsFile.read(path: run.appendingPathComponent("last.safetensors").path)
            return try file.tensors["fc.weight"]!.floats()
        }
        let whole = try headAfterTwoSteps(["--batch-size", "8"], "whole")
        let accumulated = try headAfterTwoSteps(["--batch-size", "4", "--accumulate", "2"], "accumulated")
        let single = try headAfterTwoSteps(["--batch-size", "4"], "single")
        let largest = zip(whole, accumulated).map { abs($0 - $1) }.max() ?? 1
        XCTAssertLessThan(largest, 1e-6, "accumulated micro-batches differ from the whole batch")
        XCTAssertGreaterThan(zip(whole, single).map { abs($0 - $1) }.max() ?? 0, 1e-4, "the comparison can tell batches apart")

        let run = scratch.appendingPathComponent("scaled")
        let outcome = try train(["--epochs", "1", "--accumulate", "2", "--lr", "0.256", "--lr-scaling", "linear",
                                 "--lr-schedule", "constant", "--log-every", "1", "--output", run.path])
        XCTAssertEqual(outcome.status, 0, outcome.output)
        XCTAssertTrue(outcome.stdout.contains("global batch 16"), outcome.stdout)
        let steps = try metricsLines(run).filter { $0["kind"] as? String == "step" }
        XCTAssertEqual(steps.count, 2, "24 images ÷ global batch 16, rounded up")
        for line in steps { XCTAssertEqual(line["lr"] as? Double ?? 0, 0.016, accuracy: 1e-8) }
    }

    /// --checkpoint-every 2 writes last.safetensors inside epochs; a job stopped right after the
    /// checkpoint of global step 4 (epoch 2, step 2 of 3) and restarted with --resume auto ends
    /// with every tensor bit for bit as the uninterrupted run's, and the same epoch figures.
    /// --resume auto in an empty directory starts the run.
    func testMidEpochCheckpointAndResumeAuto() throws {
        let whole = scratch.appendingPathComponent("whole"), parts = scratch.appendingPathComponent("parts")
        let common = ["--epochs", "2", "--checkpoint-every", "2", "--lr", "0.05"]
        XCTAssertEqual(try train(common + ["--output", whole.path]).status, 0)
        let first = try train(common + ["--output", parts.path, "--resume", "auto", "--interrupt-after-step", "4"])
        XCTAssertEqual(first.status, 0, first.output)
        XCTAssertTrue(first.stdout.contains("no checkpoint in \(parts.path) yet, starting the run"), first.stdout)
        let stopped = try SafeTensorsFile.read(path: parts.appendingPathComponent("last.safetensors").path)
        let state = try JSONDecoder().decode(TrainingState.self, from: Data(stopped.metadata["swift_dp_train.state"]!.utf8))
        XCTAssertEqual(state.globalStep, 4)
        XCTAssertEqual(state.epoch, 1)
        XCTAssertEqual(state.stepInEpoch, 1, "epoch 2 has 3 steps; global step 4 is its first")
        let resumed = try train(common + ["--output", parts.path, "--resume", "auto"])
        XCTAssertEqual(resumed.status, 0, resumed.output)
        XCTAssertTrue(resumed.stdout.contains("resuming from \(parts.path)/last.safetensors: epoch 2, global step 4"), resumed.stdout)
        let a = try SafeTensorsFile.read(path: whole.appendingPathComponent("last.safetensors").path)
        let b = try SafeTensorsFile.read(path: parts.appendingPathComponent("last.safetensors").path)
        XCTAssertEqual(a.names, b.names)
        for name in a.names { XCTAssertEqual(a.tensors[name]!.data, b.tensors[name]!.data, name) }
        let lastWhole = try metricsLines(whole).last!, lastParts = try metricsLines(parts).last!
        XCTAssertEqual(lastWhole["train_loss"] as? Double ?? 0, lastParts["train_loss"] as? Double ?? 1, accuracy: 1e-9)
        XCTAssertEqual(lastWhole["val_top1"] as? Double, lastParts["val_top1"] as? Double)
    }

    /// lr 1e30 after a good epoch: the step that overflows stops every rank with one message,
    /// exit 1, no MPI_Abort, and the epoch-1 checkpoint stays byte for byte as it was.
    func testNonFiniteGradientStopsAllRanksAndKeepsTheLastGoodCheckpoint() throws {
        let run = scratch.appendingPathComponent("run")
        let first = try train(["--epochs", "2", "--interrupt-after-epoch", "1", "--output", run.path])
        XCTAssertEqual(first.status, 0, first.output)
        let last = run.appendingPathComponent("last.safetensors")
        let before = try Data(contentsOf: last)
        let diverging = try train(["--epochs", "2", "--resume", last.path, "--lr", "1e30"])
        XCTAssertEqual(diverging.status, 1, diverging.output)
        XCTAssertTrue(diverging.stderr.contains("the gradient is not finite"), diverging.output)
        XCTAssertTrue(diverging.stderr.contains("(epoch 2, step "), diverging.output)
        XCTAssertTrue(diverging.stderr.contains("--clip-grad-norm"), diverging.output)
        XCTAssertTrue(diverging.stderr.contains("last.safetensors (epoch 1), untouched"), diverging.output)
        XCTAssertFalse(diverging.output.contains("MPI_ABORT"), diverging.output)
        XCTAssertEqual(try Data(contentsOf: last), before)
    }

    /// With --clip-grad-norm 1e-9 (and no momentum or weight decay) one step at lr 1 moves no
    /// weight by more than 1e-9 (plus float rounding); without clipping the same step moves them visibly.
    func testClipGradNormBoundsTheUpdate() throws {
        func weightsAfterOneStep(_ extra: [String], _ name: String) throws -> [String: [Float]] {
            let run = scratch.appendingPathComponent(name)
            let outcome = try train(["--epochs", "1", "--max-steps-per-epoch", "1", "--momentum", "0", "--weight-decay", "0",
                                     "--lr-schedule", "constant", "--output", run.path] + extra, ranks: 1)
            XCTAssertEqual(outcome.status, 0, outcome.output)
            let file = try SafeTensorsFile.read(path: run.appendingPathComponent("last.safetensors").path)
            var weights: [String: [Float]] = [:]
            for name in file.names where name.hasSuffix(".weight") && !name.hasPrefix("optimizer.") {
                weights[name] = try file.tensors[name]!.floats()
            }
            return weights
        }
        let still = try weightsAfterOneStep(["--lr", "1e-30"], "still")
        let clipped = try weightsAfterOneStep(["--lr", "1", "--clip-grad-norm", "1e-9"], "clipped")
        let free = try weightsAfterOneStep(["--lr", "1"], "free")
        func largestChange(_ a: [String: [Float]]) -> Float {
            a.map { name, values in zip(values, still[name]!).map { abs($0 - $1) }.max() ?? 0 }.max() ?? 0
        }
        XCTAssertLessThanOrEqual(largestChange(clipped), 1e-8, "float32 rounding allows an ulp or two")
        XCTAssertGreaterThan(largestChange(free), 1e-3)
    }
}

final class ModelEMATests: XCTestCase {
    /// e ← e + (1 − decay)(m − e) for parameters and float buffers; integer buffers copied.
    func testUpdateIsTimmLerp() throws {
        let model = try ClassifierModel(architecture: "resnet18", numClasses: 3, stem: .small, seed: 1)
        let ema = try ModelEMA(like: model, decay: 0.75)
        let start = Array(UnsafeBufferPointer(start: ema.model.store.values, count: 100))
        XCTAssertEqual(start, Array(UnsafeBufferPointer(start: model.store.values, count: 100)), "starts as a copy")
        let store = model.store
        for i in 0..<store.parameterCount { store.values[i] += 1 }
        for i in 0..<store.floatBufferCount { store.floatBuffers[i] = 2 }
        for i in 0..<store.intBufferCount { store.intBuffers[i] = 7 }
        ema.update(from: model)
        for i in 0..<100 { XCTAssertEqual(ema.model.store.values[i], start[i] + 0.25, accuracy: 1e-6) }
        let buffer = store.buffer(named: "bn1.running_var")!
        XCTAssertEqual(ema.model.store.floatBuffer(buffer)[0], 1 + 0.25 * (2 - 1), accuracy: 1e-6)
        XCTAssertEqual(ema.model.store.intBuffers[0], 7)
    }
}
