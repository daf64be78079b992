import Foundation

/// The three ways an ImageFolder dataset comes: explicit train and val folders; root/train and
/// root/val; or one folder of classes (root/train or root itself) split by `valSplit`.
func openImageFolder(_ request: DatasetRequest, warn: (String) -> Void) throws -> OpenedDataset {
    let root = request.root
    let trainDirectory: URL, valDirectory: URL?
    if let trainDir = request.trainDir {
        trainDirectory = trainDir
        valDirectory = request.valDir
    } else if request.valDir != nil {
        throw DatasetError("--val-dir given without --train-dir")
    } else if isDirectory(root.appendingPathComponent("train")) {
        trainDirectory = root.appendingPathComponent("train")
        let val = root.appendingPathComponent("val")
        valDirectory = isDirectory(val) ? val : nil
    } else {
        trainDirectory = root
        valDirectory = nil
    }

    let train = try ImageFolder.load(trainDirectory, warn: warn)
    if let fraction = request.valSplit {
        guard fraction > 0, fraction < 1 else { throw DatasetError("--val-split must be between 0 and 1 (got \(fraction))") }
        if let valDirectory {
            warn("\(valDirectory.path): not used, because valSplit holds out \(fraction) of \(trainDirectory.path) instead")
        }
        let split = stratifiedSplit(train, valFraction: fraction, seed: request.splitSeed)
        return OpenedDataset(train: split.train, val: split.val, classNames: train.classNames,
                             classDescriptions: train.classNames, format: .imageFolder)
    }
    guard let valDirectory else {
        throw DatasetError("\(trainDirectory.path): no val folder for these class folders; give one (root/val or --val-dir) or a --val-split fraction to hold out")
    }
    let val = try ImageFolder.load(valDirectory, warn: warn)
    // Compared as bytes: Swift's == calls "é" and "e\u{301}" equal, the file system does not.
    let trainBytes = train.classNames.map { Array($0.utf8) }, valBytes = val.classNames.map { Array($0.utf8) }
    guard valBytes == trainBytes else {
        let missing = train.classNames.filter { !Set(valBytes).contains(Array($0.utf8)) }
        let extra = val.classNames.filter { !Set(trainBytes).contains(Array($0.utf8)) }
        func few(_ names: [String]) -> String { names.prefix(5).joined(separator: ", ") + (names.count > 5 ? ", …" : "") }
        let differences = [missing.isEmpty ? nil : "missing in val: \(few(missing))",
                           extra.isEmpty ? nil : "not in train: \(few(extra))"].compactMap { $0 }
        throw DatasetError("\(valDirectory.path): the val class folders differ from \(trainDirectory.path)'s (\(differences.joined(separator: "; "))); class indices would not match")
    }
    return OpenedDataset(train: train, val: val, classNames: train.classNames,
                         classDescriptions: train.classNames, format: .imageFolder)
}
