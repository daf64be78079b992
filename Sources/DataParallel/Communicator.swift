import Foundation

/// Collectives the trainer needs. Every rank must issue them in the same order (MPI requires
/// it). Implementations: `MPICommunicator` under mpirun, `SingleProcessCommunicator` otherwise.
public protocol Communicator: AnyObject {
    var rank: Int { get }
    var worldSize: Int { get }
    /// Rank among the processes on this host, and how many there are.
    var localRank: Int { get }
    var localSize: Int { get }
    func allReduceSum(_ buffer: UnsafeMutablePointer<Float>, count: Int)
    /// The same sum, with the values on the wire as 16-bit floats (`--grad-compression`).
    func allReduceSum(_ buffer: UnsafeMutablePointer<Float>, count: Int, compression: GradientCompression)
    func allReduceSum(_ values: inout [Double])
    /// In place, allocating nothing (synchronised BatchNorm calls it twice per layer and step).
    func allReduceSum(_ buffer: UnsafeMutablePointer<Double>, count: Int)
    /// Starts the same sum without waiting for it (MPI_Iallreduce): `buffer` must not be
    /// touched until `waitStarted` (or a `testStarted` that returned true). Every rank starts
    /// its sums in the same order, as for blocking collectives.
    func startAllReduceSum(_ buffer: UnsafeMutablePointer<Float>, count: Int, compression: GradientCompression)
    /// Lets the started sums progress (Open MPI moves non-blocking collectives on only inside
    /// MPI calls); true when all of them have completed.
    @discardableResult func testStarted() -> Bool
    /// Waits for every started sum; their results are then in their buffers.
    func waitStarted()
    func broadcast(_ buffer: UnsafeMutablePointer<Float>, count: Int, root: Int)
    func broadcast(_ buffer: UnsafeMutablePointer<Int64>, count: Int, root: Int)
    /// Broadcasts a byte array of any length (the length travels first).
    func broadcast(bytes: inout [UInt8], root: Int)
    func barrier()
    /// What this rank is doing, carried by its collectives into a stall report
    /// (Note [Collective watchdog]); a no-op without a watchdog.
    func setPhase(_ phase: CollectivePhase)
    func setBucket(_ bucket: Int, of buckets: Int)
    /// Starts the stall watchdog (collective: every rank calls it at the same point). Returns
    /// why it could not start, if it could not.
    func startWatchdog(timeout: Double) -> String?
    /// Ends the whole job: no rank is left waiting for this one.
    func abort(_ message: String, code: Int32) -> Never
    func finalize()
}

/// Communicators without a watchdog (one process, test doubles) ignore phases.
extension Communicator {
    public func setPhase(_ phase: CollectivePhase) {}
    public func setBucket(_ bucket: Int, of buckets: Int) {}
    public func startWatchdog(timeout: Double) -> String? { nil }
    /// Without a wire there is nothing to compress.
    public func allReduceSum(_ buffer: UnsafeMutablePointer<Float>, count: Int, compression: GradientCompression) {
        allReduceSum(buffer, count: count)
    }
    /// Without a non-blocking transport a started sum is simply done at once.
    public func startAllReduceSum(_ buffer: UnsafeMutablePointer<Float>, count: Int, compression: GradientCompression) {
        allReduceSum(buffer, count: count, compression: compression)
    }
    @discardableResult public func testStarted() -> Bool { true }
    public func waitStarted() {}
    public func allReduceSum(_ buffer: UnsafeMutablePointer<Double>, count: Int) {
        var values = Array(UnsafeBufferPointer(start: buffer, count: count))
        allReduceSum(&values)
        buffer.update(from: values, count: count)
    }
}

/// World of one: every collective is the identity.
public final class SingleProcessCommunicator: Communicator {
    public init() {}
    public var rank: Int { 0 }
    public var worldSize: Int { 1 }
    public var localRank: Int { 0 }
    public var localSize: Int { 1 }
    public func allReduceSum(_ buffer: UnsafeMutablePointer<Float>, count: Int) {}
    public func allReduceSum(_ values: inout [Double]) {}
    public func broadcast(_ buffer: UnsafeMutablePointer<Float>, count: Int, root: Int) {}
    public func broadcast(_ buffer: UnsafeMutablePointer<Int64>, count: Int, root: Int) {}
    public func broadcast(bytes: inout [UInt8], root: Int) {}
    public func barrier() {}
    public func abort(_ message: String, code: Int32) -> Never {
        FileHandle.standardError.write(Data((message + "\n").utf8))
        exit(code)
    }
    public func finalize() {}
}

/// Prints one `error:` line and ends the job on every rank. When the same error strikes all
/// ranks (a bad --data path), only rank 0 prints it: the others give rank 0 a moment to
/// abort the job first, so the user sees the message once.
public func failJob(_ message: String, communicator comm: any Communicator) -> Never {
    let prefix = comm.worldSize > 1 ? "error: rank \(comm.rank): " : "error: "
    if comm.rank != 0 && comm.worldSize > 1 { Thread.sleep(forTimeInterval: 2) }
    comm.abort(prefix + message, code: 1)
}

/// Collective: every rank says whether its set-up failed. If any did, the lowest failing rank
/// prints its one-line error and every rank learns it, so the job can end cleanly (all ranks
/// exit non-zero without MPI_Abort's banner) instead of leaving peers in a later collective.
public func reportSetUpFailure(_ failure: String?, communicator comm: any Communicator) -> Bool {
    var flags = [Double](repeating: 0, count: comm.worldSize)
    if failure != nil { flags[comm.rank] = 1 }
    comm.allReduceSum(&flags)
    guard let first = flags.firstIndex(where: { $0 > 0 }) else { return false }
    if comm.rank == first, let failure {
        // On a cluster the rank and its host say where to look (a path missing on one node).
        let failing = flags.filter { $0 > 0 }.count
        let place = comm.worldSize > 1
            ? "rank \(first) on \(ProcessInfo.processInfo.hostName)"
              + (failing > 1 ? " (and \(failing - 1) other rank(s))" : "") + ": "
            : ""
        FileHandle.standardError.write(Data(("error: " + place + failure + "\n").utf8))
    }
    return true
}
