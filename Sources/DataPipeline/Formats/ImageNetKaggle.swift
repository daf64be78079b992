import Foundation

/// ImageNet (ILSVRC-2012) as Kaggle's `imagenet-object-localization-challenge` unpacks it
/// (../shared/formats.md):
///
///     LOC_synset_mapping.txt           "n01440764 tench, Tinca tinca"; line i = class i
///     LOC_val_solution.csv             "ImageId,PredictionString"; first token = the wnid
///     ILSVRC/Data/CLS-LOC/train/<wnid>/*.JPEG
///     ILSVRC/Data/CLS-LOC/val/ILSVRC2012_val_<8 digits>.JPEG   (flat)
///
/// or with `imagenet_class_index.json` ({"0": ["n01440764", "tench"], …}) in place of the
/// mapping and `ILSVRC2012_val_labels.json` ({"<val file>": "<wnid>"}) in place of the CSV.
/// Class index = sorted wnid order, which is torchvision's ImageFolder order and the order
/// of both class files; a class file in any other order is refused rather than followed, as
/// the devkit's ILSVRC2012_ID order once cost people 0.1% of "accuracy" (fra31/sparse-rs#4).
public struct ImageNetKaggle: Sendable {
    public let root: URL
    public let classNames: [String]
    /// The names after each wnid ("tench, Tinca tinca").
    public let classDescriptions: [String]
    public let train: ImageDataset
    public let val: ImageDataset

    public static let synsetMappingFile = "LOC_synset_mapping.txt"
    public static let classIndexFile = "imagenet_class_index.json"
    static let valSolutionFile = "LOC_val_solution.csv"
    static let valLabelsFile = "ILSVRC2012_val_labels.json"

    public init(root: URL, warn: (String) -> Void) throws {
        self.root = root
        guard isDirectory(root) else { throw DatasetError("\(root.path): dataset directory not found") }
        let classes = try Self.readClasses(root)
        classNames = classes.map(\.wnid)
        classDescriptions = classes.map(\.description)
        let index = Dictionary(uniqueKeysWithValues: classNames.enumerated().map { ($1, $0) })

        let data = root.appendingPathComponent("ILSVRC/Data/CLS-LOC")
        let trainDirectory = data.appendingPathComponent("train")
        guard isDirectory(trainDirectory) else {
            throw DatasetError("\(trainDirectory.path): missing (the Kaggle layout keeps training images in ILSVRC/Data/CLS-LOC/train/<wnid>/)")
        }
        train = try Self.readTrain(trainDirectory, classNames: classNames, warn: warn)

        let valDirectory = data.appendingPathComponent("val")
        let valFiles = Set(try listDirectory(atPath: valDirectory.path).files.filter(isImageFileName))
        let labels = try Self.readValLabels(root, index: index)
        var valSamples: [ImageDataset.Sample] = []
        for entry in labels {
            guard valFiles.contains(entry.file) else {
                throw DatasetError("\(entry.source): image \(valDirectory.path)/\(entry.file) not found")
            }
            valSamples.append(.init(path: valDirectory.path + "/" + entry.file, label: entry.label))
        }
        let unlabelled = valFiles.count - valSamples.count
        if unlabelled > 0 { warn("\(valDirectory.path): \(unlabelled) images have no label and are not used") }
        valSamples.sort { pythonOrder($0.path, $1.path) }
        val = ImageDataset(samples: valSamples, classNames: classNames)
    }

    /// From the synset mapping if present, else from the JSON class index; sorted and unique.
    static func readClasses(_ root: URL) throws -> [(wnid: String, description: String)] {
        let mapping = root.appendingPathComponent(synsetMappingFile)
        var classes: [(wnid: String, description: String, source: String)] = []
        if fileExists(mapping) {
            for line in numberedLines(try readTextFile(mapping, purpose: "the ImageNet class list")) {
                let wnid = line.text.prefix { !$0.isWhitespace }
                let description = line.text.dropFirst(wnid.count).trimmingCharacters(in: .whitespaces)
                classes.append((String(wnid), description, "\(mapping.path) line \(line.number)"))
            }
        } else {
            let json = root.appendingPathComponent(classIndexFile)
            let text = try readTextFile(json, purpose: "the ImageNet class list: \(synsetMappingFile) or \(classIndexFile)")
            guard let object = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] else {
                throw DatasetError("\(json.path): expected a JSON object {\"0\": [\"n01440764\", \"tench\"], …}")
            }
            for i in 0..<object.count {
                guard let entry = object[String(i)] else {
                    throw DatasetError("\(json.path): key \"\(i)\" missing (keys must be 0…\(object.count - 1))")
                }
                guard let pair = entry as? [Any], pair.count >= 1, let wnid = pair[0] as? String else {
                    throw DatasetError("\(json.path) key \"\(i)\": expected [\"<wnid>\", \"<name>\"]")
                }
                classes.append((wnid, pair.count > 1 ? "\(pair[1])" : wnid, "\(json.path) key \"\(i)\""))
            }
        }
        guard !classes.isEmpty else { throw DatasetError("\(root.path): the ImageNet class list is empty") }
        for (previous, current) in zip(classes, classes.dropFirst()) where !pythonOrder(previous.wnid, current.wnid) {
            let problem = previous.wnid == current.wnid ? "duplicate wnid \(current.wnid)" : "\(current.wnid) comes after \(previous.wnid)"
            throw DatasetError("\(current.source): \(problem); the class list must be in sorted wnid order (torchvision's class index)")
        }
        return classes.map { ($0.wnid, $0.description) }
    }

    /// train/<wnid>/ for every class, walked as ImageFolder walks; the folders must be exactly
    /// the classes, or torchvision's ImageFolder on this train folder would number them differently.
    static func readTrain(_ directory: URL, classNames: [String], warn: (String) -> Void) throws -> ImageDataset {
        let folders = Set(try listDirectory(atPath: directory.path).directories)
        if let extra = folders.subtracting(classNames).sorted(by: pythonOrder).first {
            throw DatasetError("\(directory.path)/\(extra): a class folder that is not in the class list")
        }
        var samples: [ImageDataset.Sample] = []
        for (label, wnid) in classNames.enumerated() {
            guard folders.contains(wnid) else { throw DatasetError("\(directory.path)/\(wnid): missing class folder") }
            let files = ImageFolder.imageFiles(under: directory.path + "/" + wnid, warn: warn)
            if files.isEmpty { warn("\(directory.path)/\(wnid): class \(wnid) has no training images") }
            samples += files.map { .init(path: $0, label: label) }
        }
        return ImageDataset(samples: samples, classNames: classNames)
    }

    /// (file name, label, where it was read) for each validation image.
    static func readValLabels(_ root: URL, index: [String: Int]) throws -> [(file: String, label: Int, source: String)] {
        var labels: [(file: String, label: Int, source: String)] = []
        var seen = Set<String>()
        func add(_ file: String, _ wnid: String, _ source: String) throws {
            guard !file.isEmpty, !file.contains("/") else { throw DatasetError("\(source): bad image name '\(file)'") }
            guard let label = index[wnid] else { throw DatasetError("\(source): unknown wnid \(wnid)") }
            guard seen.insert(file).inserted else { throw DatasetError("\(source): \(file) is listed twice") }
            labels.append((file, label, source))
        }
        let csv = root.appendingPathComponent(valSolutionFile)
        if fileExists(csv) {
            let lines = numberedLines(try readTextFile(csv, purpose: "ImageNet validation labels"))
            guard let header = lines.first, header.text.replacingOccurrences(of: " ", with: "") == "ImageId,PredictionString" else {
                throw DatasetError("\(csv.path) line 1: expected the header 'ImageId,PredictionString'")
            }
            for line in lines.dropFirst() {
                let source = "\(csv.path) line \(line.number)"
                let fields = line.text.split(separator: ",", maxSplits: 1)
                // Several boxes per image are "wnid x0 y0 x1 y1 wnid x0 …": the class is the first token.
                guard fields.count == 2, let wnid = fields[1].split(whereSeparator: \.isWhitespace).first else {
                    throw DatasetError("\(source): expected 'ImageId,<wnid> <box>…'")
                }
                try add(String(fields[0]).trimmingCharacters(in: .whitespaces) + ".JPEG", String(wnid), source)
            }
        } else {
            let json = root.appendingPathComponent(valLabelsFile)
            let text = try readTextFile(json, purpose: "ImageNet validation labels: \(valSolutionFile) or \(valLabelsFile)")
            guard let object = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] else {
                throw DatasetError("\(json.path): expected a JSON object {\"ILSVRC2012_val_00000001.JPEG\": \"n01751748\", …}")
            }
            for (key, value) in object.sorted(by: { pythonOrder($0.key, $1.key) }) {
                guard let wnid = value as? String else { throw DatasetError("\(json.path) key \"\(key)\": expected a wnid string") }
                try add(isImageFileName(key) ? key : key + ".JPEG", wnid, "\(json.path) key \"\(key)\"")
            }
        }
        return labels
    }
}
