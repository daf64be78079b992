import DataParallel
import DataPipeline
import Foundation
import Kernels
import NN

/// The training loop, readable top to bottom (torchvision's reference `train.py` order):
/// set the sampler's epoch → train one epoch → average BatchNorm statistics → evaluate →
/// rank 0 logs, keeps the best model and writes checkpoints.
public final class Trainer {
    let config: TrainConfig
    let comm: any Communicator
    let isRoot: Bool
    let trainSet: ImageDataset
    let valSet: ImageDataset
    let dataFormat: DatasetFormat
    let model: ClassifierModel
    let optimizer: SGD
    let buckets: GradientBuckets
    let loss = SoftmaxCrossEntropy()
    let runDirectory: String
    let stepsPerEpoch: Int
    let schedule: LearningRateSchedule
    let trainTransform: TrainTransform
    let evalResize: Int
    var state: TrainingState
    var metricsLog: JSONLinesWriter?

    /// Entry point of `swift-dp-train train`: picks the communicator (MPI under mpirun) and runs.
    /// A set-up error is reported once and every rank exits 1; an error once training has
    /// started prints one line and aborts the whole job (MPI_Abort), so no rank waits forever.
    public static func launch(_ config: TrainConfig) throws {
        let comm: any Communicator = MPICommunicator.isLaunchedByMPI ? MPICommunicator() : SingleProcessCommunicator()
        // Set-up does no collective, so a bad path or option is agreed on and reported once,
        // and every rank exits cleanly.
        var trainer: Trainer?
        var failure: String?
        do { trainer = try Trainer(config: config, communicator: comm) } catch { failure = "\(error)" }
        if reportSetUpFailure(failure, communicator: comm) {
            comm.finalize()
            exit(1)
        }
        do {
            try trainer!.synchronizeStartingState()
            try trainer!.run()
        } catch {
            failJob("\(error)", communicator: comm)
        }
        comm.finalize()
    }

    init(config: TrainConfig, communicator comm: any Communicator) throws {
        self.config = config
        self.comm = comm
        isRoot = comm.rank == 0
        let threads = config.threads ?? max(1, ProcessInfo.processInfo.activeProcessorCount / max(comm.localSize, 1))
        setBLASThreads(threads)

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
        model = try ClassifierModel(architecture: config.model, numClasses: numClasses, stem: stem, head: head,
                                    seed: config.seed)
        model.freezeBackbone = config.freezeBackbone
        optimizer = SGD(store: model.store, momentum: config.momentum, weightDecay: config.weightDecay,
                        nesterov: config.nesterov)
        // Only what trains is reduced: with a frozen backbone, the head's tail of the buffer.
        let trainable = model.trainableRange
        buckets = GradientBuckets(
            parameters: model.store.parameters.filter { trainable.contains($0.offset) }
                .map { ($0.offset - trainable.lowerBound, $0.count) },
            totalCount: trainable.count)
        state = TrainingState(classNames: dataset.classNames)
        state.classDescriptions = dataset.classDescriptions

        if config.freezeBackbone && config.pretrained == nil && config.resume == nil && isRoot {
            warn("--freeze-backbone without --pretrained trains a head on a randomly initialised backbone")
        }
        if let pretrained = config.pretrained, config.resume == nil, comm.rank == 0 {
            // Rank 0 reads the file; `synchronizeStartingState` hands the weights to every rank.
            try PretrainedWeights.load(path: pretrained, into: model, log: { print($0) })
        }
        if let resume = config.resume {
            // Only rank 0 reads the file (nodes need not share a filesystem); the weights and
            // state reach the other ranks in `synchronizeStartingState`.
            if isRoot {
                state = try Checkpoint.load(from: resume, model: model, optimizer: optimizer, config: config,
                                            worldSize: comm.worldSize)
            }
            runDirectory = config.outputDirectory ?? (resume as NSString).deletingLastPathComponent
        } else {
            runDirectory = config.outputDirectory ?? Trainer.defaultRunDirectory()
        }

        let sampler = DistributedSampler(datasetSize: trainSet.count, worldSize: comm.worldSize, rank: comm.rank,
                                         seed: config.seed)
        var steps = (sampler.numSamples + config.batchSize - 1) / config.batchSize
        if let limit = config.maxStepsPerEpoch { steps = min(steps, limit) }
        stepsPerEpoch = max(steps, 1)
        schedule = LearningRateSchedule(baseLR: config.learningRate, totalSteps: stepsPerEpoch * config.epochs,
                                        warmupSteps: Int(config.warmupEpochs * Float(stepsPerEpoch)),
                                        cosine: config.cosineSchedule)
        if isRoot { try prepareRunDirectory(threads: threads) }
    }

    func run() throws {
        let progress = ProgressLine()
        if state.epoch >= config.epochs {
            log("checkpoint already holds \(state.epoch) epochs (--epochs \(config.epochs)): nothing to do")
            return
        }
        while state.epoch < config.epochs {
            let epoch = state.epoch
            let started = Date()
            let train = try trainOneEpoch(epoch: epoch, progress: progress)
            let trainSeconds = Date().timeIntervalSince(started)
            averageBatchNormStatistics()
            try checkReplicasAgree()
            let eval = try evaluate()
            state.epoch = epoch + 1
            let improved = eval.top1 > state.bestTop1
            if improved { state.bestTop1 = eval.top1 }

            if isRoot {
                let metrics = EpochMetrics(
                    epoch: epoch + 1, lr: Double(schedule.learningRate(atStep: max(state.globalStep - 1, 0))),
                    trainLoss: train.loss, trainTop1: train.top1, valLoss: eval.loss, valTop1: eval.top1,
                    valTop5: eval.top5, valImages: eval.images, imagesPerSecond: Double(train.images) / trainSeconds,
                    epochSeconds: Date().timeIntervalSince(started), skippedImages: train.skipped + eval.skipped,
                    worldSize: comm.worldSize)
                try metricsLog?.append(metrics)
                try saveCheckpoint(named: "last.safetensors")
                if improved { try saveCheckpoint(named: "best.safetensors") }
                print(String(format: "epoch %d/%d  train loss %.4f  top-1 %.2f%%  |  val loss %.4f  top-1 %.2f%%  top-5 %.2f%%  (%d images)  |  %.1f img/s  %@%@%@",
                             epoch + 1, config.epochs, train.loss, train.top1 * 100, eval.loss, eval.top1 * 100,
                             eval.top5 * 100, eval.images, metrics.imagesPerSecond, formatDuration(metrics.epochSeconds),
                             improved ? "  best" : "",
                             train.skipped + eval.skipped > 0 ? "  skipped \(train.skipped + eval.skipped) image(s)" : ""))
            }
            if let stop = config.interruptAfterEpoch, state.epoch == stop, state.epoch < config.epochs {
                log("stopping after epoch \(stop) as asked (--interrupt-after-epoch); resume with --resume \(runDirectory)/last.safetensors")
                return
            }
        }
        if isRoot { print("done: best val top-1 \(String(format: "%.2f%%", state.bestTop1 * 100)); checkpoints in \(runDirectory)") }
    }

    // MARK: - One epoch

    struct TrainSummary { var loss: Double; var top1: Double; var images: Int; var skipped: Int }

    func trainOneEpoch(epoch: Int, progress: ProgressLine) throws -> TrainSummary {
        let sampler = DistributedSampler(datasetSize: trainSet.count, worldSize: comm.worldSize, rank: comm.rank,
                                         seed: config.seed)
        let indices = Array(sampler.indices(epoch: epoch).prefix(stepsPerEpoch * config.batchSize))
        let loader = BatchLoader(dataset: trainSet, indices: indices, batchSize: config.batchSize,
                                 imageSize: config.imageSize, augmentation: .train(trainTransform), seed: config.seed, epoch: epoch,
                                 workers: config.workers, maxPixels: config.maxPixels, warn: { warn($0) })
        defer { loader.stop() }
        var lossSum = 0.0, correct = 0, images = 0, skipped = 0
        let started = Date()
        let scale = 1 / Float(comm.worldSize)
        for step in 0..<stepsPerEpoch {
            guard let batch = loader.next() else { break }
            if config.strictData, let problem = batch.problems.first {
                throw TrainingError(problem + " (--strict-data)")
            }
            skipped += batch.skipped
            model.store.zeroGradients()
            if batch.count > 0 {
                model.reseedStochasticLayers(seed: config.seed, step: state.globalStep, stream: comm.rank)
                let logits = model.forward(batch.images, mode: .train)
                let batchLoss = batch.labels.withUnsafeBufferPointer {
                    loss.forward(logits: logits, labels: $0.baseAddress!)
                }
                lossSum += Double(batchLoss) * Double(batch.count)
                correct += loss.correctCount(topK: 1)
                images += batch.count
                model.backward(loss.backward())
            }
            loader.recycle(batch)
            let trainable = model.trainableRange
            buckets.allReduceSum(model.store.gradients + trainable.lowerBound, communicator: comm)
            optimizer.step(learningRate: schedule.learningRate(atStep: state.globalStep), gradientScale: scale,
                           range: trainable)
            state.globalStep += 1
            if isRoot {
                let elapsed = Date().timeIntervalSince(started)
                let rate = Double(images * comm.worldSize) / max(elapsed, 1e-9)
                let left = elapsed / Double(step + 1) * Double(stepsPerEpoch - step - 1)
                progress.update(epoch: epoch + 1, epochs: config.epochs, step: step + 1, steps: stepsPerEpoch,
                                loss: lossSum / Double(max(images, 1)), imagesPerSecond: rate, secondsLeft: left)
            }
        }
        var totals = [lossSum, Double(correct), Double(images), Double(skipped)]
        comm.allReduceSum(&totals)
        let n = max(totals[2], 1)
        return TrainSummary(loss: totals[0] / n, top1: totals[1] / n, images: Int(totals[2]), skipped: Int(totals[3]))
    }

    /// DDP keeps per-rank BatchNorm statistics; averaging them before evaluation and
    /// checkpointing makes every rank (and the saved model) hold the same buffers.
    func averageBatchNormStatistics() {
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
        hash.add(optimizer.momentumBuffer, count: store.parameterCount)
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
    func evaluate() throws -> EvaluationTotals {
        try evaluateDataset(model: model, dataset: valSet, imageSize: config.imageSize, resize: evalResize,
                            batchSize: config.batchSize, workers: config.workers, maxPixels: config.maxPixels,
                            strict: config.strictData, communicator: comm)
    }

    // MARK: - Files

    func prepareRunDirectory(threads: Int) throws {
        do {
            try FileManager.default.createDirectory(atPath: runDirectory, withIntermediateDirectories: true)
        } catch {
            throw TrainingError("\(runDirectory): cannot create the run directory (\(error.localizedDescription))")
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        var effective = config
        effective.numClasses = model.numClasses
        effective.threads = threads
        try encoder.encode(effective).write(to: URL(fileURLWithPath: runDirectory + "/config.json"), options: .atomic)
        metricsLog = try JSONLinesWriter(path: runDirectory + "/metrics.jsonl")
        let training = model.freezeBackbone
            ? ", backbone frozen: \(model.trainableRange.count) of \(model.parameterCount) parameters train" : ""
        print("swift-dp-train: \(config.model) (\(config.stem) stem, \(config.head) head, \(model.numClasses) classes, "
              + "\(model.parameterCount) parameters\(training)), "
              + "\(comm.worldSize) rank(s) × batch \(config.batchSize), \(threads) thread(s) per rank")
        print("data: \(trainSet.count) training / \(valSet.count) validation images (\(dataFormat.rawValue) layout); "
              + "\(stepsPerEpoch) steps per epoch; run directory \(runDirectory)")
        let crop = trainTransform.kind == .randomResizedCrop ? "RandomResizedCrop(\(config.imageSize))"
            : "RandomCrop(\(config.imageSize), padding 4)"
        print("transforms: train \(crop) + flip p=\(trainTransform.flipProbability); "
              + "eval Resize(\(evalResize)) + CenterCrop(\(config.imageSize))")
    }

    func saveCheckpoint(named name: String) throws {
        try Checkpoint.save(to: runDirectory + "/" + name, model: model, optimizer: optimizer, state: state,
                            config: config, worldSize: comm.worldSize)
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
        guard comm.worldSize > 1 else { return }
        var bytes = isRoot ? Array(try JSONEncoder().encode(state)) : []
        comm.broadcast(bytes: &bytes, root: 0)
        state = try JSONDecoder().decode(TrainingState.self, from: Data(bytes))
        broadcastModelState(model: model, optimizer: optimizer, communicator: comm)
    }

    func log(_ message: String) { if isRoot { print(message) } }
}

/// What a checkpoint carries besides tensors, enough to continue a run exactly.
public struct TrainingState: Codable, Sendable {
    /// Completed epochs.
    public var epoch = 0
    public var globalStep = 0
    public var bestTop1 = -1.0
    public var classNames: [String]
    /// Readable class names (e.g. from words.txt), shown by `predict`.
    public var classDescriptions: [String]?
    public init(classNames: [String]) { self.classNames = classNames }
}

func broadcastModelState(model: ClassifierModel, optimizer: SGD, communicator comm: any Communicator) {
    guard comm.worldSize > 1 else { return }
    let store = model.store
    comm.broadcast(store.values, count: store.parameterCount, root: 0)
    comm.broadcast(store.floatBuffers, count: store.floatBufferCount, root: 0)
    comm.broadcast(store.intBuffers, count: store.intBufferCount, root: 0)
    comm.broadcast(optimizer.momentumBuffer, count: store.parameterCount, root: 0)
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

func warn(_ message: String) {
    FileHandle.standardError.write(Data(("warning: " + message + "\n").utf8))
}
