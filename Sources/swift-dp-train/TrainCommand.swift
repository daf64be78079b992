import ArgumentParser
import DataParallel
import DataPipeline
import Foundation
import NN
import Training

struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train a model (the default command).")

    @Option(help: "A YAML file of flags (keys are the long flag names, e.g. configs/resnet18-tiny-imagenet.yaml); flags typed here override it.")
    var config: String?

    @Flag(help: "Print the effective configuration (defaults, then the --config file, then the flags) as JSON and exit.")
    var printConfig = false

    @OptionGroup var dataset: DatasetOptions

    @Option(help: "Model: \(Architecture.listedNames.joined(separator: ", ")).")
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

    @OptionGroup(title: "Optimizer and learning-rate schedule") var optimization: OptimizationOptions

    @Option(help: "JPEG decode threads per rank, or auto: the host's cores left per rank after the compute threads (at least 1, at most 4).")
    var workers = "auto"

    @Option(help: "Compute threads per rank (default: local cores / ranks on this host).")
    var threads: Int?

    @Option(help: "Random seed (initialisation, shuffling, augmentation).")
    var seed: UInt64 = 0

    @Option(help: "Run directory for checkpoints, config.json and metrics.jsonl (default: runs/<date-time>).")
    var output: String?

    @Option(help: "Checkpoint to resume from (e.g. runs/x/last.safetensors), or auto: the newest checkpoint in --output DIR, starting afresh when there is none (for jobs that get requeued).")
    var resume: String?

    @Option(help: "Initial weights: a torchvision state dict saved with safetensors (a different class count replaces the classifier).")
    var pretrained: String?

    @Option(help: "Training transform: auto (imagenet from 128 px up, else tiny-imagenet), imagenet (RandomResizedCrop + flip), tiny-imagenet or small (pad-4 RandomCrop + flip).")
    var trainTransform = "auto"

    @Option(help: "Validation transform: auto (follows --train-transform), imagenet (Resize(S ÷ 0.875) + CenterCrop(S)), native (Resize(S) + CenterCrop(S)).")
    var evalTransform = "auto"

    @Option(help: "Horizontal-flip probability in training (0 turns flipping off, e.g. for text or digits).")
    var hflip: Float = 0.5

    @Flag(help: "With RandomResizedCrop, decode JPEGs at full size instead of the smallest DCT scale that covers the crop.")
    var exactDecode = false

    @Flag(help: "With RandomResizedCrop's fast decode, upsample chroma plainly (libjpeg's do_fancy_upsampling off): up to about 10% faster, blockier colour edges.")
    var fastUpsampling = false

    @Option(help: "Training ColorJitter after crop and flip (torchvision's, on PIL semantics): F (timm style: brightness, contrast and saturation F, hue 0) or B,C,S,H. Off by default.")
    var colorJitter: String?

    @Option(help: "Training auto-augmentation after crop and flip: none or trivial-augment-wide (torchvision's TrivialAugmentWide). With --color-jitter too, TrivialAugmentWide runs first, then ColorJitter.")
    var autoAugment = "none"

    @Option(help: "Classifier head: linear, or mlp:<hidden> for Linear → ReLU → Dropout(0.2) → Linear (tensors fc.0.*, fc.3.*).")
    var head = "linear"

    @Flag(help: "Train the classifier head alone: the backbone gets no gradient and its BatchNorm uses running statistics.")
    var freezeBackbone = false

    @Option(help: "Cross-entropy label smoothing ε (PyTorch's label_smoothing), e.g. 0.1.")
    var labelSmoothing: Float = 0

    @Option(help: "Mixup α (timm; 0 = off), e.g. 0.2: images and targets mixed with the batch reversed, λ ~ Beta(α, α).")
    var mixupAlpha: Float = 0

    @Option(help: "CutMix α (timm; 0 = off), e.g. 1.0: a box pasted from the batch reversed, targets by area.")
    var cutmixAlpha: Float = 0

    @Option(help: "With both mixup and CutMix on, the probability that a batch uses CutMix.")
    var mixupSwitchProb: Float = 0.5

    @Option(help: "Keep an exponential moving average of the weights with this decay (timm's model EMA, e.g. 0.9998); evaluated beside the model, best checkpoint from either.")
    var emaDecay: Float?

    @Option(help: "Clip the averaged gradient to this L2 norm (torch.nn.utils.clip_grad_norm_), e.g. 1.0.")
    var clipGradNorm: Float?

    @Option(help: "Write a step line (loss, top-1, LR, images/s, data-wait, all-reduce time) to metrics.jsonl every this many steps.")
    var logEvery = 20

    @Option(help: "Evaluate every this many epochs (always after the last).")
    var evalEvery = 1

    @Option(help: "Who evaluates: all (each rank a share, every image once; the default) or rank0 (rank 0 alone, the others wait).")
    var evalOn = "all"

    @Option(help: "What picks best.safetensors: val_top1, val_loss or val_f1.")
    var saveBestBy = "val_top1"

    @Flag(help: "Do not write a TensorBoard event file (events.out.tfevents.*) in the run directory.")
    var noTensorboard = false

    @Option(help: "Micro-batches per optimizer step: gradients of N batches are added before one all-reduce (DDP's no_sync); global batch = ranks × batch size × N.")
    var accumulate = 1

    @Option(help: "Progress: auto (bar on a terminal, else lines), bar (rewritten in place), lines (a plain line with every --log-every step line: batch logs; under mpirun a rank's output is always a terminal), none.")
    var progress = "auto"

    @Flag(help: "No progress display (--progress none); the per-epoch summaries still print.")
    var quiet = false

    @Option(help: ArgumentHelp("Stop each epoch after this many steps (quick experiments, tests).", visibility: .hidden))
    var maxStepsPerEpoch: Int?

    @Option(help: "Also replace last.safetensors every this many steps inside an epoch (resumable mid-epoch, exactly).")
    var checkpointEvery: Int?

    @Option(help: ArgumentHelp("Exit after the mid-epoch checkpoint of this global step, as if killed (tests resume).", visibility: .hidden))
    var interruptAfterStep: Int?

    @Option(help: ArgumentHelp("Exit after this epoch's checkpoint, as if interrupted (tests resume).", visibility: .hidden))
    var interruptAfterEpoch: Int?

    @Option(help: "Under mpirun: when a collective has waited this many seconds for some rank, print which ranks arrived and where each other rank is, and abort the job (0: wait for ever). Must exceed rank 0's checkpoint write.")
    var collectiveTimeout: Double = 60

    @Option(help: "Gradients on the wire as fp16 or bf16 (half the bytes; Horovod's compression), or none.")
    var gradCompression = "none"
    @Flag(help: "BatchNorm normalises by the statistics of the global batch, all-reduced in every training forward and backward (PyTorch's SyncBatchNorm); for small per-rank batches.")
    var syncBn = false

    @Option(help: "How the gradient all-reduce overlaps backward: auto (the default: off when all ranks share one host, else nonblocking), nonblocking (MPI_Iallreduce per bucket as backward finishes it), thread (a communication thread), off (all buckets after backward).")
    var overlap = "auto"

    @Option(help: "Gradient bucket size in MiB after a small first bucket (PyTorch DDP's bucket_cap_mb).")
    var bucketMb: Double = 25

    @Option(help: "Convolution algorithm: auto or winograd-f2 (Winograd F(2x2,3x3) for 3x3 stride-1 convolutions, im2col + GEMM for the rest), winograd-f4 (F(4x4,3x3): fewer FLOPs, ten times the rounding error), or im2col (im2col + GEMM everywhere).")
    var convAlgorithm = ConvolutionAlgorithm.automatic

    @Option(help: "Resuming a checkpoint of another number of ranks: keep-global-batch (split the global batch as batch × --accumulate over these ranks; the default) or scale-lr (this run's batch, the learning rate scaled by the change of global batch).")
    var onWorldSizeChange = "keep-global-batch"

    @Option(help: ArgumentHelp("Append the samples each rank trains on to DIR/rank-R.txt (tests the sampler).", visibility: .hidden))
    var traceSamples: String?

    @Option(help: ArgumentHelp("RANK:STEP — this rank hangs before that global step (tests the stall watchdog).", visibility: .hidden))
    var simulateStall: String?

    func validate() throws {
        guard epochs >= 1 else { throw ValidationError("--epochs must be at least 1") }
        guard batchSize >= 1 else { throw ValidationError("--batch-size must be at least 1") }
        guard imageSize >= 8 else { throw ValidationError("--image-size must be at least 8") }
        guard workers == "auto" || (Int(workers) ?? 0) >= 1 else {
            throw ValidationError("--workers must be auto or at least 1 (got '\(workers)')")
        }
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1") }
        if pretrained != nil && resume != nil && resume != "auto" {
            throw ValidationError("--pretrained and --resume exclude each other: a checkpoint already holds the weights")
        }
        guard ["auto", "imagenet", "tiny-imagenet", "small"].contains(trainTransform) else {
            throw ValidationError("--train-transform must be auto, imagenet, tiny-imagenet or small")
        }
        guard ["auto", "imagenet", "native"].contains(evalTransform) else {
            throw ValidationError("--eval-transform must be auto, imagenet or native")
        }
        guard hflip >= 0 && hflip <= 1 else { throw ValidationError("--hflip must be between 0 and 1") }
        guard ClassifierHead(head) != nil else {
            throw ValidationError("--head must be linear or mlp:<hidden units> (e.g. mlp:512), got '\(head)'")
        }
        guard learningRate > 0 else { throw ValidationError("--lr must be positive") }
        do { try makeConfig().validate() } catch { throw ValidationError("\(error)") }
        guard Architecture.named(model) != nil else {
            throw ValidationError("unknown model '\(model)'; available: \(Architecture.listedNames.joined(separator: ", "))")
        }
    }

    func run() throws {
        let config = try makeConfig()
        if printConfig {
            print(try config.prettyJSON())
            return
        }
        try Trainer.launch(config)
    }

    /// The flags as a configuration (defaults, then the --config file's flags, then the typed ones).
    func makeConfig() throws -> TrainConfig {
        var config = TrainConfig()
        dataset.apply(to: &config)
        config.model = model
        config.stem = stem.rawValue
        config.numClasses = numClasses
        config.epochs = epochs
        config.batchSize = batchSize
        config.imageSize = imageSize
        config.learningRate = learningRate
        try optimization.apply(to: &config)
        config.workers = Int(workers) ?? TrainConfig.automaticWorkers
        config.threads = threads
        config.seed = seed
        config.outputDirectory = output
        config.resume = resume
        config.pretrained = pretrained
        config.head = head
        config.trainTransformPreset = trainTransform
        config.evalTransformPreset = evalTransform
        config.hflip = hflip
        config.exactDecode = exactDecode
        config.fastUpsampling = fastUpsampling
        config.colorJitter = try colorJitter.map(TrainConfig.parseColorJitter)
        config.autoAugment = autoAugment
        config.freezeBackbone = freezeBackbone
        config.maxStepsPerEpoch = maxStepsPerEpoch
        config.interruptAfterEpoch = interruptAfterEpoch
        config.checkpointEvery = checkpointEvery
        config.interruptAfterStep = interruptAfterStep
        config.collectiveTimeout = collectiveTimeout
        config.onWorldSizeChange = onWorldSizeChange
        guard let compression = GradientCompression(rawValue: gradCompression) else {
            throw ValidationError("--grad-compression must be none, fp16 or bf16 (got '\(gradCompression)')")
        }
        config.gradCompression = compression
        config.syncBN = syncBn
        guard let overlapMode = OverlapMode(rawValue: overlap) else {
            throw ValidationError("--overlap must be auto, nonblocking, thread or off (got '\(overlap)')")
        }
        config.overlap = overlapMode
        config.bucketMB = bucketMb
        config.convAlgorithm = convAlgorithm
        config.traceSamples = traceSamples
        if let simulateStall {
            let parts = simulateStall.split(separator: ":").compactMap { Int($0) }
            guard parts.count == 2 else { throw ValidationError("--simulate-stall takes RANK:STEP, e.g. 1:5") }
            config.simulateStall = .init(rank: parts[0], step: parts[1])
        }
        config.labelSmoothing = labelSmoothing
        config.mixupAlpha = mixupAlpha
        config.cutmixAlpha = cutmixAlpha
        config.mixupSwitchProbability = mixupSwitchProb
        config.clipGradNorm = clipGradNorm
        config.emaDecay = emaDecay
        config.logEvery = logEvery
        config.evalEvery = evalEvery
        config.evalOn = evalOn
        config.saveBestBy = saveBestBy
        config.quiet = quiet
        config.progress = progress
        config.accumulate = accumulate
        config.tensorBoard = !noTensorboard
        return config
    }
}


/// Optimizer and schedule flags, named as in torchvision's reference script and timm.
struct OptimizationOptions: ParsableArguments {
    @Option(help: "sgd, adam or adamw (torch.optim semantics).")
    var optimizer = "sgd"

    @Option(help: "SGD momentum.")
    var momentum: Float = 0.9

    @Flag(help: "SGD Nesterov momentum.")
    var nesterov = false

    @Option(help: "Adam/AdamW β1,β2.")
    var optBetas = "0.9,0.999"

    @Option(help: "Adam/AdamW ε.")
    var optEps: Float = 1e-8

    @Option(help: "Weight decay: L2 added to the gradient (sgd, adam) or decoupled (adamw).")
    var weightDecay: Float = 5e-4

    @Flag(help: "No weight decay on biases and BatchNorm parameters (timm's rule: 1-D parameters and .bias).")
    var noWdOnNormAndBias = false

    @Option(help: "Learning-rate schedule: constant, multistep (--milestones, --gamma; per epoch), step (--step-size, --gamma; per epoch), cosine (per step, to --min-lr) or onecycle (per step, its own warm-up).")
    var lrSchedule = "cosine"

    @Option(help: "multistep: epochs after warm-up at which the LR is multiplied by --gamma, e.g. 30,60.")
    var milestones = ""

    @Option(help: "step: multiply the LR by --gamma every this many epochs.")
    var stepSize = 30

    @Option(help: "multistep/step: the LR factor at each decay.")
    var gamma: Float = 0.1

    @Option(help: "cosine: the LR at the end of the run.")
    var minLr: Float = 0

    @Option(help: "none, or linear: the LR becomes --lr × global batch ÷ 256 (Goyal et al.; pair it with --warmup-epochs).")
    var lrScaling = "none"

    @Option(help: "Linear warm-up epochs (from 0.01 × --lr, per step) before the schedule; ignored by onecycle.")
    var warmupEpochs: Float = 1

    func apply(to config: inout TrainConfig) throws {
        config.optimizer = optimizer
        config.momentum = momentum
        config.nesterov = nesterov
        let betas = optBetas.split(separator: ",").compactMap { Float($0.trimmingCharacters(in: .whitespaces)) }
        guard betas.count == 2 else { throw TrainingError("--opt-betas takes two numbers, e.g. 0.9,0.999 (got '\(optBetas)')") }
        config.optimizerBetas = betas
        config.optimizerEpsilon = optEps
        config.weightDecay = weightDecay
        config.noWeightDecayOnNormAndBias = noWdOnNormAndBias
        config.lrSchedule = lrSchedule
        config.milestones = milestones.isEmpty ? [] : try LearningRateSchedule.parseMilestones(milestones)
        config.stepSize = stepSize
        config.gamma = gamma
        config.minLR = minLr
        config.warmupEpochs = warmupEpochs
        config.lrScaling = lrScaling
    }
}
