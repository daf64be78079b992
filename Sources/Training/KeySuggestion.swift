import Foundation

/// The valid key a mistyped one most likely meant (for "did you mean …?"), or nil when none is
/// close enough to be worth suggesting. Keys are compared in lower case, in this order:
/// 1. the same letters with other separators: `batchsize`, `Batch_Size` → `batch-size`;
/// 2. initials, either way, when only one key fits: `learning-rate` → `lr`, `wd` → `weight-decay`;
/// 3. the only key the typed words appear in, in order: `mixup` → `mixup-alpha`, `schedule` →
///    `lr-schedule`; when several keys contain them, nothing is suggested (`size`: batch-size,
///    image-size or step-size?);
/// 4. the smallest Damerau–Levenshtein distance (a swap of neighbours is one edit), at most
///    max(2, length / 3) and less than either key's length, so `xy` suggests nothing; ties go
///    to the alphabetically first key.
func closestKey(to key: String, among validKeys: Set<String>) -> String? {
    let candidates = validKeys.sorted()
    let typed = key.lowercased()
    let squashed = { (s: String) in s.lowercased().filter { $0 != "-" && $0 != "_" } }
    if let match = candidates.first(where: { squashed($0) == squashed(typed) }) { return match }

    let initialsMatches = candidates.filter { initials(of: typed) == $0 || initials(of: $0) == typed }
    if initialsMatches.count == 1 { return initialsMatches[0] }

    let typedWords = words(of: typed)
    let containing = candidates.filter { containsRun(words(of: $0), typedWords) }
    // Several: the typed word is a fragment of many keys, and any one of them would be a guess.
    if !containing.isEmpty { return containing.count == 1 ? containing[0] : nil }

    let typedScalars = Array(typed.unicodeScalars)
    let limit = max(2, typedScalars.count / 3)
    var best: (key: String, distance: Int)?
    for candidate in candidates {
        let scalars = Array(candidate.lowercased().unicodeScalars)
        let distance = damerauLevenshteinDistance(typedScalars, scalars)
        guard distance <= limit, distance < min(typedScalars.count, scalars.count) else { continue }
        if best == nil || distance < best!.distance { best = (candidate, distance) }
    }
    return best?.key
}

private func words(of key: String) -> [Substring] { key.split(whereSeparator: { $0 == "-" || $0 == "_" }) }

/// First letters of a key of two or more words (`weight-decay` → `wd`); nil for one word.
private func initials(of key: String) -> String? {
    let words = words(of: key)
    return words.count >= 2 ? String(words.map { $0.first! }) : nil
}

/// Whether `run` appears in `words` as consecutive words.
private func containsRun(_ words: [Substring], _ run: [Substring]) -> Bool {
    guard !run.isEmpty, run.count <= words.count else { return false }
    return (0...(words.count - run.count)).contains { Array(words[$0..<($0 + run.count)]) == run }
}

/// Edits (insert, delete, substitute, swap two neighbours) from a to b: the optimal string
/// alignment form of Damerau–Levenshtein, which is what typos need.
func damerauLevenshteinDistance(_ a: [Unicode.Scalar], _ b: [Unicode.Scalar]) -> Int {
    if a.isEmpty { return b.count }
    if b.isEmpty { return a.count }
    let width = b.count + 1
    // Rows i-2, i-1 and i of the (a.count+1) × (b.count+1) table.
    var older = [Int](repeating: 0, count: width)
    var previous = Array(0...b.count)
    var current = [Int](repeating: 0, count: width)
    for i in 1...a.count {
        current[0] = i
        for j in 1...b.count {
            let cost = a[i - 1] == b[j - 1] ? 0 : 1
            var d = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if i > 1, j > 1, a[i - 1] == b[j - 2], a[i - 2] == b[j - 1] { d = min(d, older[j - 2] + 1) }
            current[j] = d
        }
        (older, previous, current) = (previous, current, older)
    }
    return previous[b.count]
}
