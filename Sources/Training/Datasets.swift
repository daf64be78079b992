import DataParallel
import DataPipeline
import Foundation

/// Which dataset a run reads and how (the `--data`, `--format`, `--train-dir`, `--val-dir`,
/// `--val-split`, `--split-seed` options of `train` and `eval`).
public struct DatasetSelection: Sendable, Equatable {
    /// Dataset root; nil with no train/val folders = the built-in dataset.
    public var directory: String?
    /// `auto`, `imagefolder`, `tiny-imagenet`, `imagenet`, `webvision`.
    public var format = "auto"
    public var trainDirectory: String?
    public var valDirectory: String?
    public var valSplit: Double?
    public var splitSeed: UInt64 = 0
    /// WebVision: keep the first N classes (50 = mini-WebVision, Google images only).
    public var webVisionClasses: Int?
    /// Images whose header claims more pixels are refused (`check-data` decodes with it).
    public var maxPixels = ImageDecoder.defaultMaxPixels
    public init() {}
}

/// Opens the selected dataset, or the built-in one (generated once per host). Warnings are
/// printed by rank 0 only: every rank reads the same listing.
func openData(_ selection: DatasetSelection, communicator comm: any Communicator) throws -> OpenedDataset {
    guard let format = DatasetFormat(rawValue: selection.format) else {
        throw TrainingError("unknown --format '\(selection.format)'; use one of "
                            + DatasetFormat.allCases.map(\.rawValue).joined(separator: ", "))
    }
    let warnOnce: (String) -> Void = { if comm.rank == 0 { warn($0) } }
    let explicitFolders = selection.trainDirectory != nil || selection.valDirectory != nil
    let root: URL
    if let directory = selection.directory {
        root = URL(fileURLWithPath: directory)
    } else if let train = selection.trainDirectory {
        root = URL(fileURLWithPath: train).deletingLastPathComponent()
    } else if explicitFolders {
        throw TrainingError("--val-dir given without --train-dir")
    } else {
        guard format == .auto || format == .tinyImageNet else {
            throw TrainingError("--format \(format.rawValue) needs --data DIR")
        }
        root = try BuiltinDataset.ensure(cacheDirectory: BuiltinDataset.defaultCacheDirectory(),
                                         log: { message in if comm.rank == 0 { print(message) } })
    }
    // WebVision's class subset is the --num-classes option, which means "classifier outputs"
    // for every other layout, so it only reaches the reader when the layout is WebVision.
    var resolved = format
    if format == .auto && !explicitFolders && selection.webVisionClasses != nil {
        resolved = try detectDatasetFormat(root)
    }
    var request = DatasetRequest(root: root, format: format,
                                 trainDir: selection.trainDirectory.map { URL(fileURLWithPath: $0) },
                                 valDir: selection.valDirectory.map { URL(fileURLWithPath: $0) },
                                 valSplit: selection.valSplit, splitSeed: selection.splitSeed)
    if resolved == .webVision, let classes = selection.webVisionClasses {
        request.numClasses = classes
        request.includeFlickr = false
    }
    return try openDataset(request, warn: warnOnce)
}
