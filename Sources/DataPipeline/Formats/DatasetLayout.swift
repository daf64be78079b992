import Foundation

/// The on-disk layouts we read; raw values are what the command line takes.
public enum DatasetFormat: String, CaseIterable, Sendable {
    case auto
    case imageFolder = "imagefolder"
    case tinyImageNet = "tiny-imagenet"
    case imageNet = "imagenet"
    case webVision = "webvision"
}

/// What to open and how. Fields that a format does not use must be left nil: a val split
/// asked of ImageNet is refused rather than ignored.
public struct DatasetRequest: Sendable {
    public var root: URL
    public var format: DatasetFormat
    /// ImageFolder only: explicit train and val folders (root is then not searched).
    public var trainDir: URL?
    public var valDir: URL?
    /// ImageFolder only: hold out this fraction of each class as val (see `stratifiedSplit`).
    public var valSplit: Double?
    public var splitSeed: UInt64
    /// WebVision only: keep labels < numClasses (50 = mini-WebVision).
    public var numClasses: Int?
    /// WebVision only: also train on info/train_filelist_flickr.txt when present
    /// (mini-WebVision is Google only).
    public var includeFlickr: Bool

    public init(root: URL, format: DatasetFormat = .auto, trainDir: URL? = nil, valDir: URL? = nil,
                valSplit: Double? = nil, splitSeed: UInt64 = 0, numClasses: Int? = nil, includeFlickr: Bool = true) {
        self.root = root; self.format = format; self.trainDir = trainDir; self.valDir = valDir
        self.valSplit = valSplit; self.splitSeed = splitSeed; self.numClasses = numClasses; self.includeFlickr = includeFlickr
    }
}

/// A dataset ready for training: both parts share `classNames` (label i = classNames[i]).
public struct OpenedDataset: Sendable {
    public var train: ImageDataset
    public var val: ImageDataset
    /// wnids or folder names: what a checkpoint records to check a later run uses the same classes.
    public var classNames: [String]
    /// Readable names where the format has them (the class name otherwise).
    public var classDescriptions: [String]
    /// The layout that was read (never `.auto`).
    public var format: DatasetFormat
}

/// Opens `request.root` (or the explicit folders) in the requested or detected layout.
public func openDataset(_ request: DatasetRequest, warn: (String) -> Void) throws -> OpenedDataset {
    if request.trainDir != nil || request.valDir != nil, request.format != .auto, request.format != .imageFolder {
        throw DatasetError("--train-dir/--val-dir apply to the imagefolder format only (format is \(request.format.rawValue))")
    }
    let format = request.trainDir != nil || request.valDir != nil ? .imageFolder
        : request.format == .auto ? try detectDatasetFormat(request.root) : request.format
    if request.valSplit != nil, format != .imageFolder {
        throw DatasetError("--val-split applies to the imagefolder format only (\(request.root.path) is \(format.rawValue))")
    }
    if request.numClasses != nil, format != .webVision {
        throw DatasetError("numClasses applies to the webvision format only (\(request.root.path) is \(format.rawValue))")
    }
    switch format {
    case .auto:
        preconditionFailure("detection never answers auto")
    case .imageFolder:
        return try openImageFolder(request, warn: warn)
    case .tinyImageNet:
        let data = try TinyImageNet(root: request.root)
        return OpenedDataset(train: data.train, val: data.val, classNames: data.classNames,
                             classDescriptions: data.classDescriptions, format: format)
    case .imageNet:
        let data = try ImageNetKaggle(root: request.root, warn: warn)
        return OpenedDataset(train: data.train, val: data.val, classNames: data.classNames,
                             classDescriptions: data.classDescriptions, format: format)
    case .webVision:
        let data = try WebVision(root: request.root, numClasses: request.numClasses, includeFlickr: request.includeFlickr)
        return OpenedDataset(train: data.train, val: data.val, classNames: data.classNames,
                             classDescriptions: data.classDescriptions, format: format)
    }
}
