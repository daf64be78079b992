import Foundation
import Kernels
import NN
import TestSupport
import XCTest

/// One golden-file comparison: weights from `weights(name, shape)` loaded through
/// `StateDict.load`, one training forward and backward, the BatchNorm buffers, one evaluation
/// forward; prints the largest difference per tensor and fails the test on any over tolerance
/// (logits, loss, buffers 1e-4 relative to the reference's largest magnitude; gradients 1e-3
/// relative to the tensor's scale). `zeroGradientFloor`: the scale for a gradient that is zero
/// in exact arithmetic (see the Inception fixture's Note [Zero gradients]); nil = its own.
/// `configure` adjusts the model before the weights load (e.g. random layers' p = 0).
func checkParity(architecture: String, stem: ResNetStem, fixture path: String,
             weights: (String, [Int]) -> [Float], zeroGradientFloor: ((SafeTensorsFile) -> Double)? = nil,
             configure: (ClassifierModel) -> Void = { _ in },
             file: StaticString = #filePath, line: UInt = #line) throws {
    let golden = try SafeTensorsFile.read(path: path)
    func tensor(_ name: String) throws -> SafeTensorRecord {
        guard let r = golden.tensors[name] else { throw SupportError("\(path): no tensor \(name)") }
        return r
    }
    let numClasses = Int(golden.metadata["num_classes"] ?? "") ?? 10
    let model = try ClassifierModel(architecture: architecture, numClasses: numClasses, stem: stem, seed: 0)
    configure(model)
    var records: [String: SafeTensorRecord] = [:]
    for p in model.store.parameters {
        records[p.name] = SafeTensorRecord(name: p.name, shape: p.shape, floats: weights(p.name, p.shape))
    }
    // Fresh BatchNorm buffers, as torchvision initialises them.
    for r in StateDict.records(of: model.store) where records[r.name] == nil { records[r.name] = r }
    try StateDict.load(records, into: model.store, source: "fixture weights")

    let input = try tensor("input")
    let (n, c, h, w) = (input.shape[0], input.shape[1], input.shape[2], input.shape[3])
    let nchw = try input.floats()
    let x = Tensor(n: n, h: h, w: w, c: c)
    for i in 0..<n { for ch in 0..<c { for y in 0..<h { for xx in 0..<w {
        x.pointer[((i * h + y) * w + xx) * c + ch] = nchw[((i * c + ch) * h + y) * w + xx]
    } } } }
    let labels = try tensor("labels").int64s().map { Int32($0) }

    var report: [String] = []
    var failures: [String] = []
    func compare(_ name: String, _ ours: [Float], _ reference: [Float], scale: Double? = nil, tolerance: Double) {
        precondition(ours.count == reference.count)
        let maxRef = Double(reference.map { abs($0) }.max() ?? 0)
        let maxDiff = zip(ours, reference).map { abs(Double($0) - Double($1)) }.max() ?? 0
        let relative = maxDiff / max(scale ?? maxRef, 1e-30)
        report.append(String(format: "%@: max |diff| %.3g, relative %.3g", name, maxDiff, relative))
        if !(relative <= tolerance) { failures.append(report.last! + " > \(tolerance)") }
    }

    let loss = SoftmaxCrossEntropy()
    model.store.zeroGradients()
    let logits = model.forward(x, mode: .train)
    compare("logits_train", logits.array, try tensor("logits_train").floats(), tolerance: 1e-4)
    let lossValue = labels.withUnsafeBufferPointer { loss.forward(logits: logits, labels: $0.baseAddress!) }
    compare("loss", [lossValue], try tensor("loss").floats(), tolerance: 1e-4)
    model.backward(loss.backward())

    for p in model.store.parameters {
        let ours = StateDict.pytorchLayout(model.store.gradient(p), entry: p)
        if let full = golden.tensors["grad." + p.name] {
            let reference = try full.floats()
            let top = Double(reference.map { abs($0) }.max() ?? 0)
            let floor = top < 1e-12 ? zeroGradientFloor?(golden) : nil
            compare("grad " + p.name, ours, reference, scale: floor, tolerance: 1e-3)
            continue
        }
        let sample = try tensor("grad_sample." + p.name).floats()
        let stats = try tensor("grad_stats." + p.name).floats()
        let indices = (0..<sample.count).map { Int(Double($0) * Double(p.count) / Double(sample.count)) }
        let norm = ours.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
        // Sampled elements against the tensor's scale (its RMS from the reference norm).
        let rms = Double(stats[0]) / Double(p.count).squareRoot()
        let maxSample = Double(sample.map { abs($0) }.max() ?? 0)
        compare("grad " + p.name + " (512 samples)", indices.map { ours[$0] }, sample, scale: max(maxSample, rms),
                tolerance: 1e-3)
        compare("grad " + p.name + " norm", [Float(norm)], [stats[0]], tolerance: 1e-3)
        let probe = probeValues(name: p.name, count: p.count)
        let dot = zip(ours, probe).reduce(0.0) { $0 + Double($1.0) * $1.1 }
        let probeNorm = probe.reduce(0.0) { $0 + $1 * $1 }.squareRoot()
        // g·r is judged against ‖g‖‖r‖, the largest it could be.
        compare("grad " + p.name + " projection", [Float(dot)], [stats[1]], scale: Double(stats[0]) * probeNorm,
                tolerance: 1e-3)
    }
    for b in model.store.buffers where b.kind == .float32 {
        let dot = b.name.lastIndex(of: ".")!
        let key = "\(b.name[b.name.index(after: dot)...]).\(b.name[..<dot])"
        let ours = Array(UnsafeBufferPointer(start: model.store.floatBuffer(b), count: b.count))
        compare(b.name + " after the training forward", ours, try tensor(key).floats(), tolerance: 1e-4)
    }
    let eval = model.forward(x, mode: .eval)
    compare("logits_eval", eval.array, try tensor("logits_eval").floats(), tolerance: 1e-4)

    let worst = report.max { relativeOf($0) < relativeOf($1) } ?? ""
    print("\(architecture)/\(stem.rawValue) parity with PyTorch (\(report.count) comparisons; worst: \(worst))")
    print(report.map { "  " + $0 }.joined(separator: "\n"))
    XCTAssertTrue(failures.isEmpty, "\(architecture)/\(stem.rawValue): " + failures.joined(separator: "\n"),
                  file: file, line: line)
}

func relativeOf(_ line: String) -> Double {
Double(line.components(separatedBy: "relative ").last ?? "") ?? 0
}
