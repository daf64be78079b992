import CMPI
import Foundation

// Note [Collective watchdog]
// ~~~~~~~~~~~~~~~~~~~~~~~~~~
// A rank that never reaches a collective (a wedged loader, a deadlock, a node swapping) leaves
// every other rank blocked inside MPI for ever: mpirun ends a job only when a process dies.
// So each rank runs a watchdog thread that, every interval, tells rank 0 where its rank is —
// the collective's sequence number, whether it is waiting inside it and for how long, the
// phase — on a duplicate of MPI_COMM_WORLD, so these messages never meet the trainer's.
// Rank 0's watchdog keeps the latest report of every rank; when a rank has waited longer than
// the timeout inside one collective, it names the ranks that arrived, says where each other
// rank is (computing in which phase, waiting in an earlier collective, or silent), and
// aborts the job — Horovod's stall inspector and PyTorch's monitored_barrier, in one line.
// Reports keep coming while a rank computes, so a rank busy elsewhere is named with its
// phase; one that stopped reporting (SIGSTOP, swapping, a dead link) is named as silent.
// Should rank 0's watchdog itself be unable to act, a waiting rank gives up on its own after
// a grace period. The watchdog calls MPI while the main thread is inside a collective, so it
// needs MPI_THREAD_MULTIPLE.

/// Seconds on a clock that never jumps.
func monotonicSeconds() -> Double {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return Double(now.tv_sec) + Double(now.tv_nsec) * 1e-9
}

/// Where this rank is: the main thread updates it around every collective, the watchdog
/// thread reads it. A lock and a few stores per collective; nothing is allocated.
final class CollectiveTracker: @unchecked Sendable {
    // @unchecked Sendable: every field is read and written under `lock`.
    private let lock = NSLock()
    private var sequence = 0
    private var waiting = false
    private var kind: StaticString = "none"
    private var count = 0
    private var currentPhase = CollectivePhase.setUp
    private var since = monotonicSeconds()

    var phase: CollectivePhase {
        get { lock.lock(); defer { lock.unlock() }; return currentPhase }
        set { lock.lock(); currentPhase = newValue; lock.unlock() }
    }

    func setBucket(_ bucket: Int, of buckets: Int) {
        lock.lock()
        currentPhase.bucket = bucket
        currentPhase.buckets = buckets
        lock.unlock()
    }

    func enter(_ kind: StaticString, count: Int) {
        let now = monotonicSeconds()
        lock.lock()
        sequence += 1
        waiting = true
        self.kind = kind
        self.count = count
        since = now
        lock.unlock()
    }

    func leave() {
        let now = monotonicSeconds()
        lock.lock()
        waiting = false
        since = now
        lock.unlock()
    }

    func report(host: String) -> RankReport {
        let now = monotonicSeconds()
        lock.lock(); defer { lock.unlock() }
        return RankReport(sequence: sequence, waiting: waiting, seconds: now - since, host: host,
                          phase: currentPhase.description, collective: "\(kind) of \(count) value(s)",
                          patient: currentPhase.patient)
    }
}

/// One rank's state as rank 0's watchdog learns it.
public struct RankReport: Equatable, Sendable {
    /// Collectives entered so far (the one waited in, when `waiting`).
    public var sequence: Int
    public var waiting: Bool
    /// Time inside the collective when waiting, else since the last one ended.
    public var seconds: Double
    public var host: String
    public var phase: String
    public var collective: String
    /// See `CollectivePhase.patient`.
    public var patient: Bool

    public static let wireSize = 512

    /// Tab-separated text in a fixed-size message; over-long text is cut.
    public func encoded() -> [UInt8] {
        let clean = { (s: String) in s.replacingOccurrences(of: "\t", with: " ") }
        let text = "\(sequence)\t\(waiting ? 1 : 0)\t\(seconds)\t\(clean(host))\t\(clean(phase))\t\(clean(collective))\t\(patient ? 1 : 0)"
        var bytes = Array(text.utf8.prefix(RankReport.wireSize))
        bytes.append(contentsOf: [UInt8](repeating: 0, count: RankReport.wireSize - bytes.count))
        return bytes
    }

    public init(sequence: Int, waiting: Bool, seconds: Double, host: String, phase: String, collective: String,
                patient: Bool = false) {
        self.sequence = sequence
        self.waiting = waiting
        self.seconds = seconds
        self.host = host
        self.phase = phase
        self.collective = collective
        self.patient = patient
    }

    public init?(decoding bytes: some Collection<UInt8>) {
        let text = String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
        let fields = text.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
        guard fields.count == 7, let sequence = Int(fields[0]), let seconds = Double(fields[2]) else { return nil }
        self.init(sequence: sequence, waiting: fields[1] == "1", seconds: seconds, host: fields[3], phase: fields[4],
                  collective: fields[5], patient: fields[6] == "1")
    }
}

/// The stall verdict, from every rank's latest report (pure, so it is tested without MPI).
/// `reports[r]` is nil before rank r's first report; `silentFor[r]` is how long ago it came.
public func stallReport(reports: [RankReport?], silentFor: [Double], timeout: Double, silentAfter: Double) -> String? {
    // The longest wait decides; the ranks in that same collective are the ones that arrived.
    // A patient wait (rank 0 evaluating alone) counts only once rank 0 falls silent.
    let rootAlive = reports.first.flatMap { $0 } != nil && silentFor.first.map { $0 <= silentAfter } == true
    guard let stuck = reports.compactMap({ $0 }).filter({ $0.waiting && $0.seconds > timeout && !($0.patient && rootAlive) })
        .max(by: { $0.seconds < $1.seconds }) else { return nil }
    var arrived: [Int] = [], missing: [Int] = []
    for (rank, report) in reports.enumerated() {
        if let report, report.waiting, report.sequence == stuck.sequence { arrived.append(rank) } else { missing.append(rank) }
    }
    var lines = ["collective #\(stuck.sequence) (\(stuck.collective), \(stuck.phase)) has waited "
        + String(format: "%.0f s", stuck.seconds) + " on rank(s) \(rankList(arrived)); "
        + (missing.isEmpty ? "every rank is in it, yet it does not complete (a network or MPI fault)"
                           : "waiting for rank(s) \(rankList(missing))")
        + " (--collective-timeout \(formatSeconds(timeout))); aborting the job"]
    // A rank that arrived but then fell silent is named too: when a link goes down half-way
    // through a collective, the rank beyond it stays "in" the collective its last report
    // named while the others, whose part completed, wait in later ones.
    let silentArrivals = arrived.filter { silentFor[$0] > silentAfter }
    for rank in (missing + silentArrivals).prefix(8) {
        var line = "  rank \(rank)"
        guard let report = reports[rank] else {
            lines.append(line + ": no report yet (it may not have finished starting)")
            continue
        }
        line += " on \(report.host): "
        if report.waiting {
            line += "waiting in collective #\(report.sequence) (\(report.collective), \(report.phase)) for "
                + String(format: "%.0f s", report.seconds)
        } else {
            line += "computing in \(report.phase) for " + String(format: "%.0f s", report.seconds)
                + ", after collective #\(report.sequence)"
        }
        if silentFor[rank] > silentAfter {
            line += String(format: "; silent for %.0f s (stopped, swapping, or its network is down)", silentFor[rank])
        }
        lines.append(line)
    }
    if missing.count + silentArrivals.count > 8 {
        lines.append("  … and \(missing.count + silentArrivals.count - 8) more rank(s)")
    }
    return lines.joined(separator: "\n")
}

/// "0, 2-5, 7".
public func rankList(_ ranks: [Int]) -> String {
    var parts: [String] = []
    var index = 0
    while index < ranks.count {
        var end = index
        while end + 1 < ranks.count && ranks[end + 1] == ranks[end] + 1 { end += 1 }
        parts.append(end > index ? "\(ranks[index])-\(ranks[end])" : "\(ranks[index])")
        index = end + 1
    }
    return parts.joined(separator: ", ")
}

/// See Note [Collective watchdog].
final class CollectiveWatchdog: @unchecked Sendable {
    // @unchecked Sendable: after `start`, only the watchdog thread touches the MPI state and the
    // tables until `stop` has joined it; `stopRequested` is read and written under `lock`.
    private let tracker: CollectiveTracker
    private let rank: Int
    private let worldSize: Int
    private let timeout: Double
    private let interval: Double
    private let host = ProcessInfo.processInfo.hostName
    private var channel = MPI_Comm(bitPattern: 0)
    private let lock = NSLock()
    private var stopRequested = false
    private let finished = DispatchSemaphore(value: 0)
    /// Signalled by `stop`, so the thread's sleep ends at once and finalize does not wait.
    private let wake = DispatchSemaphore(value: 0)
    private static let tag: Int32 = 7301

    // Rank 0: the latest report of every rank, when it came, and how many came.
    private var latest: [RankReport?]
    private var receivedAt: [Double]
    private var received: [Int]
    // Other ranks: the message in flight (its buffer lives until it completes).
    private var pending = cmpi_request_null()
    private var sent = 0
    private let sendBuffer = UnsafeMutablePointer<UInt8>.allocate(capacity: RankReport.wireSize)
    private let receiveBuffer = UnsafeMutablePointer<UInt8>.allocate(capacity: RankReport.wireSize)

    /// Collective: every rank creates its watchdog at the same point (it duplicates the communicator).
    init(tracker: CollectiveTracker, rank: Int, worldSize: Int, timeout: Double) {
        self.tracker = tracker
        self.rank = rank
        self.worldSize = worldSize
        self.timeout = timeout
        interval = min(max(timeout / 10, 0.2), 2)
        latest = Array(repeating: nil, count: worldSize)
        receivedAt = Array(repeating: monotonicSeconds(), count: worldSize)
        received = Array(repeating: 0, count: worldSize)
        MPI_Comm_dup(cmpi_comm_world(), &channel)
        Thread.detachNewThread { [self] in
            while !isStopRequested {
                _ = wake.wait(timeout: .now() + interval)
                if isStopRequested { break }
                if rank == 0 { inspect() } else { sendReport(); giveUpIfRootIsSilent() }
            }
            finished.signal()
        }
    }

    deinit {
        sendBuffer.deallocate()
        receiveBuffer.deallocate()
    }

    private var isStopRequested: Bool { lock.lock(); defer { lock.unlock() }; return stopRequested }

    private func sendReport() {
        if pending != cmpi_request_null() {
            var done: Int32 = 0
            MPI_Test(&pending, &done, cmpi_status_ignore())
            if done == 0 { return }  // rank 0 has not taken the last one yet
        }
        let bytes = tracker.report(host: host).encoded()
        bytes.withUnsafeBufferPointer { sendBuffer.update(from: $0.baseAddress!, count: RankReport.wireSize) }
        MPI_Isend(sendBuffer, Int32(RankReport.wireSize), cmpi_byte(), 0, CollectiveWatchdog.tag, channel, &pending)
        sent += 1
    }

    private func receiveReports() {
        while true {
            var flag: Int32 = 0
            var status = MPI_Status()
            MPI_Iprobe(cmpi_any_source(), CollectiveWatchdog.tag, channel, &flag, &status)
            guard flag != 0 else { return }
            receiveOne(from: status.MPI_SOURCE)
        }
    }

    private func receiveOne(from source: Int32) {
        MPI_Recv(receiveBuffer, Int32(RankReport.wireSize), cmpi_byte(), source, CollectiveWatchdog.tag, channel,
                 cmpi_status_ignore())
        let r = Int(source)
        received[r] += 1
        receivedAt[r] = monotonicSeconds()
        latest[r] = RankReport(decoding: UnsafeBufferPointer(start: receiveBuffer, count: RankReport.wireSize))
    }

    /// Rank 0: gathers what came in and aborts the job on a stall.
    private func inspect() {
        receiveReports()
        let now = monotonicSeconds()
        latest[0] = tracker.report(host: host)
        receivedAt[0] = now
        // A report is up to `interval` old: count the time since it came as waiting too.
        var current = latest
        for r in 0..<worldSize where current[r]?.waiting == true { current[r]!.seconds += now - receivedAt[r] }
        let silence = receivedAt.map { now - $0 }
        guard let report = stallReport(reports: current, silentFor: silence, timeout: timeout,
                                       silentAfter: 3 * interval + 1) else { return }
        abortJob("error: " + report)
    }

    /// Other ranks: rank 0 aborts a stall within about one interval of the timeout; if the
    /// job still runs well after that, rank 0's watchdog cannot act, and this rank ends it.
    private func giveUpIfRootIsSilent() {
        let mine = tracker.report(host: host)
        let grace = max(10, timeout / 2)
        guard mine.waiting, mine.seconds > timeout + grace else { return }
        abortJob("error: rank \(rank) on \(host): collective #\(mine.sequence) (\(mine.collective), \(mine.phase)) has waited "
                 + String(format: "%.0f s", mine.seconds) + " and rank 0 did not end the stall; aborting the job "
                 + "(--collective-timeout \(formatSeconds(timeout)))")
    }

    private func abortJob(_ message: String) -> Never {
        FileHandle.standardError.write(Data((message + "\n").utf8))
        MPI_Abort(cmpi_comm_world(), 1)
        exit(1)
    }

    /// Collective (from `finalize`): joins the thread, then settles every report still in
    /// flight so MPI_Finalize finds no unmatched message.
    func stop() {
        lock.lock(); stopRequested = true; lock.unlock()
        wake.signal()
        finished.wait()
        var mine = Int64(sent)
        var counts = [Int64](repeating: 0, count: worldSize)
        MPI_Gather(&mine, 1, cmpi_int64(), &counts, 1, cmpi_int64(), 0, channel)
        if rank == 0 {
            for r in 1..<worldSize { while received[r] < Int(counts[r]) { receiveOne(from: Int32(r)) } }
        } else if pending != cmpi_request_null() {
            MPI_Wait(&pending, cmpi_status_ignore())
        }
        MPI_Comm_free(&channel)
    }
}

func formatSeconds(_ seconds: Double) -> String {
    seconds == seconds.rounded() ? String(Int(seconds)) : String(seconds)
}
