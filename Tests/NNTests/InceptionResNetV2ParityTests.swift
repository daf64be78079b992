import Foundation
import Kernels
import NN
import TestSupport
import XCTest

/// Same numbers as timm 1.0.31's `inception_resnet_v2` at 75 px (the smallest input it accepts),
/// batch 4: golden files made by PyTorch in float64 (Fixtures/inception/make_inception_fixtures.py,
/// which documents what each file holds), compared after one forward and backward here. The
/// comparison follows PyTorchParityTests (weights computed from names, loaded through
/// `StateDict.load`; tolerances: logits, loss and BatchNorm buffers 1e-4 relative to the
/// reference's largest magnitude, gradients 1e-3 relative to the tensor's scale).
final class InceptionResNetV2ParityTests: XCTestCase {
    static let fixtures = packageRoot.appendingPathComponent("Tests/NNTests/Fixtures/inception")

    /// The generator must reproduce the script's bits (its "check:" line).
    func testFixtureValuesMatchTheScript() {
        XCTAssertEqual(Array(inceptionFixtureValues(name: "conv2d_1a.conv.weight", shape: [32, 3, 3, 3]).prefix(3)),
                       [0.049629371613264084, -0.2072279006242752, -0.2810629606246948])
        XCTAssertEqual(Array(inceptionFixtureValues(name: "conv2d_1a.bn.bias", shape: [32]).prefix(2)),
                       [-1.5003376007080078, -1.879754900932312])
        XCTAssertEqual(Array(inceptionFixtureValues(name: "repeat.0.conv2d.bias", shape: [320]).prefix(2)),
                       [-0.08177974075078964, -0.08432276546955109])
    }

    func testInceptionResNetV2() throws {
        let architecture = "inception_resnet_v2"
        let path = Self.fixtures.appendingPathComponent("\(architecture).safetensors").path
        let golden = try SafeTensorsFile.read(path: path)
        func tensor(_ name: String) throws -> SafeTensorRecord {
            guard let r = golden.tensors[name] else { throw SupportError("\(path): no tensor \(name)") }
            return r
        }
        let numClasses = Int(golden.metadata["num_classes"] ?? "") ?? 10
        let maxAbsGradient = Double(golden.metadata["max_abs_gradient"] ?? "") ?? 0
        XCTAssertGreaterThan(maxAbsGradient, 0, "metadata max_abs_gradient")
        let model = try ClassifierModel(architecture: architecture, numClasses: numClasses, stem: .imagenet, seed: 0)
        var records: [String: SafeTensorRecord] = [:]
        for p in model.store.parameters {
            records[p.name] = SafeTensorRecord(name: p.name, shape: p.shape,
                                            floats: inceptionFixtureValues(name: p.name, shape: p.shape))
        }
        // Fresh BatchNorm buffers, as PyTorch initialises them.
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
                // See Note [Zero gradients] in make_inception_fixtures.py.
                let top = Double(reference.map { abs($0) }.max() ?? 0)
                compare("grad " + p.name, ours, reference, scale: top >= 1e-12 ? top : 1e-3 * maxAbsGradient,
                        tolerance: 1e-3)
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
        print("\(architecture) parity with PyTorch (\(report.count) comparisons; worst: \(worst))")
        print(report.map { "  " + $0 }.joined(separator: "\n"))
        XCTAssertTrue(failures.isEmpty, "\(architecture): " + failures.joined(separator: "\n"))
    }

    func relativeOf(_ line: String) -> Double {
        Double(line.components(separatedBy: "relative ").last ?? "") ?? 0
    }
}

/// `fixture_values` of make_inception_fixtures.py (PyTorch layout): the ResNet fixtures' generator
/// with this model's names: `.bn.weight` / `.bn.bias` for BatchNorm, other 1-D tensors (the
/// residual projections' and the classifier's biases) small.
func inceptionFixtureValues(name: String, shape: [Int]) -> [Float] {
    let count = shape.reduce(1, *)
    let u = uniform01(seed: nameSeed(name), count: count).map { $0 * 2 - 1 }
    if name.hasSuffix(".bn.weight") { return u.map { Float(1 + 0.2 * $0) } }
    if name.hasSuffix(".bn.bias") {
        return u.map { Float($0 < 0 ? -(1.5 + abs($0)) : $0 > 0 ? 1.5 + abs($0) : 0) }
    }
    if shape.count == 1 { return u.map { Float(0.2 * $0) } }
    let scale = (3.0 / Double(shape.dropFirst().reduce(1, *))).squareRoot()
    return u.map { Float($0 * scale) }
}
