import Foundation

/// The text of a metadata file; the error names the file and what it belongs to.
func readTextFile(_ url: URL, purpose: String) throws -> String {
    guard let data = FileManager.default.contents(atPath: url.path) else {
        throw DatasetError("\(url.path): missing or unreadable (\(purpose))")
    }
    guard let text = String(data: data, encoding: .utf8) else { throw DatasetError("\(url.path): not UTF-8 text") }
    return text
}

/// Non-blank lines with their 1-based line numbers, without "\r" (files edited on Windows) or a
/// leading byte-order mark.
func numberedLines(_ text: String) -> [(number: Int, text: Substring)] {
    var lines: [(Int, Substring)] = []
    for (index, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
        var trimmed = line.drop { $0 == "\u{FEFF}" }
        while let last = trimmed.last, last.isWhitespace { trimmed = trimmed.dropLast() }
        if !trimmed.allSatisfy(\.isWhitespace) { lines.append((index + 1, trimmed)) }
    }
    return lines
}

func isDirectory(_ url: URL) -> Bool { isDirectoryFollowingLinks(url.path) }

func fileExists(_ url: URL) -> Bool { FileManager.default.fileExists(atPath: url.path) }
