import Foundation

/// What a finished child process left behind.
public struct ProcessOutcome: Sendable {
    public var status: Int32
    public var stdout: String
    public var stderr: String
    public var timedOut: Bool
    public var output: String { stdout + stderr }
}

/// Runs a program to completion with a hard time limit: a hung job fails its test instead of
/// hanging CI. Output is drained concurrently so a chatty child cannot block on a full pipe.
public func runProcess(_ executable: String, _ arguments: [String], environment: [String: String] = [:],
                       timeout: TimeInterval = 120) throws -> ProcessOutcome {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    var env = ProcessInfo.processInfo.environment
    for (k, v) in environment { env[k] = v }
    process.environment = env
    let outPipe = Pipe(), errPipe = Pipe()
    process.standardOutput = outPipe
    process.standardError = errPipe
    process.standardInput = FileHandle.nullDevice
    let collected = OutputCollector()
    outPipe.fileHandleForReading.readabilityHandler = { collected.append($0.availableData, error: false) }
    errPipe.fileHandleForReading.readabilityHandler = { collected.append($0.availableData, error: true) }
    try process.run()
    let deadline = Date().addingTimeInterval(timeout)
    var timedOut = false
    while process.isRunning {
        if Date() > deadline {
            timedOut = true
            // mpirun forwards SIGTERM to its ranks; SIGKILL after a grace period.
            process.terminate()
            Thread.sleep(forTimeInterval: 3)
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
            break
        }
        Thread.sleep(forTimeInterval: 0.05)
    }
    process.waitUntilExit()
    outPipe.fileHandleForReading.readabilityHandler = nil
    errPipe.fileHandleForReading.readabilityHandler = nil
    collected.append(outPipe.fileHandleForReading.readDataToEndOfFile(), error: false)
    collected.append(errPipe.fileHandleForReading.readDataToEndOfFile(), error: true)
    let (out, err) = collected.strings
    return ProcessOutcome(status: process.terminationStatus, stdout: out, stderr: err, timedOut: timedOut)
}

private final class OutputCollector: @unchecked Sendable {
    // @unchecked Sendable: every access to the two buffers holds `lock`.
    private let lock = NSLock()
    private var out = Data(), err = Data()

    func append(_ data: Data, error: Bool) {
        guard !data.isEmpty else { return }
        lock.lock(); defer { lock.unlock() }
        if error { err.append(data) } else { out.append(data) }
    }

    var strings: (String, String) {
        lock.lock(); defer { lock.unlock() }
        return (String(decoding: out, as: UTF8.self), String(decoding: err, as: UTF8.self))
    }
}

/// The package root, found from this file's location (Tests/TestSupport/…).
public let packageRoot: URL = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

/// The release binary the multi-process tests launch: `$SWIFT_DP_TRAIN_BINARY`, or the
/// package's `.build/release/swift-dp-train` (scripts/test.sh builds it first).
public func swiftDPTrainBinary() -> String? {
    let path = ProcessInfo.processInfo.environment["SWIFT_DP_TRAIN_BINARY"]
        ?? packageRoot.appendingPathComponent(".build/release/swift-dp-train").path
    return FileManager.default.isExecutableFile(atPath: path) ? path : nil
}

public func findExecutable(_ name: String) -> String? {
    for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":") {
        let path = "\(dir)/\(name)"
        if FileManager.default.isExecutableFile(atPath: path) { return path }
    }
    return nil
}

/// Environment for mpirun: Open MPI refuses root without these two variables (CI runs as root).
public var mpirunEnvironment: [String: String] {
    var env: [String: String] = [:]
    if getuid() == 0 {
        env["OMPI_ALLOW_RUN_AS_ROOT"] = "1"
        env["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1"
    }
    return env
}

/// `mpirun -np N <binary> args…`, oversubscribing when N exceeds the cores.
public func runMPI(ranks: Int, binary: String, _ arguments: [String], timeout: TimeInterval = 180) throws -> ProcessOutcome {
    guard let mpirun = findExecutable("mpirun") else {
        throw SupportError("mpirun not found on PATH")
    }
    var args = ["-np", String(ranks)]
    if ranks > ProcessInfo.processInfo.activeProcessorCount { args.append("--oversubscribe") }
    args.append(binary)
    return try runProcess(mpirun, args + arguments, environment: mpirunEnvironment, timeout: timeout)
}

public struct SupportError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// A fresh temporary directory, removed by the caller (or left for inspection on failure).
public func makeTemporaryDirectory(_ prefix: String) throws -> URL {
    let url = FileManager.default.temporaryDirectory
        .appendingPathComponent("\(prefix)-\(ProcessInfo.processInfo.processIdentifier)-\(UUID().uuidString.prefix(8))")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

/// Every line of a run directory's metrics.jsonl, parsed.
public func metricsLines(_ run: URL) throws -> [[String: Any]] {
    let text = try String(contentsOf: run.appendingPathComponent("metrics.jsonl"), encoding: .utf8)
    return try text.split(separator: "\n").map {
        guard let object = try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] else {
            throw SupportError("\(run.path)/metrics.jsonl: a line is not a JSON object: \($0)")
        }
        return object
    }
}
