import DataParallel
import DataPipeline
import Foundation

/// Options of `swift-dp-train bench-data`: how fast the loader turns a dataset's training
/// files into normalised batches (read, decode, transform), with no model.
public struct DataBenchmarkOptions: Sendable {
    public var dataset = DatasetSelection()
    public var imageSize = 224
    public var trainTransformPreset = "auto"
    public var workers = 1
    public var batchSize = 32
    /// Images per timed pass (the first `limit` of the training set, in file order).
    public var limit = 512
    public var passes = 3
    public var exactDecode = false
    public var fastUpsampling = false
    /// As `TrainConfig.colorJitter` / `autoAugment`: the training augmentations to include.
    public var colorJitter: [Float]?
    public var autoAugment = AutoAugmentPolicy.none.rawValue
    public init() {}
}

public struct DataBenchmarkResult: Codable, Sendable {
    public var imagesPerSecond: Double
    public var imagesPerSecondPerWorker: Double
    public var images: Int
    public var workers: Int
    public var transform: String
    enum CodingKeys: String, CodingKey {
        case images, workers, transform
        case imagesPerSecond = "images_per_second", imagesPerSecondPerWorker = "images_per_second_per_worker"
    }
}

/// The median of `passes` timed passes over the same files (the first pass also warms the
/// page cache, so the figure is decode + transform, not disk).
public func runDataBenchmark(_ options: DataBenchmarkOptions) throws -> DataBenchmarkResult {
    let data = try openData(options.dataset, communicator: SingleProcessCommunicator())
    var config = TrainConfig()
    config.imageSize = options.imageSize
    config.trainTransformPreset = options.trainTransformPreset
    config.exactDecode = options.exactDecode
    config.fastUpsampling = options.fastUpsampling
    config.colorJitter = options.colorJitter
    config.autoAugment = options.autoAugment
    let transform = try config.trainTransform()
    let indices = Array(0..<min(options.limit, data.train.count))
    guard !indices.isEmpty else { throw TrainingError("no training images to read") }
    var rates: [Double] = []
    for pass in 0...options.passes {
        let loader = BatchLoader(dataset: data.train, indices: indices, batchSize: options.batchSize,
                                 imageSize: options.imageSize, augmentation: .train(transform), seed: 0, epoch: pass,
                                 workers: options.workers, warn: { warn($0) })
        let started = Date()
        var images = 0
        while let batch = loader.next() {
            images += batch.count
            loader.recycle(batch)
        }
        loader.stop()
        if pass > 0 { rates.append(Double(images) / Date().timeIntervalSince(started)) }
    }
    let median = rates.sorted()[rates.count / 2]
    var name = transform.kind == .randomResizedCrop
        ? "RandomResizedCrop(\(options.imageSize)) + flip, "
            + (options.exactDecode ? "exact decode" : "region decode" + (transform.fastUpsampling ? " + fast upsampling" : ""))
        : "RandomCrop(\(options.imageSize), padding 4) + flip"
    if transform.autoAugment == .trivialAugmentWide { name += " + TrivialAugmentWide" }
    if let jitter = transform.colorJitter {
        name += " + ColorJitter(\(jitter.brightness), \(jitter.contrast), \(jitter.saturation), \(jitter.hue))"
    }
    return DataBenchmarkResult(imagesPerSecond: median, imagesPerSecondPerWorker: median / Double(options.workers),
                               images: indices.count, workers: options.workers, transform: name)
}
