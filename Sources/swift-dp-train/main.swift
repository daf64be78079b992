import ArgumentParser
import Foundation
import NN
import Training

struct SwiftDPTrain: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "swift-dp-train",
        abstract: "Data-parallel image-classification training on CPU clusters (Open MPI).",
        discussion: """
            Launch with `mpirun -np <ranks> swift-dp-train [train] …`; without mpirun it runs as one rank.
            With no --data it trains on a small built-in dataset, generated once into a cache directory.
            """,
        subcommands: [Train.self, Bench.self, Export.self, SelfTestCommunicatorCommand.self],
        defaultSubcommand: Train.self)
}

extension ResNetStem: ExpressibleByArgument {}
extension BenchmarkOptions.Mode: ExpressibleByArgument {}

struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train a model (the default command).")

    @Option(help: "Dataset root in Tiny-ImageNet-200 layout (wnids.txt, train/, val/). Default: the built-in dataset.")
    var data: String?

    @Option(help: "Model: \(ClassifierModel.architectures.joined(separator: ", ")).")
    var model = "resnet18"

    @Option(help: "ResNet stem: imagenet (7×7/2 conv + max-pool) or small (3×3/1 conv, no pool; for 32–64 px).")
    var stem = ResNetStem.imagenet

    @Option(help: "Number of classes (default: the dataset's).")
    var numClasses: Int?

    @Option(help: "Epochs to train.")
    var epochs = 8

    @Option(help: "Batch size per rank (global batch = ranks × this).")
    var batchSize = 64

    @Option(help: "Training crop / evaluation size in pixels.")
    var imageSize = 64

    @Option(name: .customLong("lr"), help: "Peak learning rate (for the global batch; scale it with ranks × batch size).")
    var learningRate: Float = 0.02

    @Option(help: "Learning-rate schedule: cosine (per step, to 0) or constant.")
    var lrSchedule: LRScheduleName = .cosine

    @Option(help: "Linear warm-up epochs before the schedule.")
    var warmupEpochs: Float = 1

    @Option(help: "SGD momentum.")
    var momentum: Float = 0.9

    @Option(help: "Weight decay (L2, applied to all parameters like torch.optim.SGD).")
    var weightDecay: Float = 5e-4

    @Flag(help: "Nesterov momentum.")
    var nesterov = false

    @Option(help: "JPEG decode threads per rank.")
    var workers = 2

    @Option(help: "Compute threads per rank (default: local cores / ranks on this host).")
    var threads: Int?

    @Option(help: "Random seed (initialisation, shuffling, augmentation).")
    var seed: UInt64 = 0

    @Option(help: "Run directory for checkpoints, config.json and metrics.jsonl (default: runs/<date-time>).")
    var output: String?

    @Option(help: "Checkpoint to resume from (e.g. runs/x/last.safetensors).")
    var resume: String?

    @Option(help: "Initial weights: a torchvision state dict saved with safetensors (a different class count replaces the classifier).")
    var pretrained: String?

    @Option(help: "Classifier head: linear, or mlp:<hidden> for Linear → ReLU → Dropout(0.2) → Linear (tensors fc.0.*, fc.3.*).")
    var head = "linear"

    @Flag(help: "Train the classifier head alone: the backbone gets no gradient and its BatchNorm uses running statistics.")
    var freezeBackbone = false

    @Option(help: ArgumentHelp("Stop each epoch after this many steps (quick experiments, tests).", visibility: .hidden))
    var maxStepsPerEpoch: Int?

    @Option(help: ArgumentHelp("Exit after this epoch's checkpoint, as if interrupted (tests resume).", visibility: .hidden))
    var interruptAfterEpoch: Int?

    enum LRScheduleName: String, ExpressibleByArgument, CaseIterable { case cosine, constant }

    func validate() throws {
        guard epochs >= 1 else { throw ValidationError("--epochs must be at least 1") }
        guard batchSize >= 1 else { throw ValidationError("--batch-size must be at least 1") }
        guard imageSize >= 8 else { throw ValidationError("--image-size must be at least 8") }
        guard workers >= 1 else { throw ValidationError("--workers must be at least 1") }
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1") }
        if pretrained != nil && resume != nil {
            throw ValidationError("--pretrained and --resume exclude each other: a checkpoint already holds the weights")
        }
        guard ClassifierHead(head) != nil else {
            throw ValidationError("--head must be linear or mlp:<hidden units> (e.g. mlp:512), got '\(head)'")
        }
        guard learningRate > 0 else { throw ValidationError("--lr must be positive") }
        guard ClassifierModel.architectures.contains(model) || ClassifierModel.hiddenArchitectures.contains(model) else {
            throw ValidationError("unknown model '\(model)'; available: \(ClassifierModel.architectures.joined(separator: ", "))")
        }
    }

    func run() throws {
        var config = TrainConfig()
        config.dataDirectory = data
        config.model = model
        config.stem = stem.rawValue
        config.numClasses = numClasses
        config.epochs = epochs
        config.batchSize = batchSize
        config.imageSize = imageSize
        config.learningRate = learningRate
        config.cosineSchedule = lrSchedule == .cosine
        config.warmupEpochs = warmupEpochs
        config.momentum = momentum
        config.weightDecay = weightDecay
        config.nesterov = nesterov
        config.workers = workers
        config.threads = threads
        config.seed = seed
        config.outputDirectory = output
        config.resume = resume
        config.pretrained = pretrained
        config.head = head
        config.freezeBackbone = freezeBackbone
        config.maxStepsPerEpoch = maxStepsPerEpoch
        config.interruptAfterEpoch = interruptAfterEpoch
        try Trainer.launch(config)
    }
}

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure one rank's throughput on synthetic in-memory batches.")

    @Option(help: "Model to measure.") var model = "resnet18"
    @Option(help: "ResNet stem: imagenet or small.") var stem = ResNetStem.imagenet
    @Option(help: "Input size in pixels.") var imageSize = 64
    @Option(help: "Batch size.") var batchSize = 64
    @Option(help: "Classifier outputs.") var numClasses = 1000
    @Option(help: "Timed steps (after warm-up).") var steps = 20
    @Option(help: "Warm-up steps (not timed).") var warmup = 3
    @Option(help: "Compute threads.") var threads = 1
    @Option(help: "train (forward + backward + SGD step) or eval (forward only).") var mode = BenchmarkOptions.Mode.train
    @Option(help: "Also write the result as JSON to this file.") var json: String?

    func run() throws {
        var options = BenchmarkOptions()
        options.model = model
        options.stem = stem
        options.imageSize = imageSize
        options.batchSize = batchSize
        options.numClasses = numClasses
        options.steps = steps
        options.warmupSteps = warmup
        options.threads = threads
        options.mode = mode
        let result = try runBenchmark(options)
        print(String(format: "%@ (%@ stem) %@  %dpx  batch %d  %d thread(s): %.1f images/s, %.1f ms/step (median of %d; min %.1f), peak RSS %.0f MB",
                     model, stem.rawValue, mode.rawValue, imageSize, batchSize, threads, result.imagesPerSecond,
                     result.msPerStep, steps, result.msPerStepMin, result.peakRSSMB))
        if let json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            try encoder.encode(result).write(to: URL(fileURLWithPath: json))
        }
    }
}

struct Export: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a checkpoint's model weights alone, loadable with PyTorch's load_state_dict(strict=True).")

    @Option(help: "Checkpoint to read (e.g. runs/x/best.safetensors).") var checkpoint: String
    @Option(help: "safetensors file to write.") var output: String

    func run() throws {
        do {
            let count = try PretrainedWeights.export(checkpoint: checkpoint, to: output)
            print("wrote \(count) tensors to \(output)")
        } catch {
            FileHandle.standardError.write(Data("error: \(error)\n".utf8))
            throw ExitCode.failure
        }
    }
}

SwiftDPTrain.main()
