import DataParallel
import DataPipeline
import Foundation
import Kernels
import NN

/// The training loop, readable top to bottom (torchvision's reference `train.py` order):
/// set the sampler's epoch → train one epoch → average BatchNorm statistics → evaluate →
/// rank 0 logs, keeps the best model and writes checkpoints.
public final class Trainer {
    /// `var`: resuming on another world size may change the batch split (`adaptToWorldSize`).
    var config: TrainConfig
    let comm: any Communicator
    let isRoot: Bool
    let trainSet: ImageDataset
    let valSet: ImageDataset
    let dataFormat: DatasetFormat
    let model: ClassifierModel
    let optimizer: any Optimizer
    let mixup: MixupCutmix
    let gradientReduction: OverlappedAllReduce
    let loss: SoftmaxCrossEntropy
    let runDirectory: String
    var stepsPerEpoch: Int
    var schedule: LearningRateSchedule
    let trainTransform: TrainTransform
    let evalResize: Int
    var state: TrainingState
    var runLog: RunLog?
    /// `--ema-decay`: the averaged weights, evaluated beside the model.
    let ema: ModelEMA?

    /// Entry point of `swift-dp-train train`: picks the communicator (MPI under mpirun) and runs.
    /// A set-up error is reported once and every rank exits 1; an error once training has
    /// started prints one line and aborts the whole job (MPI_Abort), so no rank waits forever.
    public static func launch(_ config: TrainConfig) throws {
        let comm: any Communicator = MPICommunicator.isLaunchedByMPI
            ? MPICommunicator(threadMultiple: config.collectiveTimeout > 0 || config.overlap == .thread)
            : SingleProcessCommunicator()
        // Set-up does no collective, so a bad path or option is agreed on and reported once,
        // and every rank exits cleanly.
        var trainer: Trainer?
        var failure: String?
        do { trainer = try Trainer(config: config, communicator: comm) } catch { failure = "\(error)" }
        if reportSetUpFailure(failure, communicator: comm) {
            comm.finalize()
            exit(1)
        }
        // After set-up: scanning a dataset may take some ranks much longer than others.
        if let unavailable = comm.startWatchdog(timeout: config.collectiveTimeout), comm.rank == 0 { warn(unavailable) }
        do {
            try trainer!.synchronizeStartingState()
            try trainer!.run()
        } catch let stopped as RunStopped {
            // Every rank stops at the same step, so the job ends cleanly without MPI_Abort.
            if comm.rank == 0 { FileHandle.standardError.write(Data(("error: " + stopped.description + "\n").utf8)) }
            trainer!.gradientReduction.stop()
            comm.finalize()
            exit(1)
        } catch {
            failJob("\(error)", communicator: comm)
        }
        // The communication thread (--overlap thread) ends before MPI does.
        trainer!.gradientReduction.stop()
        comm.finalize()
    }

    init(config: TrainConfig, communicator comm: any Communicator) throws {
        try config.validate()
        self.config = config
        self.comm = comm
        loss = SoftmaxCrossEntropy(labelSmoothing: config.labelSmoothing)
        isRoot = comm.rank == 0
        let coresPerRank = max(1, ProcessInfo.processInfo.activeProcessorCount / max(comm.localSize, 1))
        let threads = config.threads ?? coresPerRank
        setComputeThreads(threads)
        if config.workers == TrainConfig.automaticWorkers {
            self.config.workers = Trainer.decodeWorkers(coresPerRank: coresPerRank, computeThreads: threads)
        }

        let dataset = try openData(config.datasetSelection, communicator: comm)
        trainTransform = try config.trainTransform()
        evalResize = try config.evalResize()
        trainSet = dataset.train
        valSet = dataset.val
        dataFormat = dataset.format
        let numClasses = config.numClasses ?? dataset.classNames.count
        guard let stem = ResNetStem(rawValue: config.stem) else { throw TrainingError("unknown stem '\(config.stem)'") }
        guard let head = ClassifierHead(config.head) else {
            throw TrainingError("unknown head '\(config.head)': use linear or mlp:<hidden units>, e.g. mlp:512")
        }
        Conv2d.defaultAlgorithm = config.convAlgorithm
        let model = try ClassifierModel(architecture: config.model, numClasses: numClasses, stem: stem, head: head,
                                        seed: config.seed)
        model.freezeBackbone = config.freezeBackbone
        if config.syncBN && comm.worldSize > 1 {
            model.store.batchNormCrossReplicaSum = { [comm] values, count in comm.allReduceSum(values, count: count) }
        }
        self.model = model
        ema = try config.emaDecay.map { try ModelEMA(like: model, decay: $0) }
        optimizer = Trainer.makeOptimizer(config, store: model.store)
        mixup = MixupCutmix(mixupAlpha: config.mixupAlpha, cutmixAlpha: config.cutmixAlpha,
                            switchProbability: config.mixupSwitchProbability, labelSmoothing: config.labelSmoothing,
                            numClasses: numClasses)
        // Only what trains is reduced: with a frozen backbone, the head's tail of the buffer.
        let trainable = model.trainableRange
        let buckets = GradientBuckets(
            parameters: model.store.parameters.filter { trainable.contains($0.offset) }
                .map { ($0.offset - trainable.lowerBound, $0.count) },
            totalCount: trainable.count, bucketBytes: Int(config.bucketMB * 1_048_576))
        var overlap = config.overlap
        if overlap == .thread && config.syncBN && comm.worldSize > 1 {
            // Sync-BN's collectives inside backward must not race a second thread's (Note [Overlapped all-reduce]).
            overlap = .nonblocking
        }
        if overlap == .thread, let mpi = comm as? MPICommunicator, !mpi.allowsConcurrentThreads {
            if isRoot { warn("this Open MPI does not provide MPI_THREAD_MULTIPLE: --overlap nonblocking instead of thread") }
            overlap = .nonblocking
        }
        gradientReduction = OverlappedAllReduce(buckets: buckets, communicator: comm,
                                                compression: config.gradCompression, mode: overlap)
        if gradientReduction.mode != .off {
            let reduction = gradientReduction, base = trainable.lowerBound
            model.store.gradientReady = { offset, count in reduction.gradientReady(offset: offset - base, count: count) }
        }
        state = TrainingState(classNames: dataset.classNames)
        state.classDescriptions = dataset.classDescriptions

        // `--resume auto`: rank 0 looks for the newest checkpoint in the run directory (only it
        // writes there); the other ranks learn the outcome with the state it broadcasts.
        var resumeFrom = config.resume
        if config.resume == Trainer.automaticResume {
            guard let directory = config.outputDirectory else {
                throw TrainingError("--resume auto needs --output DIR: the run directory to look for checkpoints in")
            }
            resumeFrom = isRoot ? try Checkpoint.newest(in: directory) : nil
            if isRoot && resumeFrom == nil { print("--resume auto: no checkpoint in \(directory) yet, starting the run") }
        }
        if config.freezeBackbone && config.pretrained == nil && config.resume == nil && isRoot {
            warn("--freeze-backbone without --pretrained trains a head on a randomly initialised backbone")
        }
        if let pretrained = config.pretrained, resumeFrom == nil, comm.rank == 0 {
            // Rank 0 reads the file; `synchronizeStartingState` hands the weights to every rank.
            try PretrainedWeights.load(path: pretrained, into: model, log: { print($0) })
        }
        if let resume = resumeFrom {
            // Only rank 0 reads the file (nodes need not share a filesystem); the weights and
            // state reach the other ranks in `synchronizeStartingState`.
            if isRoot {
                state = try Checkpoint.load(from: resume, model: model, optimizer: optimizer, ema: ema, config: config,
                                            worldSize: comm.worldSize)
                print("resuming from \(resume): epoch \(state.epoch + 1), global step \(state.globalStep)")
            }
            runDirectory = config.outputDirectory ?? (resume as NSString).deletingLastPathComponent
        } else {
            runDirectory = config.outputDirectory ?? Trainer.defaultRunDirectory()
        }

        stepsPerEpoch = Trainer.stepsPerEpoch(config, datasetSize: trainSet.count, worldSize: comm.worldSize)
        schedule = try config.learningRateSchedule(stepsPerEpoch: stepsPerEpoch, worldSize: comm.worldSize)
        if isRoot { try prepareRunDirectory(threads: threads) }
    }

    /// `--resume auto`.
    static let automaticResume = "auto"

    /// `--workers auto`: the cores a rank has beyond its compute threads decode; with none
    /// left, one thread shares the cores (decoding is far cheaper per image than a training
    /// step, so one keeps up: data-wait stays near 0% in the epoch summaries). More than 4
    /// only adds memory.
    static func decodeWorkers(coresPerRank: Int, computeThreads: Int) -> Int {
        min(4, max(1, coresPerRank - computeThreads))
    }

    static func stepsPerEpoch(_ config: TrainConfig, datasetSize: Int, worldSize: Int) -> Int {
        let sampler = GlobalBatchSampler(datasetSize: datasetSize, worldSize: worldSize, rank: 0, seed: config.seed,
                                         globalBatch: worldSize * config.batchSize * config.accumulate)
        var steps = sampler.steps(from: 0)
        if let limit = config.maxStepsPerEpoch { steps = min(steps, limit) }
        return max(steps, 1)
    }

    func globalBatchSampler() -> GlobalBatchSampler {
        GlobalBatchSampler(datasetSize: trainSet.count, worldSize: comm.worldSize, rank: comm.rank, seed: config.seed,
                           globalBatch: comm.worldSize * config.batchSize * config.accumulate)
    }

    /// Collective (after the state broadcast, so every rank decides alike): a checkpoint
    /// written by another number of ranks continues with the same global batch, split as
    /// batch × accumulation over these ranks (`keep-global-batch`), or with this run's batch
    /// and the learning rate scaled by the change of global batch (`scale-lr`); the sample
    /// cursor carries on either way (Note [Global sample cursor]).
    func adaptToWorldSize() throws {
        let world = comm.worldSize
        defer {
            state.worldSize = world
            state.globalBatch = world * config.batchSize * config.accumulate
        }
        guard let savedWorld = state.worldSize, savedWorld != world, let saved = state.globalBatch else {
            // A factor from an earlier change of world size (scale-lr) still holds.
            if let factor = state.learningRateFactor {
                schedule = try config.learningRateSchedule(stepsPerEpoch: stepsPerEpoch, worldSize: world, factor: Float(factor))
            }
            return
        }
        let before = "a checkpoint of \(savedWorld) rank(s) with global batch \(saved)"
        switch config.onWorldSizeChange {
        case "scale-lr":
            let global = world * config.batchSize * config.accumulate
            if config.lrScaling != "linear" {
                // Linear scaling already follows the global batch.
                state.learningRateFactor = (state.learningRateFactor ?? 1) * Double(global) / Double(saved)
            }
            stepsPerEpoch = Trainer.stepsPerEpoch(config, datasetSize: trainSet.count, worldSize: world)
            // The schedule continues at the same fraction of training, counted in the new steps.
            let cursor = state.sampleCursor ?? (state.stepInEpoch ?? 0) * saved
            state.stepInEpoch = state.stepInEpoch.map { _ in cursor / global }
            state.globalStep = state.epoch * stepsPerEpoch + (state.stepInEpoch ?? 0)
            state.sampleCursor = state.stepInEpoch == nil ? nil : cursor
            log("resuming \(before) on \(world) rank(s) × batch \(config.batchSize)"
                + (config.accumulate > 1 ? " × \(config.accumulate) accumulated" : "")
                + " = global batch \(global); learning rate × \(String(format: "%g", state.learningRateFactor ?? 1)) (--on-world-size-change scale-lr)")
        default:
            var batch = config.batchSize, accumulate = config.accumulate
            if world * batch * accumulate != saved {
                if saved % (world * batch) == 0 {
                    accumulate = saved / (world * batch)
                } else if saved % (world * accumulate) == 0 {
                    batch = saved / (world * accumulate)
                } else {
                    throw TrainingError("cannot resume \(before) on \(world) rank(s): \(saved) is not a multiple of \(world) × "
                        + "batch \(batch) or of \(world) × accumulate \(accumulate); run on a world size that divides it, "
                        + "or use --on-world-size-change scale-lr")
                }
            }
            config.batchSize = batch
            config.accumulate = accumulate
            // The same global batch; the epoch's padding to a multiple of the ranks may differ.
            stepsPerEpoch = Trainer.stepsPerEpoch(config, datasetSize: trainSet.count, worldSize: world)
            log("resuming \(before) on \(world) rank(s): global batch kept as \(world) rank(s) × batch \(batch)"
                + (accumulate > 1 ? " × \(accumulate) accumulated" : "") + " (--on-world-size-change keep-global-batch)")
        }
        schedule = try config.learningRateSchedule(stepsPerEpoch: stepsPerEpoch, worldSize: world,
                                                   factor: Float(state.learningRateFactor ?? 1))
    }

    static func makeOptimizer(_ config: TrainConfig, store: ParameterStore) -> any Optimizer {
        let decays = config.noWeightDecayOnNormAndBias ? WeightDecaySelection.noDecayOnNormAndBias
                                                       : WeightDecaySelection.everyParameter
        switch config.optimizer {
        case "adam", "adamw":
            return Adam(store: store, beta1: config.optimizerBetas[0], beta2: config.optimizerBetas[1],
                        epsilon: config.optimizerEpsilon, weightDecay: config.weightDecay,
                        decoupledWeightDecay: config.optimizer == "adamw", weightDecayApplies: decays)
        default:
            return SGD(store: store, momentum: config.momentum, weightDecay: config.weightDecay, nesterov: config.nesterov,
                       weightDecayApplies: decays)
        }
    }

    func run() throws {
        let progress = ProgressLine(mode: config.quiet ? .none : ProgressLine.Mode(rawValue: config.progress) ?? .auto)
        if state.epoch >= config.epochs {
            log("checkpoint already holds \(state.epoch) epochs (--epochs \(config.epochs)): nothing to do")
            return
        }
        let criterion = BestModelCriterion(rawValue: config.saveBestBy) ?? .valTop1
        // Checkpoints from before --save-best-by kept only the best top-1.
        if state.bestScore == nil && state.bestTop1 >= 0 && criterion == .valTop1 { state.bestScore = state.bestTop1 }
        while state.epoch < config.epochs {
            let epoch = state.epoch
            let started = Date()
            guard let train = try trainOneEpoch(epoch: epoch, progress: progress) else {
                log("stopping after step \(state.globalStep) as asked (--interrupt-after-step); resume with --resume auto --output \(runDirectory)")
                return
            }
            let trainSeconds = Date().timeIntervalSince(started)
            averageBatchNormStatistics()
            try checkReplicasAgree()
            let evaluates = (epoch + 1) % config.evalEvery == 0 || epoch + 1 == config.epochs
            comm.setPhase(.evaluation(epoch: epoch + 1))
            let eval = evaluates ? try evaluate(model) : nil
            var emaEval: EvaluationTotals?
            if evaluates, let ema {
                averageBatchNormStatistics(of: ema.model)
                emaEval = try evaluate(ema.model)
            }
            state.epoch = epoch + 1
            // The best model is the raw one or its EMA, whichever scores higher (as timm keeps it).
            var improved = false
            var bestModel = model
            if let eval {
                var best = (eval, criterion.score(top1: eval.top1, loss: eval.loss, f1: eval.f1 ?? 0))
                if let emaEval, let ema {
                    let score = criterion.score(top1: emaEval.top1, loss: emaEval.loss, f1: emaEval.f1 ?? 0)
                    if score > best.1 { best = (emaEval, score); bestModel = ema.model }
                }
                improved = state.bestScore.map { best.1 > $0 } ?? true
                if improved {
                    state.bestScore = best.1
                    state.bestTop1 = best.0.top1
                    state.bestIsEMA = bestModel !== model
                }
            }

            comm.setPhase(.rootWrites(epoch: epoch + 1))
            if isRoot {
                var metrics = EpochMetrics(
                    epoch: epoch + 1, step: state.globalStep,
                    lr: Double(schedule.learningRate(atStep: max(state.globalStep - 1, 0))),
                    trainLoss: train.loss, trainTop1: train.top1, imagesPerSecond: Double(train.images) / trainSeconds,
                    epochSeconds: 0, dataWait: train.dataWait, commSeconds: train.commSeconds,
                    skippedImages: train.skipped + (eval?.skipped ?? 0), worldSize: comm.worldSize)
                if let eval {
                    metrics.valLoss = eval.loss
                    metrics.valTop1 = eval.top1
                    metrics.valTop5 = eval.top5
                    metrics.valImages = eval.images
                    metrics.valPrecision = eval.precision
                    metrics.valRecall = eval.recall
                    metrics.valF1 = eval.f1
                }
                if let emaEval {
                    metrics.emaValLoss = emaEval.loss
                    metrics.emaValTop1 = emaEval.top1
                    metrics.emaValTop5 = emaEval.top5
                }
                metrics.epochSeconds = Date().timeIntervalSince(started)
                try runLog?.epoch(metrics)
                if let matrix = eval?.confusion {
                    let csv = Array(matrix.csv(classNames: state.classNames).utf8)
                    try writeAtomically(csv, to: runDirectory + "/confusion_matrix.csv")
                    try writeAtomically(Array(matrix.classMetricsCSV(classNames: state.classNames).utf8),
                                        to: runDirectory + "/class_metrics.csv")
                    if improved && bestModel === model { try writeAtomically(csv, to: runDirectory + "/confusion_matrix_best.csv") }
                    if epoch + 1 == config.epochs { print(matrix.summary(classNames: state.classNames)) }
                }
                try saveCheckpoint(named: "last.safetensors", metrics: metrics)
                if improved { try saveCheckpoint(named: "best.safetensors", metrics: metrics, weights: bestModel) }
                print(Trainer.epochSummary(metrics, epochs: config.epochs, improved: improved))
            }
            if let stop = config.interruptAfterEpoch, state.epoch == stop, state.epoch < config.epochs {
                log("stopping after epoch \(stop) as asked (--interrupt-after-epoch); resume with --resume \(runDirectory)/last.safetensors")
                return
            }
        }
        if isRoot {
            let best = state.bestTop1 >= 0 ? String(format: "best val top-1 %.2f%%", state.bestTop1 * 100) : "no evaluation"
            print("done: \(best) (best by \(criterion.rawValue)); checkpoints in \(runDirectory)")
        }
    }

    static func epochSummary(_ m: EpochMetrics, epochs: Int, improved: Bool) -> String {
        var text = String(format: "epoch %d/%d  train loss %.4f  top-1 %.2f%%", m.epoch, epochs, m.trainLoss, m.trainTop1 * 100)
        if let loss = m.valLoss, let top1 = m.valTop1, let top5 = m.valTop5 {
            text += String(format: "  |  val loss %.4f  top-1 %.2f%%  top-5 %.2f%%", loss, top1 * 100, top5 * 100)
            if let f1 = m.valF1 { text += String(format: "  F1 %.4f", f1) }
            if let emaTop1 = m.emaValTop1 { text += String(format: "  EMA top-1 %.2f%%", emaTop1 * 100) }
            text += "  (\(m.valImages ?? 0) images)"
        }
        text += String(format: "  |  %.1f img/s  data-wait %.0f%%  %@", m.imagesPerSecond, m.dataWait * 100,
                       formatDuration(m.epochSeconds))
        if improved { text += "  best" }
        if m.skippedImages > 0 { text += "  skipped \(m.skippedImages) image(s)" }
        return text
    }

    // MARK: - One epoch

    struct TrainSummary {
        var loss: Double, top1: Double, images: Int, skipped: Int
        /// Share of training time spent waiting for batches, and mean all-reduce seconds per step.
        var dataWait: Double, commSeconds: Double
    }

    /// Sums since the last step line, per rank; reduced over ranks when a line is written.
    struct StepWindow {
        var lossSum = 0.0, correct = 0.0, images = 0.0, waitSeconds = 0.0, commSeconds = 0.0, steps = 0.0
        var gradNormSum = 0.0
        var started = ProcessInfo.processInfo.systemUptime
    }

    /// Trains from the epoch's saved position (a mid-epoch checkpoint) to its end; nil when
    /// `--interrupt-after-step` stopped it.
    func trainOneEpoch(epoch: Int, progress: ProgressLine) throws -> TrainSummary? {
        let sampler = globalBatchSampler()
        // The epoch's order depends on (seed, epoch) alone, and every random choice on (seed,
        // epoch, sample) or (seed, step, rank): starting at a saved step gives exactly the rest.
        let firstStep = state.stepInEpoch ?? 0
        var cursor = state.sampleCursor ?? firstStep * sampler.globalBatch
        let stepCount = min(sampler.steps(from: cursor), max(stepsPerEpoch - firstStep, 0))
        let (indices, stepEnds) = sampler.indices(epoch: epoch, from: cursor, steps: stepCount)
        let loader = BatchLoader(dataset: trainSet, indices: indices, batchSize: config.batchSize,
                                 imageSize: config.imageSize, augmentation: .train(trainTransform), seed: config.seed, epoch: epoch,
                                 workers: config.workers, maxPixels: config.maxPixels, warn: { warn($0) })
        defer { loader.stop() }
        var lossSum = 0.0, correct = 0, images = 0, skipped = 0, waitSeconds = 0.0, commSeconds = 0.0
        if isRoot, let saved = state.partialTotals, saved.count == 6 {
            // The epoch's sums up to the checkpoint, over all ranks: rank 0 carries them.
            lossSum = saved[0]; correct = Int(saved[1]); images = Int(saved[2]); skipped = Int(saved[3])
            waitSeconds = saved[4]; commSeconds = saved[5]
        }
        var window = StepWindow()
        let started = ProcessInfo.processInfo.systemUptime
        let scale = 1 / Float(comm.worldSize)
        let trainable = model.trainableRange
        let microBatches = config.accumulate
        for step in firstStep..<(firstStep + stepCount) {
            comm.setPhase(.trainStep(epoch: epoch + 1, step: step + 1))
            if let stall = config.simulateStall, stall.step == state.globalStep + 1, stall.rank == comm.rank {
                Thread.sleep(forTimeInterval: 3600)  // a wedged rank, for the watchdog's test
            }
            model.store.zeroGradients()
            var batchLoss: Float = 0, batchCorrect = 0, batchImages = 0, waited = 0.0
            // --accumulate N: N micro-batches add their gradients before one all-reduce and step
            // (DDP's no_sync); each backward is of its micro-batch's mean loss, so the sum is
            // scaled by 1/N below.
            for micro in 0..<microBatches {
                let waitStart = ProcessInfo.processInfo.systemUptime
                guard let batch = loader.next() else { break }
                waited += ProcessInfo.processInfo.systemUptime - waitStart
                if config.strictData, let problem = batch.problems.first {
                    throw TrainingError(problem + " (--strict-data)")
                }
                skipped += batch.skipped
                if batch.count > 0 {
                    let stream = UInt64(comm.rank) &* UInt64(microBatches) &+ UInt64(micro)
                    model.reseedStochasticLayers(seed: config.seed, step: state.globalStep, stream: Int(stream))
                    var targets: [Float]?
                    if mixup.isActive {
                        // Its own stream per (seed, step, rank, micro-batch): a resumed run draws the same mixes.
                        var rng = SplitMix64(seed: mixSeed(config.seed, UInt64(state.globalStep), stream))
                        targets = mixup.apply(images: batch.images, labels: Array(batch.labels.prefix(batch.count)), rng: &rng).targets
                    }
                    let logits = model.forward(batch.images, mode: .train)
                    let microLoss: Float
                    if let targets {
                        microLoss = targets.withUnsafeBufferPointer { loss.forward(logits: logits, targets: $0.baseAddress!) }
                    } else {
                        microLoss = batch.labels.withUnsafeBufferPointer { loss.forward(logits: logits, labels: $0.baseAddress!) }
                    }
                    batchLoss += microLoss * Float(batch.count)
                    batchCorrect += loss.correctCount(topK: 1)
                    if micro == microBatches - 1 {
                        // This backward completes the step's gradients: its buckets go as they fill.
                        gradientReduction.beginBackward(gradients: model.store.gradients + trainable.lowerBound)
                    }
                    model.backward(loss.backward())
                }
                batchImages += batch.count
                loader.recycle(batch)
            }
            if batchImages > 0 { batchLoss /= Float(batchImages) }
            // What backward did not hide: the wait for the buckets still in flight.
            let communicated = gradientReduction.finish(gradients: model.store.gradients + trainable.lowerBound)
            // Every rank now holds the same summed gradient, so all of them reach the same verdict.
            let gradNorm = sumOfSquares(model.store.gradients + trainable.lowerBound, count: trainable.count).squareRoot()
                * Double(scale) / Double(microBatches)
            let lr = schedule.learningRate(atStep: state.globalStep)
            guard gradNorm.isFinite else {
                throw RunStopped(nonFiniteMessage(epoch: epoch, step: step, loss: batchLoss, lr: lr))
            }
            var stepScale = scale / Float(microBatches)
            if let maxNorm = config.clipGradNorm {
                // torch.nn.utils.clip_grad_norm_: scale by max_norm / (‖g‖ + 1e-6) when that is below 1.
                stepScale *= Float(min(1, Double(maxNorm) / (gradNorm + 1e-6)))
            }
            optimizer.step(learningRate: lr, gradientScale: stepScale, range: trainable)
            ema?.update(from: model)
            state.globalStep += 1
            cursor += sampler.stepLength(at: cursor)
            if let trace = config.traceSamples {
                let k = step - firstStep, from = k == 0 ? 0 : stepEnds[k - 1]
                traceSamples(indices[from..<stepEnds[k]], epoch: epoch, directory: trace)
            }

            lossSum += Double(batchLoss) * Double(batchImages)
            correct += batchCorrect
            images += batchImages
            waitSeconds += waited
            commSeconds += communicated
            window.lossSum += Double(batchLoss) * Double(batchImages)
            window.correct += Double(batchCorrect)
            window.images += Double(batchImages)
            window.waitSeconds += waited
            window.commSeconds += communicated
            window.gradNormSum += gradNorm
            window.steps += 1
            try runLog?.learningRate(Double(lr), step: state.globalStep)
            if state.globalStep % config.logEvery == 0 {
                let elapsed = ProcessInfo.processInfo.systemUptime - started
                let left = elapsed / Double(step + 1) * Double(stepsPerEpoch - step - 1)
                try writeStepLine(&window, epoch: epoch, step: step, lr: lr, progress: progress, secondsLeft: left)
            }
            if let every = config.checkpointEvery, state.globalStep % every == 0, step + 1 < firstStep + stepCount {
                try saveMidEpochCheckpoint(stepInEpoch: step + 1, cursor: cursor, sums: [lossSum, Double(correct), Double(images),
                                                                         Double(skipped), waitSeconds, commSeconds])
                if config.interruptAfterStep == state.globalStep { return nil }
            }
            if isRoot {
                let elapsed = ProcessInfo.processInfo.systemUptime - started
                let left = elapsed / Double(step + 1 - firstStep) * Double(stepsPerEpoch - step - 1)
                progress.update(.init(epoch: epoch + 1, epochs: config.epochs, step: step + 1, steps: stepsPerEpoch,
                                      loss: lossSum / Double(max(images, 1)), top1: Double(correct) / Double(max(images, 1)),
                                      imagesPerSecond: Double(images * comm.worldSize) / max(elapsed, 1e-9),
                                      dataWait: waitSeconds / max(elapsed, 1e-9), secondsLeft: left))
            }
        }
        state.stepInEpoch = nil
        state.sampleCursor = nil
        state.partialTotals = nil
        comm.setPhase(.epochEnd(epoch: epoch + 1))
        let elapsed = ProcessInfo.processInfo.systemUptime - started
        var totals = [lossSum, Double(correct), Double(images), Double(skipped), waitSeconds / max(elapsed, 1e-9), commSeconds]
        comm.allReduceSum(&totals)
        let n = max(totals[2], 1), ranks = Double(comm.worldSize)
        return TrainSummary(loss: totals[0] / n, top1: totals[1] / n, images: Int(totals[2]), skipped: Int(totals[3]),
                            dataWait: totals[4] / ranks, commSeconds: totals[5] / ranks / Double(max(stepsPerEpoch, 1)))
    }

    /// Collective, every `--checkpoint-every` steps inside an epoch: BatchNorm statistics are
    /// averaged (so the file holds what every rank holds, and a resumed run continues exactly),
    /// the epoch's sums so far are reduced into the state, and rank 0 replaces last.safetensors.
    func saveMidEpochCheckpoint(stepInEpoch: Int, cursor: Int, sums: [Double]) throws {
        comm.setPhase(.midEpochCheckpoint(epoch: state.epoch + 1, step: stepInEpoch))
        averageBatchNormStatistics()
        var totals = sums
        comm.allReduceSum(&totals)
        state.stepInEpoch = stepInEpoch
        state.sampleCursor = cursor
        state.partialTotals = totals
        if isRoot {
            try Checkpoint.save(to: runDirectory + "/last.safetensors", model: model, optimizer: optimizer, ema: ema,
                                state: state, config: config, worldSize: comm.worldSize)
        }
        state.stepInEpoch = nil
        state.sampleCursor = nil
        state.partialTotals = nil
    }

    /// `--trace-samples DIR` (tests): the samples this rank trained on, a line per sample.
    func traceSamples(_ samples: ArraySlice<Int>, epoch: Int, directory: String) {
        let path = directory + "/rank-\(comm.rank).txt"
        if !FileManager.default.fileExists(atPath: path) { FileManager.default.createFile(atPath: path, contents: nil) }
        guard let handle = FileHandle(forWritingAtPath: path) else { return }
        handle.seekToEndOfFile()
        handle.write(Data(samples.map { "\(epoch) \(state.globalStep) \($0)\n" }.joined().utf8))
        handle.closeFile()
    }

    /// Collective (every rank calls it at the same steps): averages the window over ranks and
    /// rank 0 writes the step line.
    func writeStepLine(_ window: inout StepWindow, epoch: Int, step: Int, lr: Float, progress: ProgressLine,
                       secondsLeft: Double) throws {
        comm.setPhase(.stepLine(epoch: epoch + 1, step: step + 1))
        let elapsed = ProcessInfo.processInfo.systemUptime - window.started
        var sums = [window.lossSum, window.correct, window.images, window.waitSeconds / max(elapsed, 1e-9),
                    window.commSeconds / max(window.steps, 1)]
        comm.allReduceSum(&sums)
        let ranks = Double(comm.worldSize), n = max(sums[2], 1)
        if isRoot {
            let line = StepMetrics(
                step: state.globalStep, epoch: Double(epoch) + Double(step + 1) / Double(stepsPerEpoch), lr: Double(lr),
                loss: sums[0] / n, top1: sums[1] / n, imagesPerSecond: sums[2] / max(elapsed, 1e-9),
                dataWait: sums[3] / ranks, commSeconds: sums[4] / ranks, gradNorm: window.gradNormSum / max(window.steps, 1))
            try runLog?.step(line)
            progress.stepLine(.init(epoch: epoch + 1, epochs: config.epochs, step: step + 1, steps: stepsPerEpoch,
                                    loss: line.loss, top1: line.top1, imagesPerSecond: line.imagesPerSecond,
                                    dataWait: line.dataWait, secondsLeft: secondsLeft))
        }
        window = StepWindow()
    }

    func nonFiniteMessage(epoch: Int, step: Int, loss: Float, lr: Float) -> String {
        let kept = state.epoch > 0
            ? "the last good checkpoint is \(runDirectory)/last.safetensors (epoch \(state.epoch)), untouched"
            : "no checkpoint was written yet (the first epoch had not finished)"
        return "step \(state.globalStep + 1) (epoch \(epoch + 1), step \(step + 1) of \(stepsPerEpoch)): the gradient is not finite "
            + "(rank \(comm.rank)'s loss \(loss)); stopped before updating the weights; \(kept). "
            + "Try a lower learning rate (--lr, now \(lr) at this step) or gradient clipping (--clip-grad-norm 1.0)"
    }

    /// DDP keeps per-rank BatchNorm statistics; averaging them before evaluation and
    /// checkpointing makes every rank (and the saved model) hold the same buffers.
    func averageBatchNormStatistics() { averageBatchNormStatistics(of: model) }

    func averageBatchNormStatistics(of model: ClassifierModel) {
        let store = model.store
        // A frozen backbone never updates its statistics, and averaging equal values could
        // still change their last bit.
        guard comm.worldSize > 1, store.floatBufferCount > 0, !model.freezeBackbone else { return }
        comm.allReduceSum(store.floatBuffers, count: store.floatBufferCount)
        let scale = 1 / Float(comm.worldSize)
        for i in 0..<store.floatBufferCount { store.floatBuffers[i] *= scale }
    }

    /// All ranks must hold the same weights, buffers and momentum after every step; a silent
    /// divergence (a rank that skipped an all-reduce, non-deterministic kernels) would make
    /// the run meaningless, so we compare a checksum once per epoch and stop if they differ.
    func checkReplicasAgree() throws {
        let store = model.store
        var hash = ReplicaChecksum()
        hash.add(store.values, count: store.parameterCount)
        hash.add(store.floatBuffers, count: store.floatBufferCount)
        for buffer in optimizer.stateBuffers { hash.add(buffer.pointer, count: store.parameterCount) }
        for i in 0..<store.intBufferCount { hash.add(UInt64(bitPattern: store.intBuffers[i])) }
        guard comm.worldSize > 1 else { return }
        let mine = withUnsafeBytes(of: hash.value.littleEndian) { Array($0) }
        var root = mine
        comm.broadcast(bytes: &root, root: 0)
        var disagreeing = [Double(root == mine ? 0 : 1)]
        comm.allReduceSum(&disagreeing)
        guard disagreeing[0] == 0 else {
            throw TrainingError("ranks hold different weights after epoch \(state.epoch + 1) (\(Int(disagreeing[0])) of \(comm.worldSize) differ from rank 0)")
        }
        if isRoot && state.epoch + 1 == config.epochs {
            print("replicas: all \(comm.worldSize) ranks hold identical weights, buffers and momentum (checksum \(String(hash.value, radix: 16)))")
        }
    }

    // MARK: - Evaluation

    /// Every validation image is evaluated exactly once, whatever the rank count.
    func evaluate(_ model: ClassifierModel) throws -> EvaluationTotals {
        try evaluateDataset(model: model, dataset: valSet, imageSize: config.imageSize, resize: evalResize,
                            batchSize: config.batchSize, workers: config.workers, maxPixels: config.maxPixels,
                            strict: config.strictData, onAllRanks: config.evalOn == "all", communicator: comm)
    }

    // MARK: - Files

    func prepareRunDirectory(threads: Int) throws {
        do {
            try FileManager.default.createDirectory(atPath: runDirectory, withIntermediateDirectories: true)
        } catch {
            throw TrainingError("\(runDirectory): cannot create the run directory (\(error.localizedDescription))")
        }
        removeUnfinishedWrites()
        var effective = config
        effective.numClasses = model.numClasses
        effective.threads = threads
        let json = try effective.prettyJSON()
        try Data(json.utf8).write(to: URL(fileURLWithPath: runDirectory + "/config.json"), options: .atomic)
        let compact = json.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.joined(separator: " ")
        print("config: \(compact)")
        runLog = try RunLog(directory: runDirectory, tensorBoard: config.tensorBoard)
        let training = model.freezeBackbone
            ? ", backbone frozen: \(model.trainableRange.count) of \(model.parameterCount) parameters train" : ""
        print("swift-dp-train: \(config.model) (\(config.stem) stem, \(config.head) head, \(model.numClasses) classes, "
              + "\(model.parameterCount) parameters\(training)), "
              + "\(comm.worldSize) rank(s) × batch \(config.batchSize)"
              + (config.accumulate > 1 ? " × \(config.accumulate) accumulated" : "")
              + " = global batch \(comm.worldSize * config.batchSize * config.accumulate), \(threads) thread(s) and "
              + "\(config.workers) decode worker(s) per rank")
        if config.lrScaling == "linear" {
            print("lr: \(config.learningRate) × global batch ÷ 256 = \(config.peakLearningRate(worldSize: comm.worldSize)) (--lr-scaling linear)")
        }
        if comm.worldSize > 1 {
            let sizes = gradientReduction.buckets.buckets.map(\.count)
            print("gradient all-reduce: \(sizes.count) bucket(s) of up to \(String(format: "%.1f", Double(sizes.max() ?? 0) * 4 / 1_048_576)) MiB, "
                  + "overlap \(gradientReduction.mode.rawValue)"
                  + (config.overlap == .auto ? " (--overlap auto: \(comm.localSize == comm.worldSize ? "all ranks on one host" : "ranks on several hosts"))" : "")
                  + (config.gradCompression == .none ? "" : ", \(config.gradCompression.rawValue) on the wire"))
        }
        if let events = runLog?.eventFile { print("tensorboard: \(events) (tensorboard --logdir \(runDirectory))") }
        print("data: \(trainSet.count) training / \(valSet.count) validation images (\(dataFormat.rawValue) layout); "
              + "\(stepsPerEpoch) steps per epoch; run directory \(runDirectory)")
        let crop = trainTransform.kind == .randomResizedCrop ? "RandomResizedCrop(\(config.imageSize))"
            : "RandomCrop(\(config.imageSize), padding 4)"
        var augmentation = ""
        if trainTransform.autoAugment != .none { augmentation += " + TrivialAugmentWide" }
        if let jitter = trainTransform.colorJitter, jitter.isActive {
            augmentation += " + ColorJitter(brightness \(jitter.brightness), contrast \(jitter.contrast), "
                + "saturation \(jitter.saturation), hue \(jitter.hue))"
        }
        print("transforms: train \(crop) + flip p=\(trainTransform.flipProbability)\(augmentation); "
              + "eval Resize(\(evalResize)) + CenterCrop(\(config.imageSize))")
    }

    /// A run killed while writing leaves its temporary file (`.last.safetensors.tmp-<pid>`,
    /// see `writeAtomically`) beside the intact previous checkpoint; nothing reads it again.
    func removeUnfinishedWrites() {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: runDirectory)) ?? []
        let leftovers = names.filter { $0.hasPrefix(".") && $0.range(of: #"\.tmp-[0-9]+$"#, options: .regularExpression) != nil }
        for name in leftovers { try? FileManager.default.removeItem(atPath: runDirectory + "/" + name) }
        if !leftovers.isEmpty {
            print("removed \(leftovers.count) unfinished write(s) left by a killed run: \(leftovers.joined(separator: ", "))")
        }
    }

    /// `weights`: the model whose tensors the file holds as the model (the EMA's for a best
    /// checkpoint it won); the optimizer state and EMA are always the run's.
    func saveCheckpoint(named name: String, metrics: EpochMetrics, weights: ClassifierModel? = nil) throws {
        try Checkpoint.save(to: runDirectory + "/" + name, model: weights ?? model, optimizer: optimizer, ema: ema,
                            state: state, config: config, worldSize: comm.worldSize, metrics: metrics)
    }

    static func defaultRunDirectory() -> String {
        // Rank 0's clock names the directory; only rank 0 writes there.
        let formatter = DateFormatter()
        formatter.dateFormat = "yyyyMMdd-HHmmss"
        formatter.locale = Locale(identifier: "en_US_POSIX")
        return "runs/" + formatter.string(from: Date())
    }

    /// Every rank starts from rank 0's weights, buffers, momentum and training state (as DDP
    /// broadcasts at construction).
    func synchronizeStartingState() throws {
        defer { optimizer.stepCount = state.globalStep }  // Adam's bias correction counts steps
        comm.setPhase(.startingState)
        if comm.worldSize > 1 {
            var bytes = isRoot ? Array(try JSONEncoder().encode(state)) : []
            comm.broadcast(bytes: &bytes, root: 0)
            state = try JSONDecoder().decode(TrainingState.self, from: Data(bytes))
            broadcastModelState(model: model, optimizer: optimizer, communicator: comm)
        }
        try adaptToWorldSize()
        guard let ema else { return }
        if state.globalStep == 0 {
            // A fresh run (after --pretrained and the broadcast): the average starts at the starting weights.
            ema.copy(from: model)
        } else if comm.worldSize > 1 {
            let store = ema.model.store
            comm.broadcast(store.values, count: store.parameterCount, root: 0)
            comm.broadcast(store.floatBuffers, count: store.floatBufferCount, root: 0)
            comm.broadcast(store.intBuffers, count: store.intBufferCount, root: 0)
        }
    }

    func log(_ message: String) { if isRoot { print(message) } }
}

/// What a checkpoint carries besides tensors, enough to continue a run exactly.
public struct TrainingState: Codable, Sendable {
    /// Completed epochs.
    public var epoch = 0
    public var globalStep = 0
    /// Top-1 of the best model so far (-1: none evaluated yet).
    public var bestTop1 = -1.0
    /// The `--save-best-by` score of the best model (larger is better); nil before the first evaluation.
    public var bestScore: Double?
    /// best.safetensors holds the EMA's weights (`--ema-decay`), not the raw model's.
    public var bestIsEMA: Bool?
    /// A mid-epoch checkpoint (`--checkpoint-every`): steps of `epoch` already taken, and the
    /// epoch's sums so far over all ranks (loss·images, correct, images, skipped, data-wait
    /// share, all-reduce seconds); nil at an epoch boundary.
    public var stepInEpoch: Int?
    public var partialTotals: [Double]?
    /// Positions of the epoch's padded permutation already trained on (Note [Global sample
    /// cursor]); nil at an epoch boundary, and in checkpoints from before it (then
    /// stepInEpoch × global batch).
    public var sampleCursor: Int?
    /// The world size and global batch that wrote the checkpoint.
    public var worldSize: Int?
    public var globalBatch: Int?
    /// `--on-world-size-change scale-lr`: the factor on the learning rate so far.
    public var learningRateFactor: Double?
    public var classNames: [String]
    /// Readable class names (e.g. from words.txt), shown by `predict`.
    public var classDescriptions: [String]?
    public init(classNames: [String]) { self.classNames = classNames }
}

func broadcastModelState(model: ClassifierModel, optimizer: any Optimizer, communicator comm: any Communicator) {
    guard comm.worldSize > 1 else { return }
    let store = model.store
    comm.broadcast(store.values, count: store.parameterCount, root: 0)
    comm.broadcast(store.floatBuffers, count: store.floatBufferCount, root: 0)
    comm.broadcast(store.intBuffers, count: store.intBufferCount, root: 0)
    for buffer in optimizer.stateBuffers { comm.broadcast(buffer.pointer, count: store.parameterCount, root: 0) }
}

/// One seed from several numbers (SplitMix64's finaliser over a running combination), so
/// streams for neighbouring steps or ranks are unrelated.
func mixSeed(_ parts: UInt64...) -> UInt64 {
    var h: UInt64 = 0x6D69_7875_7063_7574
    for part in parts {
        h = (h ^ part) &* 0x9E37_79B9_7F4A_7C15
        h ^= h >> 31
    }
    return h
}

/// A 64-bit checksum over float bit patterns (a multiply-xorshift mix per word).
struct ReplicaChecksum {
    var value: UInt64 = 0x243F_6A88_85A3_08D3

    mutating func add(_ word: UInt64) {
        value = (value ^ word) &* 0x9E37_79B9_7F4A_7C15
        value ^= value >> 29
    }

    mutating func add(_ values: UnsafePointer<Float>, count: Int) {
        var v = value
        for i in 0..<count {
            v = (v ^ UInt64(values[i].bitPattern)) &* 0x9E37_79B9_7F4A_7C15
            v ^= v >> 29
        }
        value = v
    }
}

/// A stop every rank reaches at the same step (a non-finite gradient after the all-reduce).
struct RunStopped: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

func warn(_ message: String) {
    FileHandle.standardError.write(Data(("warning: " + message + "\n").utf8))
}
