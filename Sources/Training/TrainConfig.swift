import DataPipeline
import DataParallel
import Foundation
import NN

/// Everything that defines a training run. Written to `config.json` in the run directory and
/// into every checkpoint's metadata, so a resumed run can check it continues the same run.
public struct TrainConfig: Codable, Sendable, Equatable {
    /// Dataset root; nil (and no train/val folders) = the built-in dataset.
    public var dataDirectory: String?
    /// Dataset layout: auto, imagefolder, tiny-imagenet, imagenet, webvision.
    public var format = "auto"
    /// ImageFolder: explicit train and validation folders.
    public var trainDirectory: String?
    public var valDirectory: String?
    /// ImageFolder: hold out this fraction of every class for validation, chosen with `splitSeed`.
    public var valSplit: Double?
    public var splitSeed: UInt64 = 0
    public var model = "resnet18"
    public var stem = "imagenet"
    /// nil = the dataset's number of classes.
    public var numClasses: Int?
    public var epochs = 8
    /// Per rank, like PyTorch DDP's per-process batch size.
    public var batchSize = 64
    /// Micro-batches per optimizer step (gradients added, one all-reduce): the global batch is
    /// ranks × batchSize × accumulate.
    public var accumulate = 1
    /// none, or linear: the LR is `learningRate` × global batch ÷ 256 (Goyal et al.).
    public var lrScaling = "none"
    public var imageSize = 64
    public var learningRate: Float = 0.02
    public var momentum: Float = 0.9
    public var weightDecay: Float = 5e-4
    public var nesterov = false
    /// sgd, adam or adamw (torch.optim semantics).
    public var optimizer = "sgd"
    /// Adam/AdamW β1, β2 and ε (timm's --opt-betas, --opt-eps).
    public var optimizerBetas: [Float] = [0.9, 0.999]
    public var optimizerEpsilon: Float = 1e-8
    /// timm's rule: no weight decay on biases and on 1-D parameters (BatchNorm).
    public var noWeightDecayOnNormAndBias = false
    /// Decode threads per rank.
    /// Decode threads per rank; `automaticWorkers` (0) picks them (see `Trainer.decodeWorkers`).
    public var workers = TrainConfig.automaticWorkers
    public static let automaticWorkers = 0
    /// Compute (OpenBLAS) threads per rank; nil = cores / ranks on this host.
    public var threads: Int?
    public var seed: UInt64 = 0
    public var outputDirectory: String?
    public var resume: String?
    /// Initial weights: a torchvision state dict in safetensors (or an exported model).
    public var pretrained: String?
    /// Training transform preset: auto, imagenet, tiny-imagenet, small (see `trainTransform`).
    public var trainTransformPreset = "auto"
    /// Evaluation transform preset: auto (follows training), imagenet, native.
    public var evalTransformPreset = "auto"
    /// A file that cannot be decoded stops the run instead of being skipped.
    public var strictData = false
    /// Images whose header claims more pixels are refused before decoding.
    public var maxPixels = ImageDecoder.defaultMaxPixels
    /// Decode training JPEGs at full size even where a DCT-scaled decode would do.
    public var exactDecode = false
    /// With the fast decode: libjpeg's plain chroma upsampling (`--fast-upsampling`).
    public var fastUpsampling = false
    /// Horizontal-flip probability of the training transform.
    public var hflip: Float = 0.5
    /// ColorJitter strengths [brightness, contrast, saturation, hue] on the training crop; nil = off.
    public var colorJitter: [Float]?
    /// Automatic augmentation of the training crop: none or trivial-augment-wide.
    public var autoAugment = AutoAugmentPolicy.none.rawValue
    /// Classifier head: `linear` or `mlp:<hidden>` (see `ClassifierHead`).
    public var head = "linear"
    /// Train the head alone; the backbone runs in eval mode (BatchNorm running statistics).
    public var freezeBackbone = false
    /// Cross-entropy label smoothing ε (PyTorch's `label_smoothing`).
    public var labelSmoothing: Float = 0
    /// Keep an exponential moving average of the weights with this decay (timm's model EMA,
    /// e.g. 0.9998), evaluated beside the model; nil = off.
    public var emaDecay: Float?
    /// Clip the averaged gradient to this L2 norm (torch.nn.utils.clip_grad_norm_); nil = off.
    public var clipGradNorm: Float?
    /// A step line in metrics.jsonl every this many steps.
    public var logEvery = 20
    /// Evaluate every this many epochs (and always after the last).
    public var evalEvery = 1
    /// What makes `best.safetensors`: val_top1, val_loss or val_f1.
    public var saveBestBy = "val_top1"
    /// Write a TensorBoard event file in the run directory.
    public var tensorBoard = true
    /// Progress display: auto, bar, lines or none (see `ProgressLine.Mode`).
    public var progress = "auto"
    /// No live progress line (epoch summaries still print).
    public var quiet = false
    /// Stop each epoch after this many steps (tests and quick experiments); nil = full epoch.
    public var maxStepsPerEpoch: Int?
    /// constant, multistep, step, cosine or onecycle (see `LearningRateSchedule`).
    public var lrSchedule = "cosine"
    /// multistep: epochs (counted after warm-up) at which the LR is multiplied by `gamma`.
    public var milestones: [Int] = []
    /// step: every this many epochs the LR is multiplied by `gamma`.
    public var stepSize = 30
    public var gamma: Float = 0.1
    /// cosine: the LR it decays to.
    public var minLR: Float = 0
    public var warmupEpochs: Float = 1
    /// Mixup and CutMix (timm semantics; 0 = off), switched per batch with this probability.
    public var mixupAlpha: Float = 0
    public var cutmixAlpha: Float = 0
    public var mixupSwitchProbability: Float = 0.5
    /// Exit cleanly after this epoch's checkpoint, as if the job had been stopped there
    /// (used to test that `--resume` continues bit for bit).
    public var interruptAfterEpoch: Int?
    /// Also replace last.safetensors every this many steps inside an epoch; nil = at epoch ends only.
    public var checkpointEvery: Int?
    /// Exit cleanly after the mid-epoch checkpoint of this global step (tests resume mid-epoch).
    public var interruptAfterStep: Int?
    /// Abort the job when a collective has waited this many seconds for some rank, naming
    /// where every rank is (Note [Collective watchdog]); 0 = wait for ever.
    public var collectiveTimeout: Double = 60
    /// Resuming a checkpoint written by another number of ranks: `keep-global-batch` (split
    /// it as batch × accumulation over these ranks) or `scale-lr` (this run's batch, the LR
    /// scaled by the change of global batch).
    public var onWorldSizeChange = "keep-global-batch"
    /// Gradients on the wire as `fp16` or `bf16` (Horovod's compression), or `none`.
    public var gradCompression = GradientCompression.none
    /// BatchNorm statistics of the global batch in training (PyTorch's SyncBatchNorm).
    public var syncBN = false
    /// How the gradient all-reduce overlaps backward (Note [Overlapped all-reduce]).
    public var overlap = OverlapMode.auto
    /// Gradient bucket size after the first (small) bucket, in MiB (PyTorch DDP's bucket_cap_mb).
    public var bucketMB: Double = 25
    /// Winograd for 3×3 stride-1 convolutions (`auto`) or im2col + GEMM everywhere (`im2col`).
    public var convAlgorithm = ConvolutionAlgorithm.automatic
    /// Evaluation spread over `all` ranks (each image once) or done by `rank0` alone.
    public var evalOn = "all"
    /// Append the samples each rank trains on to DIR/rank-R.txt (tests).
    public var traceSamples: String?
    /// Make one rank hang before a global step (tests the watchdog).
    public var simulateStall: SimulatedStall?

    public struct SimulatedStall: Codable, Sendable, Equatable {
        public var rank: Int
        /// 1-based global step.
        public var step: Int
        public init(rank: Int, step: Int) { self.rank = rank; self.step = step }
    }

    public init() {}

    /// `auto` picks torchvision's ImageNet recipe (RandomResizedCrop) for crops of 128 px and
    /// more, and the pad-and-crop recipe below that (Tiny-ImageNet, CIFAR-sized images).
    public func trainTransform() throws -> TrainTransform {
        let kind: TrainTransform.Kind
        switch trainTransformPreset {
        case "auto": kind = imageSize >= 128 ? .randomResizedCrop : .padCrop
        case "imagenet": kind = .randomResizedCrop
        case "tiny-imagenet", "small": kind = .padCrop
        default:
            throw TrainingError("unknown --train-transform '\(trainTransformPreset)'; use auto, imagenet, tiny-imagenet or small")
        }
        guard let policy = AutoAugmentPolicy(rawValue: autoAugment) else {
            throw TrainingError("unknown --auto-augment '\(autoAugment)'; use "
                                + AutoAugmentPolicy.allCases.map(\.rawValue).joined(separator: " or "))
        }
        var jitter: ColorJitter?
        if let values = colorJitter {
            guard values.count == 4 else { throw TrainingError("--color-jitter takes F or B,C,S,H (got \(values.count) numbers)") }
            let candidate = ColorJitter(brightness: values[0], contrast: values[1], saturation: values[2], hue: values[3])
            if let problem = candidate.problem { throw TrainingError("--color-jitter: \(problem)") }
            jitter = candidate.isActive ? candidate : nil
        }
        return TrainTransform(kind: kind, flipProbability: hflip, fastDecode: !exactDecode,
                              fastUpsampling: fastUpsampling && !exactDecode, colorJitter: jitter, autoAugment: policy)
    }

    /// `--color-jitter` text: one number F (timm's: brightness = contrast = saturation = F, no
    /// hue) or four, B,C,S,H (torchvision's ColorJitter arguments).
    public static func parseColorJitter(_ text: String) throws -> [Float] {
        let values = text.split(separator: ",", omittingEmptySubsequences: false)
            .map { Float($0.trimmingCharacters(in: .whitespaces)) }
        guard values.allSatisfy({ $0 != nil }), values.count == 1 || values.count == 4 else {
            throw TrainingError("--color-jitter takes one number F (brightness, contrast and saturation F, hue 0) "
                                + "or four, B,C,S,H (got '\(text)')")
        }
        let numbers = values.map { $0! }
        return numbers.count == 1 ? [numbers[0], numbers[0], numbers[0], 0] : numbers
    }

    /// The shorter side validation images are resized to before the centre crop: S ÷ 0.875
    /// (256 for 224) with the ImageNet recipe, S itself otherwise.
    public func evalResize() throws -> Int {
        let imagenet: Bool
        switch evalTransformPreset {
        case "auto": imagenet = try trainTransform().kind == .randomResizedCrop
        case "imagenet": imagenet = true
        case "native": imagenet = false
        default: throw TrainingError("unknown --eval-transform '\(evalTransformPreset)'; use auto, imagenet or native")
        }
        return imagenet ? Int((Double(imageSize) / 0.875).rounded()) : imageSize
    }

    /// Checks the options that need no data or model; one line naming the option.
    public func validate() throws {
        guard ["all", "rank0"].contains(evalOn) else {
            throw TrainingError("--eval-on must be all or rank0 (got '\(evalOn)')")
        }
        guard ["keep-global-batch", "scale-lr"].contains(onWorldSizeChange) else {
            throw TrainingError("--on-world-size-change must be keep-global-batch or scale-lr (got '\(onWorldSizeChange)')")
        }
        guard bucketMB > 0, bucketMB.isFinite else {
            throw TrainingError("--bucket-mb must be a positive number of MiB (got \(bucketMB))")
        }
        guard collectiveTimeout >= 0, collectiveTimeout.isFinite else {
            throw TrainingError("--collective-timeout must be 0 (off) or a number of seconds (got \(collectiveTimeout))")
        }
        guard logEvery >= 1 else { throw TrainingError("--log-every must be at least 1 (got \(logEvery))") }
        guard evalEvery >= 1 else { throw TrainingError("--eval-every must be at least 1 (got \(evalEvery))") }
        guard BestModelCriterion(rawValue: saveBestBy) != nil else {
            throw TrainingError("unknown --save-best-by '\(saveBestBy)'; use "
                                + BestModelCriterion.allCases.map(\.rawValue).joined(separator: ", "))
        }
        guard ProgressLine.Mode(rawValue: progress) != nil else {
            throw TrainingError("unknown --progress '\(progress)'; use auto, bar, lines or none")
        }
        guard labelSmoothing >= 0 && labelSmoothing < 1 else {
            throw TrainingError("--label-smoothing must be in [0, 1) (got \(labelSmoothing))")
        }
        guard ["sgd", "adam", "adamw"].contains(optimizer) else {
            throw TrainingError("unknown --optimizer '\(optimizer)'; use sgd, adam or adamw")
        }
        guard optimizerBetas.count == 2, optimizerBetas.allSatisfy({ $0 >= 0 && $0 < 1 }) else {
            throw TrainingError("--opt-betas takes two numbers in [0, 1), e.g. 0.9,0.999")
        }
        _ = try LearningRateSchedule.Kind.parse(lrSchedule)
        guard milestones == milestones.sorted(), milestones.allSatisfy({ $0 > 0 }) else {
            throw TrainingError("--milestones must be increasing positive epochs, e.g. 30,60")
        }
        if let every = checkpointEvery, every < 1 { throw TrainingError("--checkpoint-every must be at least 1 step") }
        guard accumulate >= 1 else { throw TrainingError("--accumulate must be at least 1 (got \(accumulate))") }
        guard ["none", "linear"].contains(lrScaling) else {
            throw TrainingError("unknown --lr-scaling '\(lrScaling)'; use none or linear")
        }
        guard stepSize >= 1 else { throw TrainingError("--step-size must be at least 1 epoch") }
        guard mixupAlpha >= 0, cutmixAlpha >= 0 else { throw TrainingError("--mixup-alpha and --cutmix-alpha must be ≥ 0") }
        guard (0...1).contains(mixupSwitchProbability) else { throw TrainingError("--mixup-switch-prob must be in [0, 1]") }
        if let decay = emaDecay, !(decay > 0 && decay < 1) {
            throw TrainingError("--ema-decay must be between 0 and 1, e.g. 0.9998 (got \(decay))")
        }
        if let clip = clipGradNorm, !(clip > 0) { throw TrainingError("--clip-grad-norm must be positive (got \(clip))") }
        _ = try trainTransform()
    }

    /// The peak learning rate on `worldSize` ranks: `learningRate`, or with `--lr-scaling linear`
    /// `learningRate` × global batch ÷ 256.
    public func peakLearningRate(worldSize: Int) -> Float {
        lrScaling == "linear" ? learningRate * Float(worldSize * batchSize * accumulate) / 256 : learningRate
    }

    /// The schedule for `stepsPerEpoch` optimizer steps per epoch on `worldSize` ranks.
    /// `factor`: a further scale on the peak LR (`--on-world-size-change scale-lr`).
    public func learningRateSchedule(stepsPerEpoch: Int, worldSize: Int, factor: Float = 1) throws -> LearningRateSchedule {
        LearningRateSchedule(kind: try LearningRateSchedule.Kind.parse(lrSchedule),
                             baseLR: peakLearningRate(worldSize: worldSize) * factor,
                             stepsPerEpoch: stepsPerEpoch, epochs: epochs, warmupEpochs: warmupEpochs,
                             milestones: milestones, stepSize: stepSize, gamma: gamma, minLR: minLR)
    }

    /// The dataset part of the configuration.
    public var datasetSelection: DatasetSelection {
        var selection = DatasetSelection()
        selection.directory = dataDirectory
        selection.format = format
        selection.trainDirectory = trainDirectory
        selection.valDirectory = valDirectory
        selection.valSplit = valSplit
        selection.splitSeed = splitSeed
        selection.webVisionClasses = numClasses
        return selection
    }

    /// The config as saved in config.json: sorted keys, one per line.
    public func prettyJSON() throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(self), as: UTF8.self)
    }

    /// Decodes a saved config; keys written by an older build that lacks a field take that
    /// field's default, so adding an option never makes old checkpoints unreadable.
    public static func decode(from json: Data) throws -> TrainConfig {
        let defaults = try JSONSerialization.jsonObject(with: JSONEncoder().encode(TrainConfig())) as? [String: Any] ?? [:]
        guard let saved = try JSONSerialization.jsonObject(with: json) as? [String: Any] else {
            throw DecodingError.dataCorrupted(.init(codingPath: [], debugDescription: "config is not a JSON object"))
        }
        var merged = defaults.merging(saved) { _, new in new }
        // Before `lrSchedule`, a Bool chose between cosine and constant.
        if saved["lrSchedule"] == nil, let cosine = saved["cosineSchedule"] as? Bool {
            merged["lrSchedule"] = cosine ? "cosine" : "constant"
        }
        return try JSONDecoder().decode(TrainConfig.self, from: JSONSerialization.data(withJSONObject: merged))
    }

    /// The fields that must match for `--resume` to continue the same run bit for bit.
    /// On another world size the batch split is adapted instead (`onWorldSizeChange`).
    public func resumeMismatches(with other: TrainConfig, sameWorldSize: Bool = true) -> [String] {
        var problems: [String] = []
        func check<T: Equatable>(_ name: String, _ a: T, _ b: T) {
            if a != b { problems.append("\(name): checkpoint has \(b), this run has \(a)") }
        }
        check("model", model, other.model)
        check("stem", stem, other.stem)
        if sameWorldSize {
            check("batch-size", batchSize, other.batchSize)
            check("accumulate", accumulate, other.accumulate)
        }
        check("image-size", imageSize, other.imageSize)
        check("seed", seed, other.seed)
        check("head", head, other.head)
        check("freeze-backbone", freezeBackbone, other.freezeBackbone)
        check("val-split", valSplit.map { "\($0)" } ?? "none", other.valSplit.map { "\($0)" } ?? "none")
        check("split-seed", splitSeed, other.splitSeed)
        check("optimizer", optimizer, other.optimizer)
        return problems
    }
}
