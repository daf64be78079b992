import Foundation

/// A `--config FILE.yaml`: flat `key: value` lines whose keys are the command's long flag names
/// without the dashes (`batch-size: 128`; `batch_size` works too).
///
/// The YAML subset read (`ConfigFileParser`): `key: value` at the top level; `#` comments (at the
/// start of a line or after a blank, as in YAML: `runs/exp#3` is a value); blank lines; one
/// leading `---`; plain, 'single-quoted' ('' is a quote) and "double-quoted" scalars (YAML
/// escapes: \n \t \" \\ \xHH \uHHHH …); booleans true/false/yes/no/on/off; numbers; null, `~` or
/// nothing; flow lists `[30, 60]` and block lists (`- 30` lines under `key:`). Anything else —
/// nested mappings, anchors and aliases, tags, block scalars, multi-line values, several
/// documents, tabs in indentation — is an error naming the file, the line and the construct.
///
/// Repeating a key (also as `batch_size` and `batch-size`) is an error when the file is parsed:
/// YAML forbids it, and a silent last-one-wins would hide a mistake.
public struct ConfigFile: Sendable {
    public let path: String
    /// In file order; `key` as written (see `canonicalKey`), `line` 1-based.
    public let entries: [(key: String, value: ConfigValue, line: Int)]

    public static func parse(contents: String, path: String) throws -> ConfigFile {
        var parser = ConfigFileParser(path: path)
        try parser.parse(contents)
        return ConfigFile(path: path, entries: parser.entries)
    }

    public static func load(path: String) throws -> ConfigFile {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw TrainingError("\(path): cannot read the config file (\((error as NSError).localizedDescription))")
        }
        guard let contents = String(data: data, encoding: .utf8) else {
            throw TrainingError("\(path): the config file is not UTF-8 text")
        }
        return try parse(contents: contents, path: path)
    }

    /// The flag name a key stands for: underscores become dashes (`batch_size` → `batch-size`).
    public static func canonicalKey(_ key: String) -> String {
        key.replacingOccurrences(of: "_", with: "-")
    }
}
