import ArgumentParser
import DataParallel
import DataPipeline
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
        subcommands: [Train.self, Eval.self, Predict.self, Export.self, Inspect.self, Plot.self, CheckData.self, Bench.self,
                      BenchData.self, BenchAllReduce.self, Models.self,
                      SelfTestCommunicatorCommand.self],
        defaultSubcommand: Train.self)
}

extension ResNetStem: ExpressibleByArgument {}
extension ConvolutionAlgorithm: ExpressibleByArgument {}
extension BenchmarkOptions.Mode: ExpressibleByArgument {}

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
    @Option(help: "Under mpirun: on (all-reduce the gradients every step, as training does) or off (the same compute without communication; the difference is the communication the step waits for).")
    var communication = "on"
    @Option(help: "Under mpirun: gradient compression for the all-reduce (none, fp16, bf16).") var gradCompression = "none"
    @Option(help: "Under mpirun: how the all-reduce overlaps backward (auto, nonblocking, thread, off), as train's --overlap.")
    var overlap = "auto"
    @Option(help: "Under mpirun: gradient bucket size in MiB, as train's --bucket-mb.") var bucketMb: Double = 25
    @Option(help: "Convolution algorithm, as train's --conv-algorithm: auto, winograd-f2, winograd-f4 or im2col.")
    var convAlgorithm = ConvolutionAlgorithm.automatic
    @Flag(help: "Also print where a step's time goes: forward and backward by layer category (conv by kernel and stride, BatchNorm, pooling, ...), the GEMM/im2col/col2im kernels inside them, GFLOP/s, and model-FLOP utilisation against a measured SGEMM.")
    var profile = false
    @Flag(help: "Eval: compute every BatchNorm as a pass of its own instead of folding it into the convolution before it (for debugging, and to measure what folding gains).")
    var noFoldBn = false

    func run() throws {
        guard ["on", "off"].contains(communication) else { throw ValidationError("--communication takes on or off") }
        guard let overlapMode = OverlapMode(rawValue: overlap) else {
            throw ValidationError("--overlap takes auto, nonblocking, thread or off")
        }
        guard bucketMb > 0 else { throw ValidationError("--bucket-mb must be positive") }
        guard let compression = GradientCompression(rawValue: gradCompression) else {
            throw ValidationError("--grad-compression takes none, fp16 or bf16")
        }
        var options = BenchmarkOptions()
        options.communicate = communication == "on"
        options.compression = compression
        options.overlap = overlapMode
        options.bucketMB = bucketMb
        options.profile = profile
        options.convAlgorithm = convAlgorithm
        options.model = model
        options.stem = stem
        options.imageSize = imageSize
        options.batchSize = batchSize
        options.numClasses = numClasses
        options.steps = steps
        options.warmupSteps = warmup
        options.threads = threads
        options.mode = mode
        options.foldBatchNorm = !noFoldBn
        let comm: any Communicator = MPICommunicator.isLaunchedByMPI
            ? MPICommunicator(threadMultiple: overlapMode == .thread) : SingleProcessCommunicator()
        defer { comm.finalize() }
        let result = try runBenchmark(options, communicator: comm)
        guard comm.rank == 0 else { return }
        let modeText = mode == .eval && noFoldBn ? "eval (BatchNorm not folded)" : mode.rawValue
        var line = String(format: "%@ (%@ stem) %@  %dpx  batch %d  %d thread(s): %.1f images/s, %.1f ms/step (median of %d; min %.1f), peak RSS %.0f MB",
                          model, stem.rawValue, modeText, imageSize, batchSize, threads, result.imagesPerSecond,
                          result.msPerStep, steps, result.msPerStepMin, result.peakRSSMB)
        if comm.worldSize > 1 {
            line += result.communicated
                ? String(format: "; %d ranks, overlap %@: forward %.1f + backward %.1f + all-reduce wait %.1f + optimizer %.1f ms",
                         comm.worldSize, result.overlap, result.forwardMs, result.backwardMs, result.exposedCommMs,
                         result.optimizerMs)
                : "; \(comm.worldSize) ranks, no all-reduce (--communication off)"
        }
        print(line)
        if let rows = result.profile { print(profileTable(result, rows: rows)) }
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

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show what a checkpoint (or exported weights, or a state dict) holds: model, classes, progress, metrics, config.")

    @Argument(help: "A safetensors file, e.g. runs/x/best.safetensors.") var checkpoint: String

    func run() throws {
        do {
            print(try CheckpointInspection.describe(path: checkpoint))
        } catch {
            FileHandle.standardError.write(Data("error: \(error)\n".utf8))
            throw ExitCode.failure
        }
    }
}

struct BenchData: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-data",
        abstract: "Measure the loader alone: training images/s (read, decode, transform, normalise) per worker thread.")

    @OptionGroup var dataset: DatasetOptions
    @Option(help: "Output size in pixels.") var imageSize = 224
    @Option(help: "Training transform preset (as for train).") var trainTransform = "auto"
    @Option(help: "Decode threads.") var workers = 1
    @Option(help: "Images per timed pass.") var limit = 512
    @Option(help: "Timed passes (after one warm-up pass); the median is reported.") var passes = 3
    @Flag(help: "Decode at full size (the exact path) instead of DCT-scaled.") var exactDecode = false
    @Flag(help: "Plain chroma upsampling in the fast decode (as for train).") var fastUpsampling = false
    @Option(help: "Include ColorJitter (as for train): F or B,C,S,H.") var colorJitter: String?
    @Option(help: "Include auto-augmentation (as for train): none or trivial-augment-wide.") var autoAugment = "none"
    @Option(help: "Also write the result as JSON to this file.") var json: String?

    func run() throws {
        var options = DataBenchmarkOptions()
        options.colorJitter = try colorJitter.map(TrainConfig.parseColorJitter)
        options.autoAugment = autoAugment
        options.dataset = dataset.selection
        options.imageSize = imageSize
        options.trainTransformPreset = trainTransform
        options.workers = max(workers, 1)
        options.limit = max(limit, 1)
        options.passes = max(passes, 1)
        options.exactDecode = exactDecode
        options.fastUpsampling = fastUpsampling
        do {
            let result = try runDataBenchmark(options)
            print(String(format: "%@, %d image(s), %d worker(s): %.1f images/s (%.1f per worker, median of %d passes)",
                         result.transform, result.images, result.workers, result.imagesPerSecond,
                         result.imagesPerSecondPerWorker, options.passes))
            if let json {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
                try encoder.encode(result).write(to: URL(fileURLWithPath: json))
            }
        } catch {
            FileHandle.standardError.write(Data("error: \(error)\n".utf8))
            throw ExitCode.failure
        }
    }
}

struct CheckData: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check-data",
        abstract: "Decode every image of a dataset and report counts per class and every file training would skip (exit 1 if any).")

    @OptionGroup var dataset: DatasetOptions
    @Option(help: "Decode threads per rank.") var threads = 2
    @Option(help: "Also write the report as JSON (format, splits with per-class counts, problems).") var json: String?

    func run() {
        var options = DataCheckOptions()
        options.dataset = dataset.selection
        options.threads = max(threads, 1)
        options.jsonOutput = json
        DataCheck.launch(options)
    }
}

struct Models: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List the models with their parameter counts (1000 classes) and default input sizes.")

    func run() {
        print("model                  parameters   input")
        for spec in Architecture.all where spec.isListed {
            let count = ClassifierModel.parameterCount(of: spec, numClasses: 1000)
            let countText = CheckpointInspection.grouped(count)
            print(spec.name.padding(toLength: 20, withPad: " ", startingAt: 0)
                  + String(repeating: " ", count: max(0, 13 - countText.count)) + countText
                  + "   \(spec.defaultImageSize)×\(spec.defaultImageSize)")
        }
    }
}

/// Which dataset `train` and `eval` read.
struct DatasetOptions: ParsableArguments {
    @Option(help: "Dataset root (default for train: the built-in dataset). Layouts: see --format.")
    var data: String?

    @Option(help: "Dataset layout: auto (detect), imagefolder, tiny-imagenet, imagenet (Kaggle), webvision.")
    var format = "auto"

    @Option(help: "ImageFolder: the training folder (class folders inside), instead of <data>/train.")
    var trainDir: String?

    @Option(help: "ImageFolder: the validation folder, instead of <data>/val.")
    var valDir: String?

    @Option(help: "ImageFolder: hold out this fraction of every class for validation (e.g. 0.2).")
    var valSplit: Double?

    @Option(help: "Seed of the --val-split choice (the same seed gives the same split).")
    var splitSeed: UInt64 = 0

    @Flag(help: "Stop at the first image that cannot be decoded instead of skipping it with a warning.")
    var strictData = false

    @Option(help: "Refuse images whose header claims more pixels than this, before decoding (default: Pillow's limit).")
    var maxPixels = ImageDecoder.defaultMaxPixels

    func validate() throws {
        guard DatasetFormat(rawValue: format) != nil else {
            throw ValidationError("--format must be one of \(DatasetFormat.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        guard maxPixels >= 1 else { throw ValidationError("--max-pixels must be positive") }
        if let valSplit, !(valSplit > 0 && valSplit < 1) {
            throw ValidationError("--val-split must be between 0 and 1 (got \(valSplit))")
        }
    }

    var selection: DatasetSelection {
        var selection = DatasetSelection()
        selection.directory = data
        selection.format = format
        selection.trainDirectory = trainDir
        selection.valDirectory = valDir
        selection.valSplit = valSplit
        selection.splitSeed = splitSeed
        selection.maxPixels = maxPixels
        return selection
    }

    func apply(to config: inout TrainConfig) {
        config.dataDirectory = data
        config.format = format
        config.trainDirectory = trainDir
        config.valDirectory = valDir
        config.valSplit = valSplit
        config.splitSeed = splitSeed
        config.strictData = strictData
        config.maxPixels = maxPixels
    }
}

/// Where `eval` and `predict` get their model, and how images are sized for it.
struct ModelFileOptions: ParsableArguments {
    @Option(help: "Weights: a torchvision state dict saved with safetensors, or `export` output.")
    var weights: String?

    @Option(help: "A swift-dp-train checkpoint (model, class names and training size come from it).")
    var checkpoint: String?

    @Option(help: "Model, for files that do not say (torchvision state dicts): \(Architecture.listedNames.joined(separator: ", ")).")
    var model: String?

    @Option(help: "ResNet stem (default: read off conv1's kernel).")
    var stem: ResNetStem?

    @Option(help: "Check that the classifier has this many outputs.")
    var numClasses: Int?

    @Option(help: "Center-crop size (default: the training size recorded in a checkpoint or export, else 224).")
    var imageSize: Int?

    @Option(help: "Shorter side before the crop (default: image size ÷ 0.875, e.g. 256 for 224; a checkpoint at its training size: no resize).")
    var resize: Int?

    func validate() throws {
        guard (weights == nil) != (checkpoint == nil) else { throw ValidationError("give exactly one of --weights or --checkpoint") }
        if let model, Architecture.named(model) == nil {
            throw ValidationError("unknown model '\(model)'; available: \(Architecture.listedNames.joined(separator: ", "))")
        }
        if let imageSize, imageSize < 8 { throw ValidationError("--image-size must be at least 8") }
        if let resize, let imageSize, resize < imageSize {
            throw ValidationError("--resize (\(resize)) must be at least --image-size (\(imageSize))")
        }
    }

    var request: ModelFileRequest {
        var request = ModelFileRequest()
        request.weights = weights
        request.checkpoint = checkpoint
        request.architecture = model
        request.stem = stem
        request.numClasses = numClasses
        return request
    }
}

struct Eval: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Top-1/top-5 accuracy and loss of a model on a dataset's validation images (runs under mpirun too).")

    @Option(help: "A YAML file of flags (keys are the long flag names, e.g. configs/resnet50-imagenet-eval.yaml); flags typed here override it.")
    var config: String?

    @OptionGroup var dataset: DatasetOptions

    @OptionGroup var modelFile: ModelFileOptions

    @Option(help: "Batch size per rank.") var batchSize = 64
    @Option(help: "JPEG decode threads per rank.") var workers = 2
    @Option(help: "Compute threads per rank (default: local cores / ranks on this host).") var threads: Int?
    @Option(help: "Also write top1, top5, loss and count to this JSON file.") var json: String?
    @Option(help: "Also write the confusion matrix (rows = true class, columns = predicted) as CSV to this file.")
    var confusionCsv: String?

    func run() throws {
        var options = EvaluationOptions()
        options.dataset = dataset.selection
        options.dataset.webVisionClasses = modelFile.numClasses
        options.strictData = dataset.strictData
        options.maxPixels = dataset.maxPixels
        options.modelFile = modelFile.request
        options.imageSize = modelFile.imageSize
        options.resize = modelFile.resize
        options.batchSize = batchSize
        options.workers = workers
        options.threads = threads
        options.jsonOutput = json
        options.confusionCSV = confusionCsv
        Evaluation.launch(options)
    }
}

struct Predict: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Classify single images and print the most likely classes with their probabilities.")

    @OptionGroup var modelFile: ModelFileOptions

    @Option(help: "Class names: one per line, or wnids.txt / words.txt / synsets.txt / LOC_synset_mapping.txt (default: the checkpoint's).")
    var classes: String?

    @Option(help: "How many classes to show per image.") var top = 5
    @Flag(help: "One JSON object per image: file, top (class, index, probability).") var json = false
    @Option(help: "Compute threads.") var threads = 1
    @Argument(help: "Image files (JPEG).") var images: [String]

    func run() throws {
        var options = PredictionOptions()
        options.modelFile = modelFile.request
        options.imageSize = modelFile.imageSize
        options.resize = modelFile.resize
        options.images = images
        options.classesFile = classes
        options.top = top
        options.json = json
        options.threads = threads
        do {
            guard try Predictor.run(options, output: { print($0) }) else { throw ExitCode.failure }
        } catch let exit as ExitCode {
            throw exit
        } catch {
            FileHandle.standardError.write(Data("error: \(error)\n".utf8))
            throw ExitCode.failure
        }
    }
}

do {
    SwiftDPTrain.main(try ConfigArguments.expand(Array(CommandLine.arguments.dropFirst())))
} catch {
    FileHandle.standardError.write(Data("error: \(error)\n".utf8))
    exit(2)
}

/// `bench --profile`'s table: layer categories by total time, then the kernels inside them.
func profileTable(_ result: BenchmarkResult, rows: [BenchmarkResult.ProfileRow]) -> String {
    let step = result.meanStepMs ?? result.msPerStep
    var lines = ["", "where a step's \(String(format: "%.1f", step)) ms go (means per step; the kernels are inside the layers above them):",
                 "  category                    forward  backward     total   share   GFLOP/s  calls"]
    func line(_ name: String, _ f: Double, _ b: Double, _ gflops: Double, _ calls: Double) -> String {
        let padded = name.count < 26 ? name + String(repeating: " ", count: 26 - name.count) : name
        func right(_ text: String, _ width: Int) -> String { String(repeating: " ", count: max(width - text.count, 0)) + text }
        return String(format: "  %@ %9.1f %9.1f %9.1f %6.1f%% ", padded, f, b, f + b, 100 * (f + b) / step)
            + right(gflops > 0 ? String(format: "%.1f", gflops) : "", 9) + " " + right(calls > 0 ? String(format: "%.0f", calls) : "", 6)
    }
    let other = rows.first { $0.name.hasPrefix("other") }
    let layers = rows.filter { !$0.kernel && !$0.name.hasPrefix("other") }
        .sorted { $0.forwardMs + $0.backwardMs > $1.forwardMs + $1.backwardMs }
    for row in layers { lines.append(line(row.name, row.forwardMs, row.backwardMs, row.gflops, row.callsPerStep)) }
    if let other { lines.append(line(other.name, other.forwardMs, other.backwardMs, 0, 0)) }
    let optimizer = other?.optimizerMs ?? result.optimizerMs
    lines.append("  optimizer                 " + String(format: "%30.1f %6.1f%%", optimizer, 100 * optimizer / step))
    for row in rows where row.kernel {
        lines.append(line("  " + row.name, row.forwardMs, row.backwardMs, row.gflops, row.callsPerStep))
    }
    if let mfu = result.mfu, let peak = result.sgemmGFlops, let perImage = result.forwardGFlopsPerImage {
        lines.append(String(format: "model FLOPs: %.3f GFLOP per image forward (convolutions and Linear); SGEMM here %.1f GFLOP/s; model-FLOP utilisation %.1f%%",
                            perImage, peak, 100 * mfu))
        if let gemm = result.gemmUtilisation {
            lines.append(String(format: "GEMM utilisation %.1f%%: the FLOPs the GEMMs did (Winograd's fewer for 3×3 stride 1) per second of step ÷ the SGEMM rate; model-FLOP utilisation counts direct-convolution FLOPs",
                                100 * gemm))
        }
    }
    return lines.joined(separator: "\n")
}
