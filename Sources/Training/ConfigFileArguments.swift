import Foundation

extension ConfigFile {
    /// The file as command-line arguments, in file order, for the command's own parser: put them
    /// before the user's arguments and the flags typed win over the file (with single-value
    /// options the last occurrence counts).
    ///
    /// - `key: value` → `--key value`; a value starting with '-' as `--key=value`, so a negative
    ///   number is not taken for a flag.
    /// - Lists → `--key 30,60` (items joined with commas).
    /// - Keys in `booleanFlags` (switches that take no value): `true` → `--key`; `false` or null
    ///   → nothing, i.e. the switch stays off — a file cannot turn on a switch the command line
    ///   then turns off, as the command line has no way to say "off". Any other value is an error.
    /// - Null (`key:`, `~`) on an option → nothing: the option keeps its default.
    /// - A boolean on an option that takes a value → `--key true` / `--key false`.
    ///
    /// `validKeys` (options that take a value) and `booleanFlags` (switches; they need not be in
    /// `validKeys` too) are flag names without the dashes; `batch_size` in the file matches
    /// `batch-size`. An unknown key is an error naming the file and line, with the
    /// closest valid key suggested when one is close (`closestKey`).
    public func commandLineArguments(validKeys: Set<String>, booleanFlags: Set<String>) throws -> [String] {
        var arguments: [String] = []
        for entry in entries {
            let key = ConfigFile.canonicalKey(entry.key)
            guard validKeys.contains(key) || booleanFlags.contains(key) else {
                var message = "\(path):\(entry.line): unknown key '\(entry.key)'"
                if let suggestion = closestKey(to: key, among: validKeys.union(booleanFlags)) {
                    message += "; did you mean '\(suggestion)'?"
                }
                throw TrainingError(message)
            }
            if booleanFlags.contains(key) {
                switch entry.value {
                case .bool(true): arguments.append("--\(key)")
                case .bool(false), .null: break
                default:
                    throw TrainingError("\(path):\(entry.line): '\(entry.key)' is a switch; give it true or false, "
                                        + "not '\(entry.value.argumentText)'")
                }
                continue
            }
            if entry.value == .null { continue }
            let text = entry.value.argumentText
            if text.hasPrefix("-") {
                arguments.append("--\(key)=\(text)")
            } else {
                arguments += ["--\(key)", text]
            }
        }
        return arguments
    }
}
