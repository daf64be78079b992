import Foundation

/// Writes a TensorBoard event file of scalars (`tensorboard --logdir RUN_DIR` shows them).
/// Only rank 0 should own one: TensorBoard would plot every rank's file as the same run.
///
/// Every record goes to the kernel as soon as it is added (one `write` per event, a few a second
/// at most), so a crash of the process loses nothing. `fsync` is what costs; it runs on `flush()`,
/// on `close()`, and on the first event added `syncInterval` seconds after the last one, so a
/// machine crash loses at most the events of those last seconds.
public final class TensorBoardWriter {
    public let path: String
    private var handle: FileHandle?
    private var lastSync = Date()
    private let syncInterval: TimeInterval = 5

    /// Creates `directory` if missing and the file `events.out.tfevents.<seconds>.<hostname>` in it;
    /// should that name exist (two writers in one second), `.1`, `.2`, … is appended rather than
    /// interleaving two writers' records.
    public init(directory: String, hostname: String = ProcessInfo.processInfo.hostName, wallTime: Date = Date()) throws {
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw TrainingError("\(directory): cannot create the TensorBoard directory: \(error.localizedDescription)")
        }
        let host = hostname.isEmpty ? "localhost" : hostname.replacingOccurrences(of: "/", with: "_")
        let base = (directory as NSString).appendingPathComponent(
            "events.out.tfevents.\(Int(wallTime.timeIntervalSince1970)).\(host)")
        var candidate = base
        var descriptor = open(candidate, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        var suffix = 0
        while descriptor < 0 && errno == EEXIST && suffix < 100 {
            suffix += 1
            candidate = "\(base).\(suffix)"
            descriptor = open(candidate, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        }
        guard descriptor >= 0 else { throw TrainingError("\(candidate): cannot create: \(String(cString: strerror(errno)))") }
        path = candidate
        handle = FileHandle(fileDescriptor: descriptor, closeOnDealloc: true)
        try write(TensorBoardEvent(wallTime: wallTime.timeIntervalSince1970, step: 0,
                                   fileVersion: TensorBoardEvent.currentFileVersion))
        try flush()
    }

    public func addScalar(_ tag: String, _ value: Double, step: Int, wallTime: Date = Date()) throws {
        try addScalars([(tag, value)], step: step, wallTime: wallTime)
    }

    /// Several scalars of one step in one event, e.g. `[("val/loss", 1.2), ("val/top1", 0.61)]`.
    /// Values are stored as 32-bit floats, as TensorBoard's `simple_value` is.
    public func addScalars(_ values: [(String, Double)], step: Int, wallTime: Date = Date()) throws {
        guard !values.isEmpty else { return }
        try write(TensorBoardEvent(wallTime: wallTime.timeIntervalSince1970, step: Int64(step),
                                   scalars: values.map { (tag: $0.0, value: Float($0.1)) }))
        if Date().timeIntervalSince(lastSync) >= syncInterval { try flush() }
    }

    /// Makes everything added so far durable (fsync).
    public func flush() throws {
        guard let handle else { throw TrainingError("\(path): TensorBoard writer already closed") }
        do {
            try handle.synchronize()
        } catch {
            throw TrainingError("\(path): cannot sync: \(error.localizedDescription)")
        }
        lastSync = Date()
    }

    /// Syncs and closes the file; later calls do nothing. Errors are dropped: closing happens on
    /// the way out (often from `defer`), where a lost last sync is not worth failing a finished run.
    public func close() {
        guard let handle else { return }
        try? handle.synchronize()
        try? handle.close()
        self.handle = nil
    }

    deinit { close() }

    private func write(_ event: TensorBoardEvent) throws {
        guard let handle else { throw TrainingError("\(path): TensorBoard writer already closed") }
        do {
            try handle.write(contentsOf: tfRecordFrame(event.encoded()))
        } catch {
            throw TrainingError("\(path): cannot write: \(error.localizedDescription)")
        }
    }
}
