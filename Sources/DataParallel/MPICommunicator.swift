import CHalfFloat
import CMPI
import Foundation

/// Open MPI behind the `Communicator` protocol. Every call's return code is checked: an MPI
/// failure becomes a message naming the call and `MPI_Error_string`, and the job is aborted.
public final class MPICommunicator: Communicator {
    public let rank: Int
    public let worldSize: Int
    public let localRank: Int
    public let localSize: Int
    private var finalized = false
    private let tracker = CollectiveTracker()
    private var watchdog: CollectiveWatchdog?
    /// The thread level MPI granted; the watchdog needs MPI_THREAD_MULTIPLE.
    private let threadLevel: Int32

    /// True when this process was started by mpirun (Open MPI or PMIx sets these).
    public static var isLaunchedByMPI: Bool {
        let env = ProcessInfo.processInfo.environment
        return env["OMPI_COMM_WORLD_SIZE"] != nil || env["PMIX_RANK"] != nil || env["PMI_RANK"] != nil
    }

    /// `threadMultiple`: ask for MPI_THREAD_MULTIPLE, so the stall watchdog (`startWatchdog`)
    /// and the overlapped all-reduce's communication thread can call MPI beside the main
    /// thread; otherwise FUNNELED (only the main thread calls MPI; the loader threads never
    /// do), which costs MPI nothing in locking.
    public init(threadMultiple: Bool = false) {
        var provided: Int32 = 0
        let rc = MPI_Init_thread(nil, nil, threadMultiple ? cmpi_thread_multiple() : cmpi_thread_funneled(), &provided)
        guard rc == cmpi_success() else {
            FileHandle.standardError.write(Data("error: MPI_Init_thread failed (code \(rc))\n".utf8))
            exit(1)
        }
        MPI_Comm_set_errhandler(cmpi_comm_world(), cmpi_errors_return())
        var r: Int32 = 0, s: Int32 = 0
        MPI_Comm_rank(cmpi_comm_world(), &r)
        MPI_Comm_size(cmpi_comm_world(), &s)
        rank = Int(r)
        worldSize = Int(s)
        threadLevel = provided
        var local = MPI_Comm(bitPattern: 0)
        MPI_Comm_split_type(cmpi_comm_world(), cmpi_comm_type_shared(), r, cmpi_info_null(), &local)
        var lr: Int32 = 0, ls: Int32 = 1
        MPI_Comm_rank(local, &lr)
        MPI_Comm_size(local, &ls)
        MPI_Comm_free(&local)
        localRank = Int(lr)
        localSize = Int(ls)
    }

    private func check(_ rc: Int32, _ call: String) {
        guard rc != cmpi_success() else { return }
        var buffer = [CChar](repeating: 0, count: Int(cmpi_max_error_string()) + 1)
        var length: Int32 = 0
        MPI_Error_string(rc, &buffer, &length)
        let text = String(decoding: buffer.prefix(Int(length)).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        abort("error: rank \(rank): \(call) failed: \(text)", code: 1)
    }

    /// MPI counts are Int32: larger buffers go in pieces.
    private func chunks(_ count: Int, _ body: (Int, Int32) -> Void) {
        var start = 0
        let limit = 1 << 30
        while start < count {
            let n = min(limit, count - start)
            body(start, Int32(n))
            start += n
        }
    }

    /// Whether MPI granted MPI_THREAD_MULTIPLE (threads other than the main one may call MPI).
    public var allowsConcurrentThreads: Bool { threadLevel >= cmpi_thread_multiple() }

    public func setPhase(_ phase: CollectivePhase) { tracker.phase = phase }
    public func setBucket(_ bucket: Int, of buckets: Int) { tracker.setBucket(bucket, of: buckets) }

    public func startWatchdog(timeout: Double) -> String? {
        guard worldSize > 1, timeout > 0, watchdog == nil else { return nil }
        guard threadLevel >= cmpi_thread_multiple() else {
            return "this Open MPI does not provide MPI_THREAD_MULTIPLE: no stall watchdog (--collective-timeout)"
        }
        watchdog = CollectiveWatchdog(tracker: tracker, rank: rank, worldSize: worldSize, timeout: timeout)
        return nil
    }

    public func allReduceSum(_ buffer: UnsafeMutablePointer<Float>, count: Int) {
        tracker.enter("all-reduce (float)", count: count)
        defer { tracker.leave() }
        chunks(count) { start, n in
            check(MPI_Allreduce(cmpi_in_place(), buffer + start, n, cmpi_float(), cmpi_op_sum(), cmpi_comm_world()),
                  "MPI_Allreduce(float, \(n))")
        }
    }

    // --grad-compression: a 2-byte MPI type, the sums over it, and the wire buffer (grown
    // to the largest bucket once, then reused every step).
    private var halfType: MPI_Datatype?
    private var halfSums: [GradientCompression: MPI_Op] = [:]
    private var wire: UnsafeMutablePointer<UInt16>?
    private var wireCapacity = 0

    public func allReduceSum(_ buffer: UnsafeMutablePointer<Float>, count: Int, compression: GradientCompression) {
        guard compression != .none else { return allReduceSum(buffer, count: count) }
        tracker.enter(compression == .fp16 ? "all-reduce (fp16)" : "all-reduce (bf16)", count: count)
        defer { tracker.leave() }
        if wireCapacity < count {
            wire?.deallocate()
            wire = .allocate(capacity: count)
            wireCapacity = count
        }
        let type = halfDatatype()
        let op = halfSum(compression)
        let packed = wire!
        compression.compress(buffer, into: packed, count: count)
        chunks(count) { start, n in
            check(MPI_Allreduce(cmpi_in_place(), packed + start, n, type, op, cmpi_comm_world()),
                  "MPI_Allreduce(\(compression.rawValue), \(n))")
        }
        compression.decompress(packed, into: buffer, count: count)
    }

    // Started (non-blocking) sums: their requests, and for compressed ones the wire slot each
    // travels in until it completes. Slots and arrays are kept across steps: no allocation
    // once the largest step has run.
    private struct StartedSum {
        var buffer: UnsafeMutablePointer<Float>
        var count: Int
        var compression: GradientCompression
        var slot: Int
    }
    private var started: [StartedSum] = []
    private var requests: [MPI_Request?] = []
    private var wireSlots: [(pointer: UnsafeMutablePointer<UInt16>, capacity: Int)] = []
    private var startedFloats = 0

    public func startAllReduceSum(_ buffer: UnsafeMutablePointer<Float>, count: Int, compression: GradientCompression) {
        var sum = StartedSum(buffer: buffer, count: count, compression: compression, slot: -1)
        // Requests are whole buffers: MPI_Iallreduce takes an Int32 count.
        precondition(count <= Int(Int32.max), "startAllReduceSum: \(count) values in one request")
        var request: MPI_Request? = cmpi_request_null()
        if compression == .none {
            check(MPI_Iallreduce(cmpi_in_place(), buffer, Int32(count), cmpi_float(), cmpi_op_sum(), cmpi_comm_world(),
                                 &request), "MPI_Iallreduce(float, \(count))")
        } else {
            sum.slot = started.count
            if wireSlots.count <= sum.slot {
                wireSlots.append((.allocate(capacity: count), count))
            } else if wireSlots[sum.slot].capacity < count {
                wireSlots[sum.slot].pointer.deallocate()
                wireSlots[sum.slot] = (.allocate(capacity: count), count)
            }
            let packed = wireSlots[sum.slot].pointer
            compression.compress(buffer, into: packed, count: count)
            check(MPI_Iallreduce(cmpi_in_place(), packed, Int32(count), halfDatatype(), halfSum(compression),
                                 cmpi_comm_world(), &request), "MPI_Iallreduce(\(compression.rawValue), \(count))")
        }
        started.append(sum)
        requests.append(request)
        startedFloats += count
    }

    @discardableResult public func testStarted() -> Bool {
        guard !requests.isEmpty else { return true }
        var done: Int32 = 0
        let n = Int32(requests.count)
        requests.withUnsafeMutableBufferPointer { r in
            check(MPI_Testall(n, r.baseAddress, &done, nil), "MPI_Testall")
        }
        if done != 0 { completeStarted() }
        return done != 0
    }

    public func waitStarted() {
        guard !requests.isEmpty else { return }
        // Waiting here is the collective a stall report should name.
        tracker.enter("all-reduce (non-blocking buckets)", count: startedFloats)
        defer { tracker.leave() }
        let n = Int32(requests.count)
        requests.withUnsafeMutableBufferPointer { r in
            check(MPI_Waitall(n, r.baseAddress, nil), "MPI_Waitall")
        }
        completeStarted()
    }

    private func completeStarted() {
        for sum in started where sum.compression != .none {
            sum.compression.decompress(wireSlots[sum.slot].pointer, into: sum.buffer, count: sum.count)
        }
        started.removeAll(keepingCapacity: true)
        requests.removeAll(keepingCapacity: true)
        startedFloats = 0
    }

    private func halfDatatype() -> MPI_Datatype {
        if let halfType { return halfType }
        var type: MPI_Datatype?
        check(MPI_Type_contiguous(2, cmpi_byte(), &type), "MPI_Type_contiguous")
        check(MPI_Type_commit(&type), "MPI_Type_commit")
        halfType = type
        return type!
    }

    private func halfSum(_ compression: GradientCompression) -> MPI_Op {
        if let op = halfSums[compression] { return op }
        // MPI calls these on pieces of the buffers as its reduction algorithm goes; commutative.
        let function: @convention(c) (UnsafeMutableRawPointer?, UnsafeMutableRawPointer?, UnsafeMutablePointer<Int32>?,
                                      UnsafeMutablePointer<MPI_Datatype?>?) -> Void
        switch compression {
        case .bf16:
            function = { input, inout_, length, _ in
                hf_bf16_add(input!.assumingMemoryBound(to: UInt16.self), inout_!.assumingMemoryBound(to: UInt16.self),
                            Int(length!.pointee))
            }
        default:
            function = { input, inout_, length, _ in
                hf_f16_add(input!.assumingMemoryBound(to: UInt16.self), inout_!.assumingMemoryBound(to: UInt16.self),
                           Int(length!.pointee))
            }
        }
        var op: MPI_Op?
        check(MPI_Op_create(function, 1, &op), "MPI_Op_create")
        halfSums[compression] = op!
        return op!
    }

    public func allReduceSum(_ buffer: UnsafeMutablePointer<Double>, count: Int) {
        tracker.enter("all-reduce (double)", count: count)
        defer { tracker.leave() }
        check(MPI_Allreduce(cmpi_in_place(), buffer, Int32(count), cmpi_double(), cmpi_op_sum(), cmpi_comm_world()),
              "MPI_Allreduce(double, \(count))")
    }

    public func allReduceSum(_ values: inout [Double]) {
        let n = Int32(values.count)
        tracker.enter("all-reduce (double)", count: values.count)
        defer { tracker.leave() }
        values.withUnsafeMutableBufferPointer { p in
            check(MPI_Allreduce(cmpi_in_place(), p.baseAddress, n, cmpi_double(), cmpi_op_sum(), cmpi_comm_world()),
                  "MPI_Allreduce(double, \(n))")
        }
    }

    public func broadcast(_ buffer: UnsafeMutablePointer<Float>, count: Int, root: Int) {
        tracker.enter("broadcast (float)", count: count)
        defer { tracker.leave() }
        chunks(count) { start, n in
            check(MPI_Bcast(buffer + start, n, cmpi_float(), Int32(root), cmpi_comm_world()), "MPI_Bcast(float, \(n))")
        }
    }

    public func broadcast(_ buffer: UnsafeMutablePointer<Int64>, count: Int, root: Int) {
        tracker.enter("broadcast (int64)", count: count)
        defer { tracker.leave() }
        chunks(count) { start, n in
            check(MPI_Bcast(buffer + start, n, cmpi_int64(), Int32(root), cmpi_comm_world()), "MPI_Bcast(int64, \(n))")
        }
    }

    public func broadcast(bytes: inout [UInt8], root: Int) {
        var length = Int64(bytes.count)
        tracker.enter("broadcast (bytes)", count: bytes.count)
        defer { tracker.leave() }
        check(MPI_Bcast(&length, 1, cmpi_int64(), Int32(root), cmpi_comm_world()), "MPI_Bcast(length)")
        if rank != root { bytes = [UInt8](repeating: 0, count: Int(length)) }
        guard length > 0 else { return }
        bytes.withUnsafeMutableBytes { raw in
            chunks(Int(length)) { start, n in
                check(MPI_Bcast(raw.baseAddress! + start, n, cmpi_uint8(), Int32(root), cmpi_comm_world()),
                      "MPI_Bcast(bytes, \(n))")
            }
        }
    }

    public func barrier() {
        tracker.enter("barrier", count: 0)
        defer { tracker.leave() }
        check(MPI_Barrier(cmpi_comm_world()), "MPI_Barrier")
    }

    public func abort(_ message: String, code: Int32) -> Never {
        FileHandle.standardError.write(Data((message + "\n").utf8))
        // MPI_Abort makes mpirun terminate every rank of the job.
        MPI_Abort(cmpi_comm_world(), code)
        exit(code)
    }

    public func finalize() {
        guard !finalized else { return }
        finalized = true
        tracker.phase = .finished
        watchdog?.stop()
        watchdog = nil
        for (_, op) in halfSums { var op: MPI_Op? = op; MPI_Op_free(&op) }
        if halfType != nil { MPI_Type_free(&halfType) }
        wire?.deallocate()
        for slot in wireSlots { slot.pointer.deallocate() }
        MPI_Finalize()
    }
}
