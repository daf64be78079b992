import Foundation
import NN
import TestSupport
import XCTest

/// Multi-host runs on the virtual cluster (cluster/README.md, "Virtual cluster"): two network
/// namespaces joined by a bridge, mpirun launching into them through cluster/netns-agent, and
/// the ranks talking over real TCP between the namespaces.
///
/// The tests make their own cluster under another prefix and subnet (`sdpttest`, 10.213.78.0/24)
/// than the interactive default (`sdpt`, 10.213.77.0/24), so a cluster a user has up is left
/// alone, and hold a lock file for the whole test so two test runs on one machine take turns.
/// They skip where namespaces cannot be made (not root, no `ip`, no permission: most
/// unprivileged containers) and always take the cluster down again in tearDown.
final class VirtualClusterTests: XCTestCase {
    static let prefix = "sdpttest"
    static let subnet = "10.213.78"

    var scratch: URL?
    var lockFD: Int32 = -1
    var clusterUp = false
    var ipCommand = "ip"

    var clusterScript: String { packageRoot.appendingPathComponent("cluster/vcluster").path }
    var clusterMPIRun: String { packageRoot.appendingPathComponent("cluster/mpirun").path }
    /// The environment every cluster script and mpirun gets: the test's prefix and subnet, and
    /// Open MPI's permission to run as root.
    var clusterEnvironment: [String: String] {
        mpirunEnvironment.merging(["SDPT_VCLUSTER_PREFIX": Self.prefix, "SDPT_VCLUSTER_SUBNET": Self.subnet]) { _, new in new }
    }

    override func setUpWithError() throws {
        guard swiftDPTrainBinary() != nil else {
            throw XCTSkip("release binary not built: run scripts/test.sh (or swift build -c release) first")
        }
        guard findExecutable("mpirun") != nil else { throw XCTSkip("mpirun not installed") }
        guard getuid() == 0 else { throw XCTSkip("the virtual cluster needs root (network namespaces); not root here") }
        guard let ip = findExecutable("ip") ?? ["/usr/sbin/ip", "/sbin/ip"].first(where: FileManager.default.isExecutableFile) else {
            throw XCTSkip("no `ip` command (iproute2) to make network namespaces")
        }
        guard findExecutable("unshare") != nil else { throw XCTSkip("no `unshare` (util-linux)") }

        // One test run at a time per machine: the cluster's names and addresses are fixed.
        ipCommand = ip
        try takeLock("/run/lock/\(Self.prefix)-vcluster-test.lock")
        do {
            try bringUpCluster(ip: ip)
        } catch {
            // Whatever stopped set-up (a skip included): leave nothing behind, hold no lock.
            try? tearDownWithError()
            throw error
        }
    }

    func bringUpCluster(ip: String) throws {
        // Can this machine make a namespace at all? If not, skip with what `ip` said.
        let probeName = "\(Self.prefix)-probe"
        _ = try? runProcess(ip, ["netns", "del", probeName], timeout: 10)
        let probe = try runProcess(ip, ["netns", "add", probeName], timeout: 10)
        guard probe.status == 0 else {
            let reason = probe.stderr.split(separator: "\n").first.map(String.init) ?? "exit \(probe.status)"
            throw XCTSkip("cannot make network namespaces here (`ip netns add`: \(reason))")
        }
        _ = try runProcess(ip, ["netns", "del", probeName], timeout: 10)

        // A cluster left by a test run that was killed before its tearDown: we hold the lock,
        // so nobody else is using it.
        _ = try cluster("down")
        clusterUp = true  // from here on tearDown takes down whatever `up` made, even half of it
        // Shaped at 10 Gbit/s: the tbf path is exercised, and the test's ~50 MB/s of
        // gradients are far below the limit, so it is not slowed down.
        let up = try cluster("up", "2", "--rate", "10gbit")
        XCTAssertEqual(up.status, 0, "cluster/up failed:\n\(up.output)")
        guard up.status == 0 else { throw SupportError("cluster/up 2 failed") }
        scratch = try makeTemporaryDirectory("sdt-vcluster")
    }

    override func tearDownWithError() throws {
        if clusterUp {
            let down = try cluster("down")
            XCTAssertEqual(down.status, 0, "cluster/down failed:\n\(down.output)")
            clusterUp = false
        }
        if let scratch { try? FileManager.default.removeItem(at: scratch) }
        if lockFD >= 0 { close(lockFD); lockFD = -1 }
    }

    /// Two ranks on two namespace hosts, talking over TCP, end with exactly the weights of the
    /// same run launched normally on one host (2 ranks, shared memory): the transport and the
    /// launch path change nothing. And the gradients really crossed the emulated link.
    func testTrainingAcrossNamespacesMatchesOneHost() throws {
        let scratch = try XCTUnwrap(scratch)
        let data = scratch.appendingPathComponent("data")
        try makeTinyImageNetFixture(at: data, classes: 4, trainPerClass: 32, valPerClass: 4, size: 32)
        let steps = 2 * 3
        let common = ["train", "--data", data.path, "--model", "resnet18", "--image-size", "32", "--batch-size", "8",
                      "--epochs", "2", "--max-steps-per-epoch", "3", "--lr", "0.05", "--seed", "3",
                      "--threads", "1", "--workers", "1", "--quiet", "--no-tensorboard"]
        let onCluster = scratch.appendingPathComponent("cluster"), local = scratch.appendingPathComponent("local")

        let sentBefore = try interfaceCounter(host: 2, "tx_bytes"), receivedBefore = try interfaceCounter(host: 2, "rx_bytes")
        let started = Date()
        let run = try runProcess(clusterMPIRun, ["-np", "2", swiftDPTrainBinary()!] + common + ["--output", onCluster.path],
                                 environment: clusterEnvironment, timeout: 180)
        let clusterSeconds = Date().timeIntervalSince(started)
        XCTAssertFalse(run.timedOut, "cluster/mpirun timed out:\n\(run.output)")
        XCTAssertEqual(run.status, 0, "training on the virtual cluster failed:\n\(run.output)")
        XCTAssertTrue(run.stdout.contains("replicas: all 2 ranks hold identical weights"), run.output)
        let sent = try interfaceCounter(host: 2, "tx_bytes") - sentBefore
        let received = try interfaceCounter(host: 2, "rx_bytes") - receivedBefore

        let reference = try runMPI(ranks: 2, binary: swiftDPTrainBinary()!, common + ["--output", local.path], timeout: 180)
        XCTAssertEqual(reference.status, 0, "the one-host reference run failed:\n\(reference.output)")

        let a = try SafeTensorsFile.read(path: onCluster.appendingPathComponent("last.safetensors").path)
        let b = try SafeTensorsFile.read(path: local.appendingPathComponent("last.safetensors").path)
        XCTAssertEqual(Set(a.tensors.keys), Set(b.tensors.keys))
        var differing: [String] = []
        for (name, record) in a.tensors where record != b.tensors[name] { differing.append(name) }
        XCTAssertTrue(differing.isEmpty, "tensors differ between the 2-host and the 1-host run: \(differing.sorted().prefix(10))")
        XCTAssertTrue(a.tensors.keys.contains("optimizer.momentum_buffer.fc.weight"))

        // Every step all-reduces the gradient of every parameter (one momentum buffer each):
        // with two ranks each must send the other one full gradient of float32s per step,
        // whatever the algorithm (measured: 268.7 MB sent for 268.3 MB of gradients). Host 2's
        // eth0 must have carried at least half of that each way (room for a future compressed
        // all-reduce); through shared memory it would carry next to nothing.
        let parameters = a.tensors.filter { $0.key.hasPrefix("optimizer.momentum_buffer.") }.values.reduce(0) { $0 + $1.elementCount }
        let gradients = UInt64(steps * parameters * 4)
        XCTAssertGreaterThanOrEqual(sent, gradients / 2, "host 2 sent only \(sent) bytes over eth0")
        XCTAssertGreaterThanOrEqual(received, gradients / 2, "host 2 received only \(received) bytes over eth0")
        print(String(format: "virtual cluster run: %.1f s; host 2's eth0 sent %.1f MB and received %.1f MB (gradients: %d steps × %d parameters × 4 B = %.1f MB); %d tensors equal to the one-host run",
                     clusterSeconds, Double(sent) / 1e6, Double(received) / 1e6, steps, parameters, Double(gradients) / 1e6, a.tensors.count))
    }

    /// Every virtual host sees all of this machine's cores, and Open MPI binds each host's first
    /// rank to core 0; cluster/mpirun turns binding off, so ranks on different hosts may run on
    /// every core (with the binding, two hosts' ranks shared one core: a step at half speed).
    func testRanksOnDifferentHostsAreNotPinnedToOneCore() throws {
        func allowedCores(_ status: String) -> [String] {
            status.split(separator: "\n").filter { $0.hasPrefix("Cpus_allowed_list:") }
                .map { $0.dropFirst("Cpus_allowed_list:".count).trimmingCharacters(in: .whitespaces) }
        }
        let mine = try XCTUnwrap(allowedCores(try String(contentsOfFile: "/proc/self/status", encoding: .utf8)).first)
        let run = try runProcess(clusterMPIRun, ["-np", "2", "/bin/cat", "/proc/self/status"],
                                 environment: clusterEnvironment, timeout: 60)
        XCTAssertEqual(run.status, 0, "cluster/mpirun failed:\n\(run.output)")
        XCTAssertEqual(allowedCores(run.stdout), [mine, mine], "each rank's allowed cores:\n\(run.output)")
    }

    /// A rank on the second host killed with SIGKILL mid-epoch ends the whole job within 60 s,
    /// with a non-zero exit, mpirun naming the lost rank and its host, and no rank or daemon
    /// left on any host.
    func testKilledRankOnRemoteHostEndsTheJob() throws {
        let scratch = try XCTUnwrap(scratch)
        let data = scratch.appendingPathComponent("data"), run = scratch.appendingPathComponent("run")
        try makeTinyImageNetFixture(at: data, classes: 3, trainPerClass: 40, valPerClass: 2, size: 32)
        let (process, collected) = try startTraining(data: data, run: run)
        defer { stop(process) }
        // Training under way (a few step lines), then kill rank 1.
        guard waitForSteps(run: run, process: process, output: collected) else { return }
        let ranks = rankProcesses(marker: run.path)
        guard let victim = ranks[1] else { return XCTFail("no rank 1 among \(ranks):\n\(collected.text)") }
        // The ranks really are on different hosts: rank 0 in host 1's namespace, rank 1 in host 2's.
        XCTAssertEqual(try networkNamespace(of: ranks[0] ?? -1), try hostNamespace(1), "rank 0 is not on host 1")
        XCTAssertEqual(try networkNamespace(of: victim), try hostNamespace(2), "rank 1 is not on host 2")

        kill(victim, SIGKILL)
        let killedAt = Date()
        while process.isRunning && Date().timeIntervalSince(killedAt) < 60 { Thread.sleep(forTimeInterval: 0.1) }
        let seconds = Date().timeIntervalSince(killedAt)
        XCTAssertFalse(process.isRunning, "the job still runs 60 s after rank 1 was killed:\n\(collected.text)")
        process.waitUntilExit()
        XCTAssertNotEqual(process.terminationStatus, 0)
        // Give the daemon on host 2 a moment to notice mpirun is gone, then nothing may be left.
        var leftovers = jobProcesses(marker: run.path)
        let settle = Date()
        while !leftovers.isEmpty && Date().timeIntervalSince(settle) < 10 {
            Thread.sleep(forTimeInterval: 0.2)
            leftovers = jobProcesses(marker: run.path)
        }
        let text = collected.text
        XCTAssertTrue(text.contains("rank 1") && text.contains("signal 9") && text.contains("\(Self.prefix)-h2"),
                      "the lost rank and its host are not named:\n\(text)")
        XCTAssertTrue(leftovers.isEmpty, "left running after the job ended: \(leftovers)\n\(text)")
        print(String(format: "job ended %.1f s after rank 1 on %@-h2 was killed", seconds, Self.prefix))
    }

    /// Host 2's network link goes down mid-epoch: its rank falls silent, the stall watchdog
    /// names it and aborts the job, and — with tcp_retries2 = 5, as cluster/up sets it —
    /// mpirun gives up on the unreachable host's daemon and exits within 60 s; nothing is
    /// left on either host.
    func testLinkDownOnRemoteHostEndsTheJob() throws {
        let scratch = try XCTUnwrap(scratch)
        let data = scratch.appendingPathComponent("data"), run = scratch.appendingPathComponent("run")
        try makeTinyImageNetFixture(at: data, classes: 3, trainPerClass: 40, valPerClass: 2, size: 32)
        let (process, collected) = try startTraining(data: data, run: run, ["--collective-timeout", "5"])
        defer { stop(process) }
        guard waitForSteps(run: run, process: process, output: collected) else { return }

        let down = try runProcess(ipCommand, ["-n", "\(Self.prefix)-h2", "link", "set", "eth0", "down"], timeout: 10)
        XCTAssertEqual(down.status, 0, down.output)
        let downAt = Date()
        while process.isRunning && Date().timeIntervalSince(downAt) < 60 { Thread.sleep(forTimeInterval: 0.2) }
        let seconds = Date().timeIntervalSince(downAt)
        XCTAssertFalse(process.isRunning, "mpirun still runs 60 s after host 2's link went down:\n\(collected.text)")
        process.waitUntilExit()
        XCTAssertNotEqual(process.terminationStatus, 0)
        let text = collected.text
        XCTAssertTrue(text.contains("rank 1 on \(Self.prefix)-h2") && text.contains("silent"),
                      "the stall report does not name rank 1 on host 2 as silent:\n\(text)")
        // The cut-off host's daemon and rank notice on their own (the rank's watchdog gives up
        // after its grace period; the daemon loses mpirun).
        var leftovers = jobProcesses(marker: run.path)
        let settle = Date()
        while !leftovers.isEmpty && Date().timeIntervalSince(settle) < 45 {
            Thread.sleep(forTimeInterval: 0.5)
            leftovers = jobProcesses(marker: run.path)
        }
        XCTAssertTrue(leftovers.isEmpty, "left running after the job ended: \(leftovers)\n\(text)")
        print(String(format: "mpirun exited %.1f s after host 2's link went down; nothing left %.1f s after that",
                     seconds, Date().timeIntervalSince(settle)))
    }

    // MARK: helpers

    /// `train` on both hosts for up to 100 epochs (stopped by the test), one step line per step.
    func startTraining(data: URL, run: URL, _ extra: [String] = []) throws -> (Process, OutputCollector) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: clusterMPIRun)
        process.arguments = ["-np", "2", swiftDPTrainBinary()!, "train", "--data", data.path, "--image-size", "32",
                             "--batch-size", "4", "--workers", "1", "--threads", "1", "--epochs", "100", "--log-every", "1",
                             "--quiet", "--no-tensorboard", "--output", run.path] + extra
        process.environment = ProcessInfo.processInfo.environment.merging(clusterEnvironment) { _, new in new }
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        process.standardInput = FileHandle.nullDevice
        try process.run()
        return (process, OutputCollector(output.fileHandleForReading))
    }

    /// Waits until the run has logged a few steps; false (with a failure) if it never does.
    func waitForSteps(run: URL, process: Process, output: OutputCollector) -> Bool {
        let start = Date()
        while (try? metricsLines(run).count) ?? 0 < 3 {
            guard Date().timeIntervalSince(start) < 120, process.isRunning else {
                XCTFail("training never started:\n\(output.text)")
                return false
            }
            Thread.sleep(forTimeInterval: 0.2)
        }
        return true
    }

    func stop(_ process: Process) {
        if process.isRunning { process.terminate(); Thread.sleep(forTimeInterval: 3) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
    }

    func cluster(_ arguments: String...) throws -> ProcessOutcome {
        try runProcess(clusterScript, arguments, environment: clusterEnvironment, timeout: 60)
    }

    func takeLock(_ path: String) throws {
        try FileManager.default.createDirectory(atPath: "/run/lock", withIntermediateDirectories: true)
        lockFD = open(path, O_RDWR | O_CREAT, 0o644)
        guard lockFD >= 0 else { throw XCTSkip("cannot open \(path) (errno \(errno))") }
        let start = Date()
        while flock(lockFD, LOCK_EX | LOCK_NB) != 0 {
            guard Date().timeIntervalSince(start) < 300 else {
                throw SupportError("another virtual-cluster test run has held \(path) for 5 minutes")
            }
            Thread.sleep(forTimeInterval: 0.5)
        }
    }

    /// A statistics counter of host i's eth0, read inside its namespace.
    func interfaceCounter(host: Int, _ name: String) throws -> UInt64 {
        let ip = findExecutable("ip") ?? "/usr/sbin/ip"
        let out = try runProcess(ip, ["netns", "exec", "\(Self.prefix)-h\(host)", "cat", "/sys/class/net/eth0/statistics/\(name)"],
                                 timeout: 10)
        guard out.status == 0, let value = UInt64(out.stdout.trimmingCharacters(in: .whitespacesAndNewlines)) else {
            throw SupportError("cannot read \(name) of \(Self.prefix)-h\(host):eth0: \(out.output)")
        }
        return value
    }

    /// The identity (device and inode) of host i's network namespace, as `ip netns` keeps it.
    func hostNamespace(_ host: Int) throws -> String {
        try namespaceIdentity("/run/netns/\(Self.prefix)-h\(host)")
    }

    func networkNamespace(of pid: pid_t) throws -> String { try namespaceIdentity("/proc/\(pid)/ns/net") }

    func namespaceIdentity(_ path: String) throws -> String {
        var info = stat()
        guard stat(path, &info) == 0 else { throw SupportError("cannot stat \(path) (errno \(errno))") }
        return "\(info.st_dev):\(info.st_ino)"
    }

    /// PIDs of this job's ranks by MPI rank, found through their command lines and environments.
    func rankProcesses(marker: String) -> [Int: pid_t] {
        var ranks: [Int: pid_t] = [:]
        for (pid, cmdline) in livingProcesses() where cmdline.contains(marker) {
            guard let environ = try? Data(contentsOf: URL(fileURLWithPath: "/proc/\(pid)/environ")) else { continue }
            for variable in environ.split(separator: 0) {
                let text = String(decoding: variable, as: UTF8.self)
                if text.hasPrefix("OMPI_COMM_WORLD_RANK="), let rank = Int(text.dropFirst("OMPI_COMM_WORLD_RANK=".count)) {
                    ranks[rank] = pid
                }
            }
        }
        return ranks
    }

    /// What of this job still runs: its ranks (their command line names the run directory),
    /// and any Open MPI daemon or other process still inside one of the cluster's namespaces.
    func jobProcesses(marker: String) -> [String] {
        let hosts = Set((1...2).compactMap { try? hostNamespace($0) })
        return livingProcesses().compactMap { pid, cmdline in
            let inCluster = (try? networkNamespace(of: pid)).map(hosts.contains) ?? false
            guard cmdline.contains(marker) || inCluster else { return nil }
            return "\(pid): \(cmdline.prefix(120))"
        }
    }

    /// Every process that has not exited (zombies are left out: a daemon whose parent is PID 1
    /// stays a zombie until init reaps it, which is nothing the job controls).
    func livingProcesses() -> [(pid_t, String)] {
        var result: [(pid_t, String)] = []
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
            guard let pid = pid_t(entry), pid != getpid(),
                  let stat = try? String(contentsOfFile: "/proc/\(entry)/stat", encoding: .utf8),
                  let paren = stat.lastIndex(of: ")"),
                  stat[stat.index(paren, offsetBy: 2)] != "Z",
                  let cmdline = try? Data(contentsOf: URL(fileURLWithPath: "/proc/\(entry)/cmdline")) else { continue }
            result.append((pid, String(decoding: cmdline.map { $0 == 0 ? 32 : $0 }, as: UTF8.self)))
        }
        return result
    }
}
