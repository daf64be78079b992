import Foundation

/// Reads the YAML subset `ConfigFile` documents, line by line. Works on Unicode scalars, not
/// Characters: "\r\n" is one Character, and a quote followed by a combining mark would be too.
struct ConfigFileParser {
    typealias Text = ArraySlice<Unicode.Scalar>

    let path: String
    private(set) var entries: [(key: String, value: ConfigValue, line: Int)] = []
    private var lineOfKey: [String: Int] = [:]
    /// The entry whose `key:` had no value; the `- item` lines after it fill it.
    private var openList: (entry: Int, items: [ConfigValue], indent: Int?)?
    private var sawContent = false
    private var lineNumber = 0

    init(path: String) { self.path = path }

    mutating func parse(_ contents: String) throws {
        for line in contents.unicodeScalars.split(separator: "\n", omittingEmptySubsequences: false) {
            lineNumber += 1
            var scalars = Array(line)[...]
            if scalars.last == "\r" { scalars.removeLast() }
            if lineNumber == 1, scalars.first == "\u{FEFF}" { scalars.removeFirst() }
            try parseLine(scalars)
        }
        closeList()
    }

    private mutating func parseLine(_ line: Text) throws {
        var body = line
        var sawTab = false
        while let c = body.first, c == " " || c == "\t" {
            if c == "\t" { sawTab = true }
            body.removeFirst()
        }
        if body.isEmpty || body.first == "#" { return }
        if sawTab { throw error("a tab in the indentation; YAML indents with spaces") }
        let indent = body.startIndex - line.startIndex

        if startsWithMarker(body, "---") {
            guard !sawContent, indent == 0 else { throw error("a second document ('---'); a config file holds one") }
            sawContent = true
            try expectEnd(body.dropFirst(3), after: "'---'")
            return
        }
        if startsWithMarker(body, "...") { throw error("document end markers ('...') are not supported") }
        sawContent = true

        if startsWithMarker(body, "-") {
            try addListItem(body.dropFirst(), indent: indent)
            return
        }
        if indent > 0 {
            if let list = openList, list.items.isEmpty {
                throw error("nested mappings are not supported; write 'key: value' at the top level")
            }
            throw error("unexpected indentation; multi-line values and nested mappings are not supported")
        }
        closeList()
        try addEntry(body)
    }

    private mutating func addEntry(_ body: Text) throws {
        if let problem = indicatorProblem(body) { throw error(problem) }
        if body.first == "\"" || body.first == "'" { throw error("quoted keys are not supported") }
        var colon: Int?
        var i = body.startIndex
        while i < body.endIndex {
            if body[i] == "#", i > body.startIndex, isBlank(body[i - 1]) { break }
            if body[i] == ":", i + 1 == body.endIndex || isBlank(body[i + 1]) { colon = i; break }
            i += 1
        }
        guard let colon else { throw error("expected 'key: value'") }
        let key = String(String.UnicodeScalarView(body[..<colon]))
        guard isValidKey(key) else {
            throw error("'\(key)' is not a valid key (letters, digits, '-' and '_', starting with a letter)")
        }
        let canonical = ConfigFile.canonicalKey(key)
        if let first = lineOfKey[canonical] {
            throw error("duplicate key '\(key)' (already set on line \(first))")
        }
        lineOfKey[canonical] = lineNumber
        if let value = try parseValue(skipBlanks(body[(colon + 1)...]), inList: false) {
            entries.append((key, value, lineNumber))
        } else {
            // Nothing after the colon: null, unless `- item` lines follow.
            entries.append((key, .null, lineNumber))
            openList = (entries.count - 1, [], nil)
        }
    }

    private mutating func addListItem(_ afterDash: Text, indent: Int) throws {
        guard var list = openList else {
            throw error("a list item without a 'key:' line above it; only lists under a key are supported")
        }
        if let expected = list.indent, expected != indent {
            throw error("list item indented by \(indent) space(s), the one above by \(expected)")
        }
        guard let item = try parseValue(skipBlanks(afterDash), inList: true) else { throw error("empty list item") }
        list.indent = indent
        list.items.append(item)
        openList = list
    }

    private mutating func closeList() {
        if let list = openList, !list.items.isEmpty { entries[list.entry].value = .list(list.items) }
        openList = nil
    }

    // MARK: Values

    /// A value running to the end of the line (a comment may follow); nil when there is none.
    private func parseValue(_ text: Text, inList: Bool) throws -> ConfigValue? {
        guard let first = text.first, first != "#" else { return nil }
        if let problem = indicatorProblem(text) { throw error(problem) }
        switch first {
        case "\"":
            let (string, rest) = try doubleQuoted(text)
            try expectEnd(rest, after: "the closing quote")
            return .string(string)
        case "'":
            let (string, rest) = try singleQuoted(text)
            try expectEnd(rest, after: "the closing quote")
            return .string(string)
        case "[":
            if inList { throw error("nested lists are not supported") }
            let (items, rest) = try flowList(text)
            try expectEnd(rest, after: "']'")
            return .list(items)
        case "-" where startsWithMarker(text, "-"):
            throw error(inList ? "nested lists are not supported" : "a list item must start its own line, under 'key:'")
        default:
            var end = text.startIndex
            while end < text.endIndex, !(text[end] == "#" && isBlank(text[end - 1])) { end += 1 }
            return try plain(text[..<end])
        }
    }

    /// An unquoted scalar, trailing blanks dropped, typed as YAML types it.
    private func plain(_ text: Text) throws -> ConfigValue {
        var text = text
        while let last = text.last, isBlank(last) { text.removeLast() }
        for i in text.indices where text[i] == ":" && (i + 1 == text.endIndex || isBlank(text[i + 1])) {
            throw error("nested mappings are not supported (': ' inside a value; quote the value if it is text)")
        }
        return ConfigValue.plain(String(String.UnicodeScalarView(text)))
    }

    /// `[a, "b", 'c']` on one line; a trailing comma is allowed, as in YAML.
    private func flowList(_ text: Text) throws -> ([ConfigValue], Text) {
        var items: [ConfigValue] = []
        var rest = text.dropFirst()
        let unterminated = "a '[' list must close with ']' on the same line"
        while true {
            rest = skipBlanks(rest)
            guard let first = rest.first, first != "#" else { throw error(unterminated) }
            if first == "]" { return (items, rest.dropFirst()) }
            if first == "[" { throw error("nested lists are not supported") }
            if first == "," { throw error("empty item in a '[' list") }
            if let problem = indicatorProblem(rest) { throw error(problem) }
            switch first {
            case "\"":
                let (string, after) = try doubleQuoted(rest)
                items.append(.string(string))
                rest = after
            case "'":
                let (string, after) = try singleQuoted(rest)
                items.append(.string(string))
                rest = after
            default:
                var end = rest.startIndex
                while end < rest.endIndex, rest[end] != ",", rest[end] != "]", rest[end] != "[",
                      rest[end] != "{", rest[end] != "}", !(rest[end] == "#" && isBlank(rest[end - 1])) {
                    end += 1
                }
                if end < rest.endIndex, rest[end] == "[" || rest[end] == "{" || rest[end] == "}" {
                    throw error("'\(rest[end])' inside a '[' list; nested collections are not supported")
                }
                let item = try plain(rest[..<end])
                if rest[..<end].allSatisfy(isBlank) {
                    throw error("empty item in a '[' list")
                }
                items.append(item)
                rest = rest[end...]
            }
            rest = skipBlanks(rest)
            guard let separator = rest.first, separator != "#" else { throw error(unterminated) }
            if separator == "]" { return (items, rest.dropFirst()) }
            guard separator == "," else { throw error("expected ',' or ']' in a '[' list, found '\(separator)'") }
            rest = rest.dropFirst()
        }
    }

    private func singleQuoted(_ text: Text) throws -> (String, Text) {
        var out = String.UnicodeScalarView()
        var i = text.startIndex + 1
        while i < text.endIndex {
            if text[i] == "'" {
                guard i + 1 < text.endIndex, text[i + 1] == "'" else { return (String(out), text[(i + 1)...]) }
                out.append("'")
                i += 2
            } else {
                out.append(text[i])
                i += 1
            }
        }
        throw error("unterminated single-quoted string (a string must end on its line)")
    }

    private func doubleQuoted(_ text: Text) throws -> (String, Text) {
        var out = String.UnicodeScalarView()
        var i = text.startIndex + 1
        while i < text.endIndex {
            let c = text[i]
            if c == "\"" { return (String(out), text[(i + 1)...]) }
            guard c == "\\" else {
                out.append(c)
                i += 1
                continue
            }
            guard i + 1 < text.endIndex else { break }
            let escape = text[i + 1]
            i += 2
            if let value = yamlSingleCharacterEscapes[escape] {
                out.append(Unicode.Scalar(value)!)
                continue
            }
            let digits: Int
            switch escape {
            case "x": digits = 2
            case "u": digits = 4
            case "U": digits = 8
            default: throw error("unknown escape '\\\(escape)' in a double-quoted string")
            }
            guard i + digits <= text.endIndex,
                  let value = UInt32(String(String.UnicodeScalarView(text[i..<(i + digits)])), radix: 16),
                  let scalar = Unicode.Scalar(value) else {
                throw error("'\\\(escape)' needs \(digits) hex digits naming a Unicode character")
            }
            out.append(scalar)
            i += digits
        }
        throw error("unterminated double-quoted string (a string must end on its line)")
    }

    // MARK: Helpers

    /// Why a key or value starting with this YAML indicator is refused; nil when it is fine.
    private func indicatorProblem(_ text: Text) -> String? {
        guard let first = text.first else { return nil }
        switch first {
        case "&": return "anchors ('&') are not supported"
        case "*": return "aliases ('*') are not supported"
        case "!": return "tags ('!') are not supported"
        case "|", ">": return "block scalars ('\(first)') are not supported; write the value on one line"
        case "{": return "flow mappings ('{…}') are not supported"
        case "%": return "directives and values starting with '%' are not supported; quote the value"
        case "?" where startsWithMarker(text, "?"): return "complex keys ('?') are not supported"
        case "@", "`", "]", "}", ",": return "'\(first)' cannot start an unquoted value; quote it"
        default: return nil
        }
    }

    /// `marker` followed by a blank or the end of the line (`-` in `- 30`, not in `-0.5`).
    private func startsWithMarker(_ text: Text, _ marker: String) -> Bool {
        let m = Array(marker.unicodeScalars)
        guard text.count >= m.count, text.prefix(m.count).elementsEqual(m) else { return false }
        let next = text.startIndex + m.count
        return next == text.endIndex || isBlank(text[next])
    }

    private func expectEnd(_ rest: Text, after what: String) throws {
        let rest = skipBlanks(rest)
        guard rest.isEmpty || rest.first == "#" else {
            throw error("unexpected text after \(what): '\(String(String.UnicodeScalarView(rest)))'")
        }
    }

    private func skipBlanks(_ text: Text) -> Text { text.drop(while: isBlank) }

    /// An ASCII letter, then letters, digits, '-' and '_': what a long flag name can be.
    private func isValidKey(_ key: String) -> Bool {
        func isLetter(_ c: Unicode.Scalar) -> Bool { ("a"..."z").contains(c) || ("A"..."Z").contains(c) }
        guard let first = key.unicodeScalars.first, isLetter(first) else { return false }
        return key.unicodeScalars.allSatisfy { isLetter($0) || ("0"..."9").contains($0) || $0 == "-" || $0 == "_" }
    }

    private func error(_ message: String) -> TrainingError { TrainingError("\(path):\(lineNumber): \(message)") }
}

private func isBlank(_ c: Unicode.Scalar) -> Bool { c == " " || c == "\t" }

/// YAML 1.2's one-character escapes in double-quoted scalars (\x, \u and \U take hex digits).
private let yamlSingleCharacterEscapes: [Unicode.Scalar: UInt32] = [
    "0": 0, "a": 7, "b": 8, "t": 9, "\t": 9, "n": 10, "v": 11, "f": 12, "r": 13, "e": 27, " ": 32,
    "\"": 34, "/": 47, "\\": 92, "N": 0x85, "_": 0xA0, "L": 0x2028, "P": 0x2029,
]
