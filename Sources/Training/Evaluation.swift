import DataParallel
import DataPipeline
import Foundation
import Kernels
import NN

/// Sums over one evaluation, identical on every rank after the reduction.
public struct EvaluationTotals: Codable, Sendable {
    public var loss: Double
    public var top1: Double
    public var top5: Double
    public var images: Int
    public var skipped: Int
    /// Macro averages over classes (see `ConfusionMatrix`); nil where not computed.
    public var precision: Double? = nil
    public var recall: Double? = nil
    public var f1: Double? = nil
    /// Rows = true class, columns = predicted; kept for models of up to
    /// `ConfusionMatrix.largestClassCount` classes (the all-reduce moves K² numbers).
    public var confusion: ConfusionMatrix? = nil

    enum CodingKeys: String, CodingKey { case loss, top1, top5, images, skipped, precision, recall, f1 }
}

/// Every image of `dataset` is evaluated exactly once: rank r takes images r, r+W, … (no
/// padding duplicates), or rank 0 takes them all (`onAllRanks` false), and the sums are
/// reduced so every rank holds the totals.
/// Resize(`resize`, shorter side; nil = `imageSize`) + CenterCrop(`imageSize`) + normalisation.
/// With `strict`, the first file that cannot be decoded is an error instead of a skip.
func evaluateDataset(model: ClassifierModel, dataset: ImageDataset, imageSize: Int, resize: Int?, batchSize: Int,
                     workers: Int, maxPixels: Int, strict: Bool, onAllRanks: Bool = true,
                     communicator comm: any Communicator) throws -> EvaluationTotals {
    let indices = onAllRanks ? evaluationShard(datasetSize: dataset.count, worldSize: comm.worldSize, rank: comm.rank)
                             : comm.rank == 0 ? Array(0..<dataset.count) : []
    let loader = BatchLoader(dataset: dataset, indices: indices, batchSize: batchSize, imageSize: imageSize,
                             augmentation: .eval(resize: resize), seed: 0, epoch: 0, workers: workers,
                             maxPixels: maxPixels, warn: { warn($0) })
    defer { loader.stop() }
    let loss = SoftmaxCrossEntropy()
    var lossSum = 0.0, top1 = 0, top5 = 0, images = 0, skipped = 0
    var confusion = model.numClasses <= ConfusionMatrix.largestClassCount ? ConfusionMatrix(classCount: model.numClasses) : nil
    while let batch = loader.next() {
        if strict, let problem = batch.problems.first { throw TrainingError(problem + " (--strict-data)") }
        skipped += batch.skipped
        if batch.count > 0 {
            let logits = model.forward(batch.images, mode: .eval)
            _ = batch.labels.withUnsafeBufferPointer { loss.forward(logits: logits, labels: $0.baseAddress!) }
            lossSum += loss.lossSum
            top1 += loss.correctCount(topK: 1)
            top5 += loss.correctCount(topK: min(5, model.numClasses))
            images += batch.count
            if confusion != nil {
                for i in 0..<batch.count {
                    confusion!.add(trueClass: Int(batch.labels[i]), predicted: loss.predictedClass(sample: i))
                }
            }
        }
        loader.recycle(batch)
    }
    var totals = [lossSum, Double(top1), Double(top5), Double(images), Double(skipped)]
    if !onAllRanks && comm.rank != 0 { comm.setPhase(.waitingForRootEvaluation()) }
    comm.allReduceSum(&totals)
    let n = max(totals[3], 1)
    var result = EvaluationTotals(loss: totals[0] / n, top1: totals[1] / n, top5: totals[2] / n, images: Int(totals[3]),
                                  skipped: Int(totals[4]))
    if var matrix = confusion {
        matrix.allReduce(over: comm)
        let metrics = matrix.metrics()
        result.precision = metrics.macroPrecision
        result.recall = metrics.macroRecall
        result.f1 = metrics.macroF1
        result.confusion = matrix
    }
    return result
}

/// Options of `swift-dp-train eval`.
public struct EvaluationOptions: Sendable {
    public var dataset = DatasetSelection()
    public var modelFile = ModelFileRequest()
    /// Crop size; nil = the checkpoint's training size, else 224.
    public var imageSize: Int?
    /// Shorter side before the crop; nil = see `resolvedSizes`.
    public var resize: Int?
    public var batchSize = 64
    public var workers = 2
    public var threads: Int?
    public var jsonOutput: String?
    /// Write the confusion matrix as CSV here.
    public var confusionCSV: String?
    public var strictData = false
    public var maxPixels = ImageDecoder.defaultMaxPixels
    public init() {}

    /// torchvision's evaluation recipe: Resize(R) + CenterCrop(S) with S/R = 0.875 (224/256). A
    /// checkpoint evaluated at its training size uses the trainer's own validation resize.
    static func sizes(imageSize: Int?, resize: Int?, trained: InferenceModel) -> (imageSize: Int, resize: Int) {
        let size = imageSize ?? trained.trainedImageSize ?? 224
        if let resize { return (size, resize) }
        if size == trained.trainedImageSize { return (size, trained.trainedEvalResize ?? size) }
        return (size, Int((Double(size) / 0.875).rounded()))
    }
}

public enum Evaluation {
    /// `swift-dp-train eval`: rank 0 reads the model file and hands the model to every rank;
    /// every rank evaluates its share; rank 0 prints the result and writes the JSON.
    public static func launch(_ options: EvaluationOptions) {
        let comm: any Communicator = MPICommunicator.isLaunchedByMPI ? MPICommunicator() : SingleProcessCommunicator()
        var loaded: InferenceModel?
        var data: OpenedDataset?
        var failure: String?
        do {
            let threads = options.threads ?? max(1, ProcessInfo.processInfo.activeProcessorCount / max(comm.localSize, 1))
            setComputeThreads(threads)
            guard options.dataset.directory != nil || options.dataset.valDirectory != nil else {
                throw TrainingError("eval needs --data DIR (or --val-dir DIR)")
            }
            var selection = options.dataset
            // A validation folder alone is enough to evaluate; it stands in for the train part.
            if selection.trainDirectory == nil, let val = selection.valDirectory { selection.trainDirectory = val }
            data = try openData(selection, communicator: comm)
            if comm.rank == 0 { loaded = try InferenceModel(options.modelFile) }
        } catch { failure = "\(error)" }
        if reportSetUpFailure(failure, communicator: comm) { comm.finalize(); exit(1) }

        // Rank 0's model description and weights reach every rank.
        do {
            var bytes = comm.rank == 0 ? Array(try JSONEncoder().encode(loaded!.spec)) : []
            comm.broadcast(bytes: &bytes, root: 0)
            if comm.rank != 0 {
                loaded = try InferenceModel(spec: try JSONDecoder().decode(InferenceModel.Spec.self, from: Data(bytes)))
            }
        } catch { failJob("\(error)", communicator: comm) }
        let inference = loaded!
        let model = inference.model
        let store = model.store
        comm.broadcast(store.values, count: store.parameterCount, root: 0)
        comm.broadcast(store.floatBuffers, count: store.floatBufferCount, root: 0)
        comm.broadcast(store.intBuffers, count: store.intBufferCount, root: 0)

        var dataset = data!.val
        failure = nil
        do {
            dataset = try relabel(dataset, datasetClasses: data!.classNames, modelClasses: inference.classNames,
                                  modelClassCount: model.numClasses)
        } catch { failure = "\(error)" }
        if reportSetUpFailure(failure, communicator: comm) { comm.finalize(); exit(1) }

        let (imageSize, resize) = EvaluationOptions.sizes(imageSize: options.imageSize, resize: options.resize,
                                                          trained: inference)
        if comm.rank == 0 {
            print(inference.summary)
            print("evaluating \(dataset.count) images on \(comm.worldSize) rank(s): Resize(\(resize)) + CenterCrop(\(imageSize))")
        }
        let started = Date()
        let totals: EvaluationTotals
        do {
            totals = try evaluateDataset(model: model, dataset: dataset, imageSize: imageSize, resize: resize,
                                         batchSize: options.batchSize, workers: options.workers,
                                         maxPixels: options.maxPixels, strict: options.strictData, communicator: comm)
        } catch {
            failJob("\(error)", communicator: comm)
        }
        let seconds = Date().timeIntervalSince(started)
        if comm.rank == 0 {
            print(String(format: "top-1 %.2f%%  top-5 %.2f%%  loss %.4f  (%d images, %.1f img/s)%@",
                         totals.top1 * 100, totals.top5 * 100, totals.loss, totals.images,
                         Double(totals.images) / max(seconds, 1e-9),
                         totals.skipped > 0 ? "  skipped \(totals.skipped) unreadable image(s)" : ""))
            if let matrix = totals.confusion {
                print(matrix.summary(classNames: dataset.classNames))
                if let path = options.confusionCSV {
                    do { try writeAtomically(Array(matrix.csv(classNames: dataset.classNames).utf8), to: path) } catch {
                        failJob("\(path): cannot write the confusion matrix (\(error))", communicator: comm)
                    }
                }
            }
            if let path = options.jsonOutput {
                do {
                    let result = EvaluationResult(top1: totals.top1, top5: totals.top5, loss: totals.loss,
                                                  count: totals.images, skipped: totals.skipped, imageSize: imageSize,
                                                  resize: resize, worldSize: comm.worldSize, precision: totals.precision,
                                                  recall: totals.recall, f1: totals.f1)
                    let encoder = JSONEncoder()
                    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
                    try writeAtomically(Array(try encoder.encode(result)), to: path)
                } catch {
                    failJob("\(path): cannot write the result (\(error))", communicator: comm)
                }
            }
        }
        comm.finalize()
    }

    /// Maps the dataset's labels onto the model's outputs. With class names in the model file,
    /// by name (a checkpoint trained on another ordering still scores right); without, by index.
    static func relabel(_ dataset: ImageDataset, datasetClasses: [String], modelClasses: [String]?,
                        modelClassCount: Int) throws -> ImageDataset {
        guard let modelClasses else {
            guard datasetClasses.count <= modelClassCount else {
                throw TrainingError("the dataset has \(datasetClasses.count) classes, the model only \(modelClassCount) outputs")
            }
            return dataset
        }
        if modelClasses == datasetClasses { return dataset }
        let index = Dictionary(modelClasses.enumerated().map { ($1, $0) }, uniquingKeysWith: { first, _ in first })
        let unknown = datasetClasses.filter { index[$0] == nil }
        guard unknown.isEmpty else {
            throw TrainingError("\(unknown.count) of the dataset's classes are not among the model's (e.g. "
                                + unknown.prefix(3).joined(separator: ", ") + ")")
        }
        var relabelled = dataset
        for i in relabelled.samples.indices {
            relabelled.samples[i].label = index[datasetClasses[relabelled.samples[i].label]]!
        }
        relabelled.classNames = modelClasses
        return relabelled
    }
}

/// The JSON `eval --json` writes.
struct EvaluationResult: Codable {
    var top1: Double
    var top5: Double
    var loss: Double
    var count: Int
    var skipped: Int
    var imageSize: Int
    var resize: Int
    var worldSize: Int
    /// Macro averages over the model's classes.
    var precision: Double?
    var recall: Double?
    var f1: Double?

    enum CodingKeys: String, CodingKey {
        case top1, top5, loss, count, skipped, precision, recall, f1
        case imageSize = "image_size", resize, worldSize = "world_size"
    }
}
