import Foundation

/// WebVision 1.0 (data.vision.ee.ethz.ch/cvl/webvision, ../shared/formats.md):
///
///     info/train_filelist_google.txt   "<path relative to the root> <label>" per line
///     info/train_filelist_flickr.txt   the same, optional
///     info/val_filelist.txt            "<file name> <label>", images under val_images_256/
///     info/synsets.txt                 optional, line i = class i: "<wnid> <names>"
///
/// Labels are the 1,000 ILSVRC-2012 classes in synset order. `numClasses` keeps only samples
/// with label < numClasses: mini-WebVision (MentorNet, DivideMix) is numClasses 50 with the
/// Google list only (`includeFlickr: false`).
public struct WebVision: Sendable {
    public let root: URL
    public let classNames: [String]
    public let classDescriptions: [String]
    public let train: ImageDataset
    public let val: ImageDataset

    public static let valFilelist = "info/val_filelist.txt"
    static let googleFilelist = "info/train_filelist_google.txt"
    static let flickrFilelist = "info/train_filelist_flickr.txt"
    static let synsetsFile = "info/synsets.txt"

    public init(root: URL, numClasses: Int? = nil, includeFlickr: Bool = true) throws {
        self.root = root
        guard isDirectory(root) else { throw DatasetError("\(root.path): dataset directory not found") }
        if let numClasses, numClasses < 1 { throw DatasetError("numClasses must be at least 1 (got \(numClasses))") }

        var trainLists = [root.appendingPathComponent(Self.googleFilelist)]
        let flickr = root.appendingPathComponent(Self.flickrFilelist)
        if includeFlickr, fileExists(flickr) { trainLists.append(flickr) }
        var trainEntries: [FilelistEntry] = []
        for list in trainLists { trainEntries += try readFilelist(list, under: root) }
        let valEntries = try readFilelist(root.appendingPathComponent(Self.valFilelist),
                                          under: root.appendingPathComponent("val_images_256"))

        let synsets = root.appendingPathComponent(Self.synsetsFile)
        var names: [String], descriptions: [String]
        if fileExists(synsets) {
            let lines = numberedLines(try readTextFile(synsets, purpose: "WebVision class names"))
            names = lines.map { String($0.text.prefix { !$0.isWhitespace }) }
            descriptions = lines.map { line in
                let rest = line.text.drop { !$0.isWhitespace }.trimmingCharacters(in: .whitespaces)
                return rest.isEmpty ? String(line.text) : rest
            }
            if let bad = (trainEntries + valEntries).first(where: { $0.label >= names.count }) {
                throw DatasetError("\(bad.source): label \(bad.label) but \(synsets.path) names only \(names.count) classes")
            }
        } else {
            let count = (trainEntries + valEntries).map { $0.label + 1 }.max() ?? 0
            names = (0..<count).map(String.init)
            descriptions = names
        }
        if let numClasses {
            guard numClasses <= names.count else {
                throw DatasetError("numClasses \(numClasses) but the dataset has \(names.count) classes")
            }
            names = Array(names.prefix(numClasses))
            descriptions = Array(descriptions.prefix(numClasses))
        }
        let kept = names.count
        classNames = names
        classDescriptions = descriptions
        train = ImageDataset(samples: trainEntries.filter { $0.label < kept }.map(\.sample), classNames: names)
        val = ImageDataset(samples: valEntries.filter { $0.label < kept }.map(\.sample), classNames: names)
        guard !train.samples.isEmpty else { throw DatasetError("\(root.path): no training images in \(Self.googleFilelist)") }
    }
}

struct FilelistEntry {
    var sample: ImageDataset.Sample
    var label: Int { sample.label }
    var source: String
}

/// "<relative path> <label>" lines (split on whitespace, as DivideMix's `line.split()`). A path
/// that could leave `directory` (absolute, or with a ".." component) is refused before anything
/// opens it: a filelist is data, and data must not choose which files we read.
func readFilelist(_ list: URL, under directory: URL) throws -> [FilelistEntry] {
    var entries: [FilelistEntry] = []
    for line in numberedLines(try readTextFile(list, purpose: "a WebVision file list")) {
        let source = "\(list.path) line \(line.number)"
        let fields = line.text.split(whereSeparator: \.isWhitespace)
        guard fields.count == 2, let label = Int(fields[1]), label >= 0 else {
            throw DatasetError("\(source): expected '<relative path> <label>' with a label ≥ 0")
        }
        let path = String(fields[0])
        guard !path.hasPrefix("/"), !path.split(separator: "/").contains("..") else {
            throw DatasetError("\(source): path '\(path)' leaves the dataset folder; refused")
        }
        entries.append(.init(sample: .init(path: directory.path + "/" + path, label: label), source: source))
    }
    return entries
}
