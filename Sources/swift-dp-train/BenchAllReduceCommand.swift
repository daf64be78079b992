import ArgumentParser
import DataParallel
import Foundation

/// `swift-dp-train bench-allreduce`: all-reduce time and bus bandwidth by message size.
struct BenchAllReduce: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-allreduce",
        abstract: "Time the gradient all-reduce by message size (run under mpirun with 2+ ranks).",
        discussion: """
            Each size is reduced back to back in batches of about 0.2 s; the table shows the median \
            batch's time per all-reduce (mean over ranks), the algorithm bandwidth (float32 bytes ÷ \
            time) and the bus bandwidth (× 2(n−1)/n, the nccl-tests convention). fp16/bf16 include \
            the conversions. Compare with benchmarks/allreduce_baseline.c (a plain MPI_Allreduce loop).
            """)

    @Option(help: "Message sizes in bytes of float32 data, comma-separated (K and M suffixes: 4K, 25M).")
    var sizes = "4K,64K,1M,4M,16M,64M"

    @Option(help: "Comma-separated: none, fp16, bf16.")
    var compression = "none"

    @Option(help: "Timed batches per size (the median is reported).")
    var repeats = 5

    @Option(help: "Also write the rows as CSV here (rank 0).")
    var csv: String?

    func run() throws {
        let byteSizes = try sizes.split(separator: ",").map { try Self.parseBytes(String($0)) }
        let modes = try compression.split(separator: ",").map { name -> GradientCompression in
            guard let mode = GradientCompression(rawValue: String(name)) else {
                throw ValidationError("--compression takes none, fp16, bf16 (got '\(name)')")
            }
            return mode
        }
        guard repeats >= 1 else { throw ValidationError("--repeats must be at least 1") }
        let comm: any Communicator = MPICommunicator.isLaunchedByMPI ? MPICommunicator() : SingleProcessCommunicator()
        defer { comm.finalize() }
        guard comm.worldSize > 1 else {
            throw ValidationError("bench-allreduce needs 2 or more ranks: mpirun -np 2 swift-dp-train bench-allreduce")
        }
        let rows = benchmarkAllReduce(sizes: byteSizes, compressions: modes, repeats: repeats, communicator: comm)
        guard comm.rank == 0 else { return }
        print("all-reduce on \(comm.worldSize) ranks (median of \(repeats) batches)")
        print("compression       bytes     time (µs)   algbw (GB/s)   busbw (GB/s)")
        var lines = ["compression,ranks,bytes,microseconds,algbw_gb_s,busbw_gb_s"]
        for row in rows {
            print(String(format: "%-11@ %11d %13.1f %14.3f %14.3f", row.compression.rawValue, row.bytes,
                         row.seconds * 1e6, row.algorithmBandwidth / 1e9, row.busBandwidth / 1e9))
            lines.append(String(format: "%@,%d,%d,%.2f,%.4f,%.4f", row.compression.rawValue, row.ranks, row.bytes,
                                row.seconds * 1e6, row.algorithmBandwidth / 1e9, row.busBandwidth / 1e9))
        }
        if let csv {
            do {
                try (lines.joined(separator: "\n") + "\n").write(toFile: csv, atomically: true, encoding: .utf8)
            } catch {
                throw ValidationError("\(csv): cannot write the CSV (\(error.localizedDescription))")
            }
        }
    }

    static func parseBytes(_ text: String) throws -> Int {
        let multiplier: Int
        var digits = Substring(text)
        switch text.last {
        case "K", "k": multiplier = 1 << 10; digits = digits.dropLast()
        case "M", "m": multiplier = 1 << 20; digits = digits.dropLast()
        default: multiplier = 1
        }
        guard let value = Int(digits), value > 0, value * multiplier % 4 == 0 else {
            throw ValidationError("--sizes: '\(text)' is not a positive number of bytes divisible by 4 (e.g. 4K, 25M)")
        }
        return value * multiplier
    }
}
