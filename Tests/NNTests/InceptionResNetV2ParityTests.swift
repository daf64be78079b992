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
        let path = Self.fixtures.appendingPathComponent("inception_resnet_v2.safetensors").path
        // See Note [Zero gradients] in make_inception_fixtures.py: a gradient that is exactly 0
        // is judged against 1e-3 × the model's largest gradient.
        try checkParity(architecture: "inception_resnet_v2", stem: .imagenet, fixture: path,
                        weights: inceptionFixtureValues, zeroGradientFloor: { golden in
                            let top = Double(golden.metadata["max_abs_gradient"] ?? "") ?? 0
                            XCTAssertGreaterThan(top, 0, "metadata max_abs_gradient")
                            return 1e-3 * top
                        })
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
