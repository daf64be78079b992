import Foundation
import Kernels
import NN
import TestSupport
import XCTest

/// EfficientNet-B0 against torchvision, one training step (Fixtures/efficientnet/
/// make_efficientnet_fixtures.py documents the file). Same method as PyTorchParityTests: the
/// weights are a function of each parameter's name on both sides and pass through
/// `StateDict.load`; the reference ran in float64.
///
/// Random layers: the classifier's Dropout and every StochasticDepth have p set to 0 on both
/// sides (their draws differ between the two implementations; p = 0 makes them the identity in
/// train mode), so train mode still exercises batch statistics everywhere.
///
/// Tolerances (issue 5): logits and loss 1e-4 relative to the reference's largest magnitude,
/// gradients 1e-3 relative to the tensor's scale, where an analytically zero gradient's scale is
/// the model's largest gradient entry (see Note [Zero gradients] in the script).
final class EfficientNetParityTests: XCTestCase {
    static let fixtures = packageRoot.appendingPathComponent("Tests/NNTests/Fixtures/efficientnet")

    func testEfficientNetB0At64Pixels() throws { try checkCase("efficientnet_b0", size: 64) }

    /// The script's `fixture_values` for EfficientNet names, in PyTorch layout.
    static func fixtureValues(name: String, shape: [Int]) -> [Float] {
        let count = shape.reduce(1, *)
        let u = uniform01(seed: nameSeed(name), count: count).map { $0 * 2 - 1 }
        if shape.count == 1 && name.hasSuffix(".weight") { return u.map { Float(1 + 0.2 * $0) } }
        if shape.count == 1 && (name.contains(".fc1.") || name.contains(".fc2.") || name.hasPrefix("classifier.")) {
            return u.map { Float(0.2 * $0) }
        }
        if shape.count == 1 { return u.map { Float(0.5 * $0) } }
        let scale = (3.0 / Double(shape.dropFirst().reduce(1, *))).squareRoot()
        return u.map { Float($0 * scale) }
    }

    func checkCase(_ architecture: String, size: Int) throws {
        let path = Self.fixtures.appendingPathComponent("\(architecture)_\(size).safetensors").path
        let golden = try SafeTensorsFile.read(path: path)
        func tensor(_ name: String) throws -> SafeTensorRecord {
            guard let r = golden.tensors[name] else { throw SupportError("\(path): no tensor \(name)") }
            return r
        }
        let numClasses = Int(golden.metadata["num_classes"] ?? "") ?? 10
        let gradientScale = try XCTUnwrap(Double(golden.metadata["gradient_scale"] ?? ""), "no gradient_scale")
        let zeroGradients = Set((golden.metadata["zero_gradients"] ?? "").split(separator: ",").map(String.init))
        let model = try ClassifierModel(architecture: architecture, numClasses: numClasses, stem: .imagenet, seed: 0)
        for layer in model.stochasticLayers { layer.probability = 0 }
        var records: [String: SafeTensorRecord] = [:]
        for p in model.store.parameters {
            records[p.name] = SafeTensorRecord(name: p.name, shape: p.shape,
                                               floats: Self.fixtureValues(name: p.name, shape: p.shape))
        }
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

        var report: [(line: String, relative: Double)] = []
        var failures: [String] = []
        func compare(_ name: String, _ ours: [Float], _ reference: [Float], scale: Double? = nil, tolerance: Double) {
            precondition(ours.count == reference.count)
            let maxRef = Double(reference.map { abs($0) }.max() ?? 0)
            let maxDiff = zip(ours, reference).map { abs(Double($0) - Double($1)) }.max() ?? 0
            let relative = maxDiff / max(scale ?? maxRef, 1e-30)
            let line = String(format: "%@: max |diff| %.3g, relative %.3g", name, maxDiff, relative)
            report.append((line, relative))
            if !(relative <= tolerance) { failures.append(line + " > \(tolerance)") }
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
                let zero = zeroGradients.contains(p.name)
                compare("grad " + p.name + (zero ? " (zero, vs the model's gradient scale)" : ""), ours, try full.floats(),
                        scale: zero ? gradientScale : nil, tolerance: 1e-3)
                continue
            }
            precondition(!zeroGradients.contains(p.name), "zero-gradient tensors are stored whole")
            let sample = try tensor("grad_sample." + p.name).floats()
            let stats = try tensor("grad_stats." + p.name).floats()
            let indices = (0..<sample.count).map { Int(Double($0) * Double(p.count) / Double(sample.count)) }
            let norm = ours.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
            let rms = Double(stats[0]) / Double(p.count).squareRoot()
            let maxSample = Double(sample.map { abs($0) }.max() ?? 0)
            compare("grad " + p.name + " (512 samples)", indices.map { ours[$0] }, sample, scale: max(maxSample, rms),
                    tolerance: 1e-3)
            compare("grad " + p.name + " norm", [Float(norm)], [stats[0]], tolerance: 1e-3)
            let probe = probeValues(name: p.name, count: p.count)
            let dot = zip(ours, probe).reduce(0.0) { $0 + Double($1.0) * $1.1 }
            let probeNorm = probe.reduce(0.0) { $0 + $1 * $1 }.squareRoot()
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

        func worst(_ prefix: String) -> String {
            report.filter { $0.line.hasPrefix(prefix) }.max { $0.relative < $1.relative }?.line ?? "-"
        }
        print("\(architecture) at \(size) px, parity with PyTorch (\(report.count) comparisons)")
        for prefix in ["logits_train", "loss", "logits_eval", "grad", "features"] { print("  worst \(prefix): \(worst(prefix))") }
        if ProcessInfo.processInfo.environment["PARITY_VERBOSE"] != nil {
            print(report.map { "  " + $0.line }.joined(separator: "\n"))
        }
        XCTAssertTrue(failures.isEmpty, "\(architecture): " + failures.joined(separator: "\n"))
    }
}
