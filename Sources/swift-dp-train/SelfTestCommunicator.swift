import ArgumentParser
import DataParallel
import Foundation

/// Hidden: exercises the MPI collectives in a real multi-process job (used by the tests).
struct SelfTestCommunicatorCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "selftest-comm", abstract: "Check the MPI collectives (tests).", shouldDisplay: false)

    @Option(help: "Make this rank fail, to check that the whole job ends instead of hanging.")
    var abortOnRank: Int?

    func run() throws {
        let comm: any Communicator = MPICommunicator.isLaunchedByMPI ? MPICommunicator() : SingleProcessCommunicator()
        if let abortOnRank, abortOnRank == comm.rank {
            failJob("deliberate failure on rank \(comm.rank) (--abort-on-rank)", communicator: comm)
        }
        // The other ranks block here until the failing rank's abort ends the job.
        let failures = communicatorSelfTest(comm)
        print(failures.isEmpty ? "rank \(comm.rank)/\(comm.worldSize): ok" : "rank \(comm.rank): " + failures.joined(separator: "; "))
        comm.finalize()
        if !failures.isEmpty { throw ExitCode(1) }
    }
}
