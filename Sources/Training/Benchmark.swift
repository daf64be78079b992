import DataParallel
import Foundation
import Kernels
import NN

/// Options of `swift-dp-train bench`: one rank's throughput on synthetic in-memory batches.
public struct BenchmarkOptions: Sendable {
    public enum Mode: String, Sendable, CaseIterable { case train, eval }
    public var model = "resnet18"
    public var stem = ResNetStem.imagenet
    public var imageSize = 64
    public var batchSize = 64
    public var numClasses = 1000
    public var steps = 20
    public var warmupSteps = 3
    public var threads = 1
    public var mode = Mode.train
    /// Under mpirun: all-reduce the gradients each step (as training does), or skip it to
    /// time the same compute without communication (the overlap measurement).
    public var communicate = true
    public var compression = GradientCompression.none
    /// How the all-reduce overlaps backward (Note [Overlapped all-reduce]).
    public var overlap = OverlapMode.auto
    public var bucketMB: Double = 25
    public var convAlgorithm = ConvolutionAlgorithm.automatic
    /// Time every layer category and kernel (Note [Per-layer profile]) and measure MFU.
    public var profile = false
    /// Eval runs each convolution + BatchNorm as one folded convolution (Note [BatchNorm
    /// folding]); false (`--no-fold-bn`) times the unfolded BatchNorm passes instead.
    public var foldBatchNorm = true
    public init() {}
}

public struct BenchmarkResult: Codable, Sendable {
    public var model: String
    public var stem: String
    public var mode: String
    /// Eval only: whether BatchNorm was folded into the convolutions (`--no-fold-bn`: false).
    public var foldedBatchNorm: Bool?
    public var imageSize: Int
    public var batchSize: Int
    public var threads: Int
    public var steps: Int
    public var imagesPerSecond: Double
    public var msPerStep: Double
    public var msPerStepMin: Double
    public var peakRSSMB: Double
    public var parameters: Int
    /// Ranks, whether gradients were all-reduced, and the median all-reduce time per step.
    public var ranks = 1
    public var communicated = false
    public var allReduceMs = 0.0
    /// The step split (medians over steps, means over ranks): forward with the loss, backward
    /// (with the overlapped all-reduce's launches), the wait for the all-reduce after
    /// backward (`exposedCommMs`; all of it with `--overlap off`), and the optimizer.
    /// `computeMs` = forward + backward; `dataWaitMs` is 0 on synthetic batches.
    public var overlap = "off"
    public var forwardMs = 0.0
    public var backwardMs = 0.0
    public var computeMs = 0.0
    public var exposedCommMs = 0.0
    public var optimizerMs = 0.0
    public var dataWaitMs = 0.0
    /// `--profile` only: forward GFLOPs per image (convolutions and Linear), the SGEMM rate
    /// measured here with the same threads, model-FLOP utilisation (3 × forward FLOPs ×
    /// images/s ÷ SGEMM rate; one rank), and the per-category rows.
    public var forwardGFlopsPerImage: Double?
    public var sgemmGFlops: Double?
    public var mfu: Double?
    /// `--profile` only: the FLOPs the GEMMs actually did per second of step ÷ the SGEMM rate.
    /// Below `mfu` where a fast algorithm (Winograd) does fewer FLOPs than the direct
    /// convolution the model FLOPs count; above it never.
    public var gemmUtilisation: Double?
    public var profile: [ProfileRow]?
    /// `--profile`: the mean step, which the profile's rows add up to (ms_per_step is a median).
    public var meanStepMs: Double?

    public struct ProfileRow: Codable, Sendable {
        public var name: String
        public var kernel: Bool
        public var forwardMs: Double
        public var backwardMs: Double
        public var optimizerMs: Double
        public var callsPerStep: Double
        /// Achieved GFLOP/s over forward + backward (0 where no FLOPs are counted).
        public var gflops: Double
        enum CodingKeys: String, CodingKey {
            case name, kernel, gflops
            case forwardMs = "forward_ms", backwardMs = "backward_ms", optimizerMs = "optimizer_ms"
            case callsPerStep = "calls_per_step"
        }
    }

    enum CodingKeys: String, CodingKey {
        case model, stem, mode, threads, steps, parameters, ranks, communicated, overlap
        case allReduceMs = "allreduce_ms"
        case forwardMs = "forward_ms", backwardMs = "backward_ms", computeMs = "compute_ms"
        case exposedCommMs = "exposed_comm_ms", optimizerMs = "optimizer_ms", dataWaitMs = "data_wait_ms"
        case forwardGFlopsPerImage = "forward_gflops_per_image", sgemmGFlops = "sgemm_gflops", mfu
        case gemmUtilisation = "gemm_utilisation", profile
        case meanStepMs = "mean_step_ms"
        case foldedBatchNorm = "folded_batch_norm"
        case imageSize = "image_size", batchSize = "batch_size"
        case imagesPerSecond = "images_per_second", msPerStep = "ms_per_step"
        case msPerStepMin = "ms_per_step_min", peakRSSMB = "peak_rss_mb"
    }
}

/// Times forward + loss + backward + SGD step (train) or forward alone (eval) on one fixed
/// random batch, after warm-up steps; reports the median step time.
/// Under mpirun every rank runs the same steps; times are the mean over ranks of each rank's
/// median, and images/s counts every rank's batch.
public func runBenchmark(_ options: BenchmarkOptions,
                         communicator comm: any Communicator = SingleProcessCommunicator()) throws -> BenchmarkResult {
    setComputeThreads(options.threads)
    Conv2d.defaultAlgorithm = options.convAlgorithm
    let model = try ClassifierModel(architecture: options.model, numClasses: options.numClasses,
                                    stem: options.stem, seed: 0)
    model.store.foldsBatchNormInEval = options.foldBatchNorm
    let images = Tensor(n: options.batchSize, h: options.imageSize, w: options.imageSize, c: 3)
    var rng = SplitMix64(seed: 1)
    for i in 0..<images.count { images.pointer[i] = Float(rng.nextNormal()) }
    var labels = [Int32](repeating: 0, count: options.batchSize)
    for i in labels.indices { labels[i] = Int32(rng.nextInt(below: options.numClasses)) }
    let loss = SoftmaxCrossEntropy()
    let optimizer = SGD(store: model.store, momentum: 0.9, weightDecay: 1e-4)
    let buckets = GradientBuckets(parameters: model.store.parameters.map { ($0.offset, $0.count) },
                                  totalCount: model.store.parameterCount, bucketBytes: Int(options.bucketMB * 1_048_576))
    let communicates = options.communicate && comm.worldSize > 1 && options.mode == .train
    let reduction = OverlappedAllReduce(buckets: buckets, communicator: comm, compression: options.compression,
                                        mode: communicates ? options.overlap : .off)
    defer { reduction.stop() }
    if reduction.mode != .off {
        model.store.gradientReady = { offset, count in reduction.gradientReady(offset: offset, count: count) }
    }
    // Per step: forward, backward, exposed all-reduce, optimizer (ms).
    var phases: [[Double]] = [[], [], [], []]
    func milliseconds(since start: UInt64) -> Double { Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6 }

    func step() {
        switch options.mode {
        case .train:
            Profiler.phase = .forward
            var mark = DispatchTime.now().uptimeNanoseconds
            let logits = model.forward(images, mode: .train)
            _ = labels.withUnsafeBufferPointer { loss.forward(logits: logits, labels: $0.baseAddress!) }
            phases[0].append(milliseconds(since: mark))
            mark = DispatchTime.now().uptimeNanoseconds
            Profiler.phase = .backward
            model.store.zeroGradients()
            if communicates { reduction.beginBackward(gradients: model.store.gradients) }
            model.backward(loss.backward())
            phases[1].append(milliseconds(since: mark))
            mark = DispatchTime.now().uptimeNanoseconds
            if communicates { reduction.finish(gradients: model.store.gradients) }
            phases[2].append(milliseconds(since: mark))
            mark = DispatchTime.now().uptimeNanoseconds
            Profiler.phase = .optimizer
            optimizer.step(learningRate: 0.01, gradientScale: 1 / Float(comm.worldSize))
            phases[3].append(milliseconds(since: mark))
        case .eval:
            Profiler.phase = .forward
            let mark = DispatchTime.now().uptimeNanoseconds
            _ = model.forward(images, mode: .eval)
            phases[0].append(milliseconds(since: mark))
        }
    }

    for _ in 0..<options.warmupSteps { step() }
    for i in phases.indices { phases[i].removeAll() }
    Profiler.isEnabled = options.profile
    Profiler.reset()
    defer { Profiler.isEnabled = false }
    comm.barrier()
    var times: [Double] = []
    for _ in 0..<options.steps {
        let start = DispatchTime.now().uptimeNanoseconds
        step()
        times.append(milliseconds(since: start))
    }
    func median(_ values: [Double]) -> Double { values.isEmpty ? 0 : values.sorted()[values.count / 2] }
    times.sort()
    var medians: [Double] = [times.isEmpty ? .nan : times[times.count / 2], times.first ?? .nan,
                             communicates ? median(phases[2]) : 0, peakResidentMegabytes()] + phases.map(median)
    comm.allReduceSum(&medians)
    let ranks = Double(comm.worldSize)
    let median = medians[0] / ranks
    var result = BenchmarkResult(model: options.model, stem: options.stem.rawValue, mode: options.mode.rawValue,
                                 imageSize: options.imageSize, batchSize: options.batchSize, threads: options.threads,
                                 steps: options.steps, imagesPerSecond: Double(options.batchSize) * ranks / (median / 1000),
                                 msPerStep: median, msPerStepMin: medians[1] / ranks, peakRSSMB: medians[3] / ranks,
                                 parameters: model.parameterCount)
    result.ranks = comm.worldSize
    if options.mode == .eval { result.foldedBatchNorm = options.foldBatchNorm }
    result.communicated = communicates
    result.allReduceMs = medians[2] / ranks
    result.overlap = reduction.mode.rawValue
    result.forwardMs = medians[4] / ranks
    result.backwardMs = medians[5] / ranks
    result.computeMs = result.forwardMs + result.backwardMs
    result.exposedCommMs = medians[6] / ranks
    result.optimizerMs = medians[7] / ranks
    if options.profile {
        Profiler.isEnabled = false
        let rows = Profiler.snapshot()
        let steps = Double(max(options.steps, 1))
        result.profile = rows.map { row in
            let seconds = row.seconds[0] + row.seconds[1]
            return BenchmarkResult.ProfileRow(
                name: row.name, kernel: row.isKernel, forwardMs: row.seconds[0] * 1000 / steps,
                backwardMs: row.seconds[1] * 1000 / steps, optimizerMs: row.seconds[2] * 1000 / steps,
                callsPerStep: Double(row.calls.reduce(0, +)) / steps,
                gflops: seconds > 0 ? (row.flops[0] + row.flops[1]) / seconds / 1e9 : 0)
        }
        // The rows are means over the timed steps; what no layer timed (residual adds, block
        // glue, the loss) is the rest of the mean forward and backward.
        func mean(_ values: [Double]) -> Double { values.isEmpty ? 0 : values.reduce(0, +) / Double(values.count) }
        let layerRows = result.profile!.filter { !$0.kernel }
        result.profile!.append(BenchmarkResult.ProfileRow(
            name: "other (adds, glue, loss)", kernel: false,
            forwardMs: mean(phases[0]) - layerRows.map(\.forwardMs).reduce(0, +),
            backwardMs: mean(phases[1]) - layerRows.map(\.backwardMs).reduce(0, +),
            optimizerMs: mean(phases[3]), callsPerStep: 0, gflops: 0))
        result.meanStepMs = mean(times)
        let forwardFlops = rows.filter { !$0.isKernel }.map { $0.flops[0] }.reduce(0, +) / steps
        result.forwardGFlopsPerImage = forwardFlops / Double(options.batchSize) / 1e9
        let peak = measureSGEMMGFlops()
        result.sgemmGFlops = peak
        // One rank's images per second against one rank's SGEMM rate.
        let perRank = result.imagesPerSecond / ranks
        let trainFactor = options.mode == .train ? 3.0 : 1.0
        result.mfu = trainFactor * forwardFlops / Double(options.batchSize) * perRank / (peak * 1e9)
        let gemmFlops = rows.filter { $0.isKernel && $0.name.hasPrefix("GEMM") }
            .map { $0.flops[0] + $0.flops[1] + $0.flops[2] }.reduce(0, +) / steps
        result.gemmUtilisation = gemmFlops / (mean(times) / 1000) / (peak * 1e9)
    }
    return result
}

/// The best of a few large square SGEMMs (1024³, row-major, no transposes) in GFLOP/s, with
/// the current compute threads (`sgemm`'s blocks, Note [Compute threads]): the ceiling
/// model-FLOP utilisation is measured against.
public func measureSGEMMGFlops(size: Int = 1024, repeats: Int = 5) -> Double {
    let a = UnsafeMutablePointer<Float>.allocate(capacity: size * size)
    let b = UnsafeMutablePointer<Float>.allocate(capacity: size * size)
    let c = UnsafeMutablePointer<Float>.allocate(capacity: size * size)
    defer { a.deallocate(); b.deallocate(); c.deallocate() }
    for i in 0..<(size * size) { a[i] = Float(i % 7) * 0.1; b[i] = Float(i % 5) * 0.1 }
    var best = Double.infinity
    for _ in 0..<repeats {
        let start = DispatchTime.now().uptimeNanoseconds
        sgemm(m: size, n: size, k: size, a: a, lda: size, b: b, ldb: size, c: c, ldc: size)
        best = min(best, Double(DispatchTime.now().uptimeNanoseconds - start) * 1e-9)
    }
    return 2 * Double(size * size * size) / best / 1e9
}

/// Peak resident set size of this process (getrusage reports kilobytes on Linux).
public func peakResidentMegabytes() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return Double(usage.ru_maxrss) / 1024
}
