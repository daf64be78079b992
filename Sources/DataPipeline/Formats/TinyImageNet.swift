import Foundation

/// Tiny-ImageNet-200 as downloaded (see ../shared/formats.md): wnids.txt (unsorted), words.txt,
/// train/<wnid>/images/*, val/images/* labelled by val/val_annotations.txt. Class index =
/// position in the sorted wnid list (what ImageFolder gives after the usual reorganisation).
public struct TinyImageNet: Sendable {
    public let root: URL
    public let classNames: [String]
    /// Readable names from words.txt (the wnid where words.txt lacks it).
    public let classDescriptions: [String]
    public let train: ImageDataset
    public let val: ImageDataset

    public init(root: URL) throws {
        self.root = root
        let fm = FileManager.default
        var isDirectory: ObjCBool = false
        guard fm.fileExists(atPath: root.path, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw DatasetError("\(root.path): dataset directory not found")
        }
        let wnidsPath = root.appendingPathComponent("wnids.txt").path
        guard let wnidsText = try? String(contentsOfFile: wnidsPath, encoding: .utf8) else {
            throw DatasetError("\(wnidsPath): missing or unreadable (expected the Tiny-ImageNet-200 layout: wnids.txt, train/, val/)")
        }
        let wnids = wnidsText.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty }
        guard !wnids.isEmpty else { throw DatasetError("\(wnidsPath): no class ids") }
        guard Set(wnids).count == wnids.count else { throw DatasetError("\(wnidsPath): duplicate class ids") }
        classNames = wnids.sorted(by: pythonOrder)
        let index = Dictionary(uniqueKeysWithValues: classNames.enumerated().map { ($1, $0) })

        var words: [String: String] = [:]
        if let text = try? String(contentsOfFile: root.appendingPathComponent("words.txt").path, encoding: .utf8) {
            for line in text.split(whereSeparator: \.isNewline) {
                let parts = line.split(separator: "\t", maxSplits: 1)
                if parts.count == 2, index[String(parts[0])] != nil { words[String(parts[0])] = String(parts[1]) }
            }
        }
        classDescriptions = classNames.map { words[$0] ?? $0 }

        var trainSamples: [ImageDataset.Sample] = []
        for (label, wnid) in classNames.enumerated() {
            let dir = root.appendingPathComponent("train/\(wnid)/images")
            guard let files = try? fm.contentsOfDirectory(atPath: dir.path) else {
                throw DatasetError("\(dir.path): missing training folder for class \(wnid)")
            }
            for file in files.filter(isImageFileName).sorted(by: pythonOrder) {
                trainSamples.append(.init(path: dir.appendingPathComponent(file).path, label: label))
            }
        }
        guard !trainSamples.isEmpty else { throw DatasetError("\(root.path)/train: no training images") }

        let annotations = root.appendingPathComponent("val/val_annotations.txt").path
        guard let annotationText = try? String(contentsOfFile: annotations, encoding: .utf8) else {
            throw DatasetError("\(annotations): missing or unreadable")
        }
        var valSamples: [ImageDataset.Sample] = []
        for (number, line) in annotationText.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let trimmed = line.trimmingCharacters(in: .whitespacesAndNewlines)
            if trimmed.isEmpty { continue }
            let fields = trimmed.split(separator: "\t")
            guard fields.count >= 2 else { throw DatasetError("\(annotations) line \(number + 1): expected 'file<TAB>wnid…'") }
            guard let label = index[String(fields[1])] else {
                throw DatasetError("\(annotations) line \(number + 1): unknown wnid \(fields[1])")
            }
            let file = String(fields[0])
            guard !file.contains("/") else { throw DatasetError("\(annotations) line \(number + 1): file name may not contain '/'") }
            valSamples.append(.init(path: root.appendingPathComponent("val/images/\(file)").path, label: label))
        }
        valSamples.sort { pythonOrder($0.path, $1.path) }
        train = ImageDataset(samples: trainSamples, classNames: classNames)
        val = ImageDataset(samples: valSamples, classNames: classNames)
    }
}
