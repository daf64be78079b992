import ArgumentParser
import Foundation
import Training

/// `--config FILE.yaml`: the file's keys are the command's long flag names. The file becomes
/// flags placed right after the subcommand, so flags typed on the command line (which come
/// later) override it; the valid keys are read off the command's own help, so a new flag is a
/// valid key without further work.
enum ConfigArguments {
    /// Subcommands that take `--config` (the first is the default subcommand).
    static let commands: [(name: String, type: any ParsableCommand.Type)] = [("train", Train.self), ("eval", Eval.self)]

    static func expand(_ arguments: [String]) throws -> [String] {
        guard let at = arguments.firstIndex(where: { $0 == "--config" || $0.hasPrefix("--config=") }) else {
            return arguments
        }
        var rest = arguments
        let path: String
        if rest[at] == "--config" {
            guard at + 1 < rest.count else { throw TrainingError("--config needs a file, e.g. --config configs/resnet18-tiny-imagenet.yaml") }
            path = rest[at + 1]
            rest.removeSubrange(at...(at + 1))
        } else {
            path = String(rest[at].dropFirst("--config=".count))
            rest.remove(at: at)
        }
        let named = commands.first { $0.name == rest.first }
        guard let command = named ?? (rest.first.map { $0.hasPrefix("-") } ?? true ? commands[0] : nil) else {
            throw TrainingError("--config works with: " + commands.map(\.name).joined(separator: ", "))
        }
        if named != nil { rest.removeFirst() }
        let (options, switches) = flagNames(of: command.type)
        let fileArguments = try ConfigFile.load(path: path).commandLineArguments(validKeys: options, booleanFlags: switches)
        return [command.name] + fileArguments + rest
    }

    /// Long names in the command's help: `--name <value>` takes a value, a bare `--name` is a switch.
    static func flagNames(of command: any ParsableCommand.Type) -> (options: Set<String>, switches: Set<String>) {
        var options = Set<String>(), switches = Set<String>()
        for line in command.helpMessage(columns: 400).split(separator: "\n") {
            let trimmed = line.drop { $0 == " " }
            let first = trimmed.hasPrefix("-h, ") ? trimmed.dropFirst(4) : trimmed
            guard first.hasPrefix("--") else { continue }
            let words = first.split(separator: " ", maxSplits: 2)
            let name = String(words[0].dropFirst(2))
            guard !["help", "config", "version"].contains(name) else { continue }
            if words.count > 1 && words[1].hasPrefix("<") { options.insert(name) } else { switches.insert(name) }
        }
        return (options, switches)
    }
}
