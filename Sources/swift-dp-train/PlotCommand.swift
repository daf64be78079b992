import ArgumentParser
import Foundation
import Training

struct Plot: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Draw a run's loss, accuracy and learning-rate curves from its metrics.jsonl (SVG or PNG).")

    @Argument(help: "Run directory (or its metrics.jsonl).")
    var runDirectory: String

    @Option(help: "Picture to write, .svg or .png (default: <run-directory>/curves.svg).")
    var output: String?

    func validate() throws {
        if let output, CurvePlot.Format(path: output) == nil {
            throw ValidationError("--output must end in .svg or .png, got '\(output)'")
        }
    }

    func run() throws {
        var isDirectory: ObjCBool = false
        let argument = runDirectory
        guard FileManager.default.fileExists(atPath: argument) else {
            FileHandle.standardError.write(Data("error: \(argument): no such run directory or metrics file\n".utf8))
            throw ExitCode.failure
        }
        let isRunDirectory = FileManager.default.fileExists(atPath: argument, isDirectory: &isDirectory) && isDirectory.boolValue
        let metricsPath = isRunDirectory ? (argument as NSString).appendingPathComponent("metrics.jsonl") : argument
        let runDirectory = isRunDirectory ? argument : (argument as NSString).deletingLastPathComponent
        let outputPath = output ?? ((runDirectory.isEmpty ? "." : runDirectory) as NSString).appendingPathComponent("curves.svg")
        // The run's name: what people call it, and what tells two pictures apart.
        let standardized = URL(fileURLWithPath: runDirectory.isEmpty ? "." : runDirectory).standardizedFileURL
        do {
            let history = try MetricsHistory.read(path: metricsPath)
            try CurvePlot(history: history, title: standardized.lastPathComponent).write(to: outputPath)
            print("wrote \(outputPath) (\(history.epochs.count) epoch(s), \(history.steps.count) step line(s))")
        } catch {
            FileHandle.standardError.write(Data("error: \(error)\n".utf8))
            throw ExitCode.failure
        }
    }
}
