import Foundation
import Kernels
import NN
import TestSupport
import XCTest

/// EfficientNet-B0…B3 against torchvision's structure (Fixtures/efficientnet/structure.json,
/// written by make_efficientnet_fixtures.py): parameter counts, state-dict keys and shapes,
/// stochastic-depth probabilities; plus the registry entries and a B3 forward.
final class EfficientNetTests: XCTestCase {
    static let fixtures = packageRoot.appendingPathComponent("Tests/NNTests/Fixtures/efficientnet")

    /// torchvision 0.29 `sum(p.numel() for p in efficientnet_bX(num_classes=1000).parameters())`.
    static let torchvisionParameterCounts = [
        "efficientnet_b0": 5_288_548, "efficientnet_b1": 7_794_184,
        "efficientnet_b2": 9_109_994, "efficientnet_b3": 12_233_232,
    ]

    struct Reference {
        let parameters: Int
        let stateDict: [(name: String, shape: [Int])]
        let stochasticDepth: [String: Double]
    }

    func reference(_ architecture: String) throws -> Reference {
        let data = try Data(contentsOf: Self.fixtures.appendingPathComponent("structure.json"))
        let root = try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String: Any])
        let models = try XCTUnwrap(root["models"] as? [String: Any])
        let model = try XCTUnwrap(models[architecture] as? [String: Any])
        let entries = try XCTUnwrap(model["state_dict"] as? [[Any]])
        return Reference(parameters: try XCTUnwrap(model["parameters"] as? Int),
                         stateDict: try entries.map { (try XCTUnwrap($0[0] as? String), try XCTUnwrap($0[1] as? [Int])) },
                         stochasticDepth: try XCTUnwrap(model["stochastic_depth"] as? [String: Double]))
    }

    func testParameterCountsMatchTorchvision() throws {
        for (name, count) in Self.torchvisionParameterCounts.sorted(by: { $0.key < $1.key }) {
            let model = try ClassifierModel(architecture: name, numClasses: 1000, stem: .imagenet, seed: 0)
            XCTAssertEqual(model.parameterCount, count, name)
            XCTAssertEqual(try reference(name).parameters, count, "\(name): structure.json disagrees")
        }
    }

    /// StateDict.records has exactly torchvision's keys and shapes; the parameters are registered
    /// in torchvision's named_parameters order (so the flat buffers follow the state dict).
    func testStateDictKeysAndShapesMatchTorchvision() throws {
        for name in Self.torchvisionParameterCounts.keys.sorted() {
            let expected = try reference(name)
            let model = try ClassifierModel(architecture: name, numClasses: 1000, stem: .imagenet, seed: 0)
            let ours = Dictionary(uniqueKeysWithValues: StateDict.records(of: model.store).map { ($0.name, $0.shape) })
            let theirs = Dictionary(uniqueKeysWithValues: expected.stateDict.map { ($0.name, $0.shape) })
            XCTAssertEqual(Set(ours.keys).subtracting(theirs.keys).sorted(), [], "\(name): keys torchvision lacks")
            XCTAssertEqual(Set(theirs.keys).subtracting(ours.keys).sorted(), [], "\(name): torchvision keys we lack")
            for (key, shape) in theirs where ours[key] != nil && ours[key]! != shape {
                XCTFail("\(name): \(key) has shape \(ours[key]!), torchvision \(shape)")
            }
            let parameterNames = Set(model.store.parameters.map(\.name))
            XCTAssertEqual(model.store.parameters.map(\.name), expected.stateDict.map(\.name).filter(parameterNames.contains),
                           "\(name): parameter order differs from torchvision's")
        }
    }

    /// Every residual MBConv's StochasticDepth, with torchvision's p = 0.2·i/total, is reseeded by
    /// the model (found through CompositeLayer), after the classifier's Dropout.
    func testStochasticLayersAreCollectedWithTorchvisionProbabilities() throws {
        for name in Self.torchvisionParameterCounts.keys.sorted() {
            let expected = try reference(name)
            let model = try ClassifierModel(architecture: name, numClasses: 10, stem: .imagenet, seed: 0)
            let layers = model.stochasticLayers
            XCTAssertTrue(layers.first is Dropout, name)
            XCTAssertEqual(layers.first?.probability, Architecture.named(name)?.headDropout)
            let depth = layers.compactMap { $0 as? StochasticDepth }
            XCTAssertEqual(layers.count, 1 + depth.count)
            // torchvision's p > 0 for every block but the first; ours acts only on residual blocks.
            let residualExpected = expected.stochasticDepth.filter { key, _ in Self.isResidual(key, in: expected) }
            XCTAssertEqual(depth.map { Double($0.probability) }.sorted(),
                           residualExpected.values.map { Double(Float($0)) }.sorted(), name)
            model.reseedStochasticLayers(seed: 1, step: 3, stream: 0)
            XCTAssertEqual(Set(layers.map(\.randomSeed)).count, layers.count, "\(name): seeds must differ per layer")
        }
    }

    /// torchvision applies stochastic depth only where the block is residual (stride 1 and
    /// in == out). In B0–B3 every stage's first block changes the channel count, so the residual
    /// blocks are exactly those `features.<stage>.<index>` with index ≠ 0.
    static func isResidual(_ block: String, in reference: Reference) -> Bool {
        block.split(separator: ".").last != "0"
    }

    func testRegistry() {
        for (variant, size, dropout) in [("b0", 224, 0.2), ("b1", 240, 0.2), ("b2", 260, 0.3), ("b3", 300, 0.3)] {
            guard let spec = Architecture.named("efficientnet_\(variant)") else { XCTFail(variant); continue }
            XCTAssertEqual(spec.headPrefix, "classifier")
            XCTAssertEqual(spec.linearHeadName, "classifier.1")
            XCTAssertEqual(Double(spec.headDropout), dropout, accuracy: 1e-7)
            XCTAssertEqual(spec.defaultImageSize, size)
            XCTAssertTrue(Architecture.listedNames.contains("efficientnet_\(variant)"))
        }
    }

    /// torchvision's init: conv weights N(0, 2/fan_out), SE conv biases 0, BatchNorm 1/0,
    /// classifier weight U(±1/√classes), bias 0.
    func testInitialisationFollowsTorchvision() throws {
        let model = try ClassifierModel(architecture: "efficientnet_b0", numClasses: 100, stem: .imagenet, seed: 3)
        let store = model.store
        func values(_ name: String) throws -> [Float] {
            let p = try XCTUnwrap(store.parameter(named: name), name)
            return Array(UnsafeBufferPointer(start: store.value(p), count: p.count))
        }
        XCTAssertTrue(try values("features.1.0.block.1.fc1.bias").allSatisfy { $0 == 0 })
        XCTAssertTrue(try values("features.4.2.block.2.fc2.bias").allSatisfy { $0 == 0 })
        XCTAssertTrue(try values("classifier.1.bias").allSatisfy { $0 == 0 })
        XCTAssertTrue(try values("features.0.1.weight").allSatisfy { $0 == 1 })
        let head = try values("classifier.1.weight")
        XCTAssertLessThanOrEqual(head.map(abs).max()!, 0.1)
        XCTAssertGreaterThan(head.map(abs).max()!, 0.09)
        // Depthwise 5×5 over 240 channels: fan_out = 240·25 (PyTorch does not divide by groups).
        let dw = try values("features.3.1.block.1.0.weight")
        let sumOfSquares: Double = dw.reduce(0.0) { $0 + Double($1) * Double($1) }
        let std: Double = (sumOfSquares / Double(dw.count)).squareRoot()
        let expected: Double = (2.0 / 6000.0).squareRoot()
        XCTAssertEqual(std, expected, accuracy: 0.05 * expected)
    }

    /// B3 (and the others) build and run forward and backward at a small size; outputs are finite.
    func testB3ForwardAndBackwardRun() throws {
        let model = try ClassifierModel(architecture: "efficientnet_b3", numClasses: 10, stem: .imagenet, seed: 1)
        model.reseedStochasticLayers(seed: 1, step: 0, stream: 0)
        let x = randomTensor(n: 2, h: 64, w: 64, c: 3, seed: 2)
        let logits = model.forward(x, mode: .train)
        XCTAssertEqual(logits.shape, [2, 1, 1, 10])
        XCTAssertTrue(logits.array.allSatisfy(\.isFinite))
        model.store.zeroGradients()
        model.backward(randomTensor(n: 2, h: 1, w: 1, c: 10, seed: 3))
        let g = UnsafeBufferPointer(start: model.store.gradients, count: model.parameterCount)
        XCTAssertTrue(g.allSatisfy(\.isFinite))
        let eval = model.forward(x, mode: .eval)
        XCTAssertTrue(eval.array.allSatisfy(\.isFinite))
    }

    /// _make_divisible / adjust_depth on the values B0–B3 use.
    func testScalingRules() {
        XCTAssertEqual(EfficientNet.adjustChannels(32, 1.1), 32)    // 35.2 → 32 (≥ 90%)
        XCTAssertEqual(EfficientNet.adjustChannels(320, 1.1), 352)
        XCTAssertEqual(EfficientNet.adjustChannels(40, 1.2), 48)
        XCTAssertEqual(EfficientNet.adjustChannels(112, 1.2), 136)
        XCTAssertEqual(EfficientNet.adjustDepth(3, 1.1), 4)
        XCTAssertEqual(EfficientNet.adjustDepth(4, 1.4), 6)
        XCTAssertEqual(EfficientNet.adjustDepth(1, 1.0), 1)
    }
}
