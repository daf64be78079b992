import Foundation
import Kernels
import NN
import TestSupport
import XCTest

/// Same numbers as torchvision: golden files made by PyTorch
/// (Fixtures/parity/make_parity_fixtures.py, which documents what each file holds) are compared
/// with a forward and backward here. Weights are not stored: both sides compute them from each
/// parameter's name (`fixtureValues`), and the weights pass through `StateDict.load`, so the
/// import path (names, OIHW → OHWI) is part of what is checked.
///
/// Tolerances (issue 3): logits and loss within 1e-4 relative to the reference's largest
/// magnitude, gradients within 1e-3 relative to the tensor's scale, the SGD step within 1e-6.
final class PyTorchParityTests: XCTestCase {
    static let fixtures = packageRoot.appendingPathComponent("Tests/NNTests/Fixtures/parity")

    func testResNet18ImageNetStem() throws { try checkCase("resnet18", stem: .imagenet) }
    func testResNet18SmallStem() throws { try checkCase("resnet18", stem: .small) }
    func testResNet50ImageNetStem() throws { try checkCase("resnet50", stem: .imagenet) }

    /// The generator must reproduce the script's bits, or every other comparison is moot.
    func testFixtureValuesMatchTheScript() {
        // From the script: fixture_values("conv1.weight", (64, 3, 7, 7)).reshape(-1)[:3] and
        // fixture_values("bn1.weight", (64,))[:2], printed with float.hex.
        let conv = fixtureValues(name: "conv1.weight", shape: [64, 3, 7, 7])
        XCTAssertEqual(conv.count, 64 * 3 * 49)
        XCTAssertTrue(conv.allSatisfy { abs($0) <= Float((3.0 / 147).squareRoot()) })
        let bn = fixtureValues(name: "bn1.weight", shape: [64])
        XCTAssertTrue(bn.allSatisfy { $0 >= 0.8 && $0 <= 1.2 })
        XCTAssertEqual(Array(conv.prefix(3)), Self.scriptConvPrefix)
        XCTAssertEqual(Array(bn.prefix(2)), Self.scriptBNPrefix)
    }

    static let scriptConvPrefix: [Float] = [0x1.a60124p-7, 0x1.1ee8c4p-4, -0x1.1728b2p-3]
    static let scriptBNPrefix: [Float] = [0x1.e35eaap-1, 0x1.213830p+0]

    func checkCase(_ architecture: String, stem: ResNetStem) throws {
        let path = Self.fixtures.appendingPathComponent("\(architecture)_\(stem.rawValue).safetensors").path
        try checkParity(architecture: architecture, stem: stem, fixture: path, weights: fixtureValues)
    }

    /// torch.optim.SGD trajectories (momentum, nesterov, plain with weight decay), three steps each.
    func testSGDStepMatchesTorch() throws {
        let golden = try SafeTensorsFile.read(path: Self.fixtures.appendingPathComponent("sgd.safetensors").path)
        let p0 = try golden.tensors["p0"]!.floats()
        let grads = try golden.tensors["grads"]!.floats()
        let count = p0.count
        for key in ["momentum", "nesterov", "plain"] {
            func setting(_ field: String) throws -> String {
                guard let v = golden.metadata["\(key).\(field)"] else { throw SupportError("sgd.safetensors: no \(key).\(field)") }
                return v
            }
            let lr = Float(try setting("lr"))!, momentum = Float(try setting("momentum"))!
            let weightDecay = Float(try setting("weight_decay"))!, nesterov = try setting("nesterov") == "True"
            let store = ParameterStore()
            let p = store.addParameter("p", shape: [count], initializer: .constant(0))
            store.finalize(seed: 0)
            store.value(p).update(from: p0, count: count)
            let sgd = SGD(store: store, momentum: momentum, weightDecay: weightDecay, nesterov: nesterov)
            let expected = try golden.tensors["\(key).params"]!.floats()
            for step in 0..<3 {
                grads.withUnsafeBufferPointer { store.gradient(p).update(from: $0.baseAddress! + step * count, count: count) }
                sgd.step(learningRate: lr)
                var worst: Float = 0
                for i in 0..<count {
                    let reference = expected[step * count + i]
                    worst = max(worst, abs(store.value(p)[i] - reference) / max(abs(reference), 1))
                }
                print("SGD \(key) step \(step + 1): max difference from torch.optim.SGD \(worst)")
                XCTAssertLessThanOrEqual(worst, 1e-6, "\(key) step \(step + 1)")
            }
        }
    }
}

// MARK: - The script's weight generator, bit for bit

/// FNV-1a 64 of the UTF-8 name.
func nameSeed(_ name: String) -> UInt64 {
    var h: UInt64 = 0xCBF2_9CE4_8422_2325
    for byte in name.utf8 { h = (h ^ UInt64(byte)) &* 0x100_0000_01B3 }
    return h
}

/// SplitMix64 outputs for counters 1…count, top 24 bits as a Double in [0, 1).
func uniform01(seed: UInt64, count: Int) -> [Double] {
    (1...max(count, 1)).prefix(count).map { k in
        var z = seed &+ UInt64(k) &* 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        z ^= z >> 31
        return Double(z >> 40) / Double(1 << 24)
    }
}

/// `fixture_values` of make_parity_fixtures.py, in PyTorch layout.
func fixtureValues(name: String, shape: [Int]) -> [Float] {
    let count = shape.reduce(1, *)
    let u = uniform01(seed: nameSeed(name), count: count).map { $0 * 2 - 1 }
    if shape.count == 1 && name.hasSuffix(".weight") { return u.map { Float(1 + 0.2 * $0) } }
    if shape.count == 1 && !name.hasPrefix("fc.") {
        return u.map { Float($0 < 0 ? -(1.5 + abs($0)) : $0 > 0 ? 1.5 + abs($0) : 0) }
    }
    if shape.count == 1 { return u.map { Float(0.2 * $0) } }
    let scale = (3.0 / Double(shape.dropFirst().reduce(1, *))).squareRoot()
    return u.map { Float($0 * scale) }
}

func probeValues(name: String, count: Int) -> [Double] {
    uniform01(seed: nameSeed(name + "#probe"), count: count).map { $0 * 2 - 1 }
}
