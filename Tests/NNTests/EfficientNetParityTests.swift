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

    func testEfficientNetB0At64Pixels() throws {
        let path = Self.fixtures.appendingPathComponent("efficientnet_b0_64.safetensors").path
        try checkParity(architecture: "efficientnet_b0", stem: .imagenet, fixture: path, weights: Self.fixtureValues,
                        zeroGradientFloor: { Double($0.metadata["gradient_scale"] ?? "") ?? 0 },
                        configure: { model in for layer in model.stochasticLayers { layer.probability = 0 } })
    }

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
}
