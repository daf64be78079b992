import DataPipeline
import Foundation

/// A class label for printing: the name the model knows it by, and a readable description
/// where the source has one (`n01440764` / `tench, Tinca tinca`).
public struct ClassLabel: Sendable, Equatable {
    public var name: String
    public var description: String?
    public init(name: String, description: String?) { self.name = name; self.description = description }
}

/// Reads class names for `predict --classes FILE`, in model output order.
/// - `wnids.txt` (Tiny-ImageNet): the wnids sorted (our class order, as ImageFolder's), with
///   descriptions from a `words.txt` beside it.
/// - `words.txt`: only with a `wnids.txt` beside it (it lists every WordNet synset).
/// - `LOC_synset_mapping.txt`, `synsets.txt` and any file of `<wnid> <description>` lines: line
///   order, the first word as the name and the rest as the description.
/// - Anything else: one name per line.
public enum ClassNameFile {
    public static func read(path: String) throws -> [ClassLabel] {
        let url = URL(fileURLWithPath: path)
        let base = url.lastPathComponent
        let directory = url.deletingLastPathComponent()
        func lines(_ file: URL) throws -> [String] {
            guard let text = try? String(contentsOf: file, encoding: .utf8) else {
                throw TrainingError("\(file.path): missing or unreadable class-name file")
            }
            return text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }
                .filter { !$0.isEmpty }
        }
        if base == "wnids.txt" || base == "words.txt" {
            let wnidsFile = directory.appendingPathComponent("wnids.txt")
            guard FileManager.default.fileExists(atPath: wnidsFile.path) else {
                throw TrainingError("\(path): words.txt lists every WordNet synset; the class order comes from wnids.txt, which is not beside it")
            }
            let wnids = try lines(wnidsFile).sorted(by: pythonOrder)
            var words: [String: String] = [:]
            let wordsFile = directory.appendingPathComponent("words.txt")
            if let all = try? lines(wordsFile) {
                for line in all {
                    let parts = line.split(separator: "\t", maxSplits: 1)
                    if parts.count == 2 { words[String(parts[0])] = String(parts[1]) }
                }
            }
            return wnids.map { ClassLabel(name: $0, description: words[$0]) }
        }
        let all = try lines(url)
        guard !all.isEmpty else { throw TrainingError("\(path): no class names") }
        let wnidLike = all.allSatisfy { $0.first == "n" && $0.split(separator: " ", maxSplits: 1).first.map { $0.count == 9 } == true }
        return all.map { line in
            let parts = line.split(separator: " ", maxSplits: 1)
            if wnidLike, parts.count == 2 {
                return ClassLabel(name: String(parts[0]), description: parts[1].trimmingCharacters(in: .whitespaces))
            }
            return ClassLabel(name: line, description: nil)
        }
    }
}
