import DataParallel
import DataPipeline
import Foundation
import NN

/// Options of `swift-dp-train check-data`.
public struct DataCheckOptions: Sendable {
    public var dataset = DatasetSelection()
    /// Decode threads per rank.
    public var threads = 2
    public var jsonOutput: String?
    public init() {}
}

/// One file the loader would skip, and why.
struct DataProblem: Codable, Sendable, Equatable {
    var file: String
    var reason: String
}

/// The JSON `check-data --json` writes.
struct DataCheckReport: Codable {
    struct Split: Codable {
        var samples: Int
        var perClass: [String: Int]
        enum CodingKeys: String, CodingKey { case samples, perClass = "per_class" }
    }
    var format: String
    var splits: [String: Split]
    var problems: [DataProblem]
}

public enum DataCheck {
    /// Decodes every image of both splits (ranks take every W-th file, threads share a rank's
    /// files), gathers the problems on rank 0, prints a summary and writes the JSON. Exits 1
    /// when any file would be skipped, so a script can stop before a long run.
    public static func launch(_ options: DataCheckOptions) {
        let comm: any Communicator = MPICommunicator.isLaunchedByMPI ? MPICommunicator() : SingleProcessCommunicator()
        var opened: OpenedDataset?
        var failure: String?
        do { opened = try openData(options.dataset, communicator: comm) } catch { failure = "\(error)" }
        if reportSetUpFailure(failure, communicator: comm) { comm.finalize(); exit(1) }
        let data = opened!

        var mine: [DataProblem] = []
        for split in [data.train, data.val] {
            let paths = stride(from: comm.rank, to: split.count, by: comm.worldSize).map { split.samples[$0].path }
            mine += decodeAll(paths, threads: options.threads, maxPixels: options.dataset.maxPixels)
        }
        // Gather: each rank in turn broadcasts its problems (few, and this runs once).
        var problems: [DataProblem] = []
        for root in 0..<comm.worldSize {
            var bytes = comm.rank == root ? Array((try? JSONEncoder().encode(mine)) ?? Data("[]".utf8)) : []
            comm.broadcast(bytes: &bytes, root: root)
            problems += (try? JSONDecoder().decode([DataProblem].self, from: Data(bytes))) ?? []
        }
        problems.sort { pythonOrder($0.file, $1.file) }

        if comm.rank == 0 {
            let report = DataCheckReport(format: data.format.rawValue, splits: [
                "train": summary(data.train, classNames: data.classNames),
                "val": summary(data.val, classNames: data.classNames),
            ], problems: problems)
            printReport(report, classNames: data.classNames)
            if let path = options.jsonOutput {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
                do {
                    try writeAtomically(Array(try encoder.encode(report)), to: path)
                } catch {
                    FileHandle.standardError.write(Data("error: \(path): cannot write the report (\(error))\n".utf8))
                }
            }
        }
        comm.finalize()
        if !problems.isEmpty { exit(1) }
    }

    /// Reads and decodes each file exactly as the loader would; returns those that fail.
    static func decodeAll(_ paths: [String], threads: Int, maxPixels: Int) -> [DataProblem] {
        let problems = ProblemList()
        let workers = max(1, min(threads, paths.count))
        DispatchQueue.concurrentPerform(iterations: workers) { worker in
            let decoder = ImageDecoder()
            decoder.maxPixels = maxPixels
            var image = RGBImage(width: 0, height: 0, pixels: [])
            var bytes: [UInt8] = []
            for i in stride(from: worker, to: paths.count, by: workers) {
                do {
                    try readImageFile(paths[i], into: &bytes)
                    try decoder.decode(bytes, into: &image)
                } catch {
                    problems.append(DataProblem(file: paths[i], reason: "\(error)"))
                }
            }
        }
        return problems.all
    }

    /// Problems found by concurrent decoders.
    final class ProblemList: @unchecked Sendable {
        // @unchecked Sendable: `items` is only touched under `lock`.
        private let lock = NSLock()
        private var items: [DataProblem] = []
        func append(_ problem: DataProblem) { lock.lock(); items.append(problem); lock.unlock() }
        var all: [DataProblem] { lock.lock(); defer { lock.unlock() }; return items }
    }

    static func summary(_ split: ImageDataset, classNames: [String]) -> DataCheckReport.Split {
        var counts = [Int](repeating: 0, count: classNames.count)
        for sample in split.samples { counts[sample.label] += 1 }
        return .init(samples: split.count, perClass: Dictionary(uniqueKeysWithValues: zip(classNames, counts)))
    }

    static func printReport(_ report: DataCheckReport, classNames: [String]) {
        print("format: \(report.format), \(classNames.count) classes")
        for name in ["train", "val"] {
            guard let split = report.splits[name] else { continue }
            let counts = split.perClass.values
            let empty = classNames.filter { split.perClass[$0] == 0 }
            print("\(name): \(split.samples) images, per class \(counts.min() ?? 0)–\(counts.max() ?? 0)"
                  + (empty.isEmpty ? "" : "; no images for \(empty.count) class(es): \(empty.prefix(5).joined(separator: ", "))"))
        }
        if report.problems.isEmpty {
            print("every image decodes")
        } else {
            print("\(report.problems.count) file(s) would be skipped:")
            for problem in report.problems.prefix(20) { print("  \(problem.file): \(problem.reason)") }
            if report.problems.count > 20 { print("  … and \(report.problems.count - 20) more (all in --json)") }
        }
    }
}
