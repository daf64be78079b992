import Foundation

/// A value of a config file entry, typed the way YAML resolves it.
public enum ConfigValue: Equatable, Sendable {
    /// Quoted text, or plain text that is not a boolean, number or null.
    case string(String)
    /// true/false, yes/no, on/off (lower, Title or UPPER case), unquoted.
    case bool(Bool)
    /// A decimal integer or float, unquoted, kept as written (`5e-4`, `0.10`): the option's own
    /// parser converts it, so the file means exactly what the same text on the command line would.
    case number(String)
    /// `[30, 60]` or `- 30` lines; items are scalars.
    case list([ConfigValue])
    /// `~`, `null`, or nothing after the colon.
    case null

    /// Resolves an unquoted scalar as YAML's core schema does (plus YAML 1.1's yes/no/on/off,
    /// which people write in config files and expect to be booleans).
    static func plain(_ text: String) -> ConfigValue {
        switch text {
        case "", "~", "null", "Null", "NULL": return .null
        case "true", "True", "TRUE", "yes", "Yes", "YES", "on", "On", "ON": return .bool(true)
        case "false", "False", "FALSE", "no", "No", "NO", "off", "Off", "OFF": return .bool(false)
        default: return isDecimalNumber(text) ? .number(text) : .string(text)
        }
    }

    /// The text an option gets on the command line: lists joined with commas, booleans as
    /// true/false, null as nothing.
    public var argumentText: String {
        switch self {
        case .string(let text), .number(let text): return text
        case .bool(let value): return value ? "true" : "false"
        case .list(let items): return items.map(\.argumentText).joined(separator: ",")
        case .null: return ""
        }
    }
}

/// [-+]? digits [. digits] [e [-+]? digits], or with only a fractional part (.5), as YAML's core
/// schema matches integers and floats in decimal.
private func isDecimalNumber(_ text: String) -> Bool {
    var scalars = Substring(text).unicodeScalars[...]
    func digits() -> Int {
        var n = 0
        while let c = scalars.first, ("0"..."9").contains(c) { scalars.removeFirst(); n += 1 }
        return n
    }
    if let sign = scalars.first, sign == "-" || sign == "+" { scalars.removeFirst() }
    var mantissa = digits()
    if scalars.first == "." {
        scalars.removeFirst()
        mantissa += digits()
    }
    guard mantissa > 0 else { return false }
    if let e = scalars.first, e == "e" || e == "E" {
        scalars.removeFirst()
        if let sign = scalars.first, sign == "-" || sign == "+" { scalars.removeFirst() }
        guard digits() > 0 else { return false }
    }
    return scalars.isEmpty
}
