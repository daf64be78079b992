import Foundation
import Kernels
import NN
import TestSupport
import XCTest

/// Inception-ResNet-v2 against timm 1.0.31's `inception_resnet_v2`: state-dict names, shapes and
/// parameter count (from Fixtures/inception/inception_resnet_v2_state_dict.json, written by
/// make_inception_fixtures.py), and the input sizes the unpadded stride-2 stages allow.
final class InceptionResNetV2Tests: XCTestCase {
    static let fixtures = packageRoot.appendingPathComponent("Tests/NNTests/Fixtures/inception")

    func testStateDictKeysShapesAndParameterCountMatchTimm() throws {
        let data = try Data(contentsOf: Self.fixtures.appendingPathComponent("inception_resnet_v2_state_dict.json"))
        let json = try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String: Any])
        let entries = try XCTUnwrap(json["state_dict"] as? [[Any]])
        let timm = Dictionary(uniqueKeysWithValues: entries.map { ($0[0] as! String, ($0[1] as! [NSNumber]).map(\.intValue)) })
        let timmCount = try XCTUnwrap((json["parameter_count"] as? NSNumber)?.intValue)
        XCTAssertEqual(json["default_cfg_classifier"] as? String, "classif")
        XCTAssertEqual((json["drop_rate"] as? NSNumber)?.doubleValue, 0)

        let model = try ClassifierModel(architecture: "inception_resnet_v2", numClasses: 1000, stem: .imagenet, seed: 0)
        let ours = Dictionary(uniqueKeysWithValues: StateDict.records(of: model.store).map { ($0.name, $0.shape) })
        XCTAssertEqual(Set(ours.keys).subtracting(timm.keys).sorted(), [], "names timm does not have")
        XCTAssertEqual(Set(timm.keys).subtracting(ours.keys).sorted(), [], "timm names we lack")
        for (name, shape) in timm where ours[name] != nil { XCTAssertEqual(ours[name], shape, name) }
        XCTAssertEqual(model.parameterCount, timmCount)
        XCTAssertEqual(model.parameterCount, 55_843_464)
        // Parameters in timm's registration order (the state dict minus buffers).
        let timmParameters = entries.map { $0[0] as! String }.filter { model.store.parameter(named: $0) != nil }
        XCTAssertEqual(model.store.parameters.map(\.name), timmParameters)
        XCTAssertEqual(model.spec.headPrefix, "classif")
        XCTAssertEqual(model.spec.defaultImageSize, 299)
        XCTAssertEqual(model.headParameterOffset, model.parameterCount - 1536 * 1000 - 1000)
    }

    /// timm's init: PyTorch defaults everywhere (no init function of its own).
    func testInitialisationAndBatchNormEps() throws {
        let model = try ClassifierModel(architecture: "inception_resnet_v2", numClasses: 10, stem: .imagenet, seed: 0)
        let conv = try XCTUnwrap(model.store.parameter(named: "repeat_1.3.branch1.1.conv.weight"))
        XCTAssertEqual(conv.shape, [160, 128, 1, 7])
        guard case .uniform(let bound) = conv.initializer else { return XCTFail("conv init") }
        XCTAssertEqual(bound, 1 / Double(128 * 7).squareRoot(), accuracy: 1e-12)
        let bias = try XCTUnwrap(model.store.parameter(named: "block8.conv2d.bias"))
        guard case .uniform(let biasBound) = bias.initializer else { return XCTFail("conv2d bias init") }
        XCTAssertEqual(biasBound, 1 / Double(448).squareRoot(), accuracy: 1e-12)
        XCTAssertEqual(InceptionResNetV2.batchNormEps, 1e-3)
    }

    /// 75 px is the smallest input (a 1×1 grid after mixed_7a); 139 px reaches 3×3. Train-mode
    /// forward and backward run at both, twice (the second step reuses every buffer).
    func testOtherInputSizes() throws {
        let model = try ClassifierModel(architecture: "inception_resnet_v2", numClasses: 5, stem: .imagenet, seed: 1)
        for size in [InceptionResNetV2.minimumImageSize, 139] {
            let x = randomTensor(n: 2, h: size, w: size, c: 3, seed: UInt64(size))
            for _ in 0..<2 {
                model.store.zeroGradients()
                let logits = model.forward(x, mode: .train)
                XCTAssertEqual(logits.shape, [2, 1, 1, 5])
                XCTAssertTrue(logits.array.allSatisfy(\.isFinite), "\(size) px")
                model.backward(logits)
            }
            let g = UnsafeBufferPointer(start: model.store.gradients, count: model.parameterCount)
            XCTAssertTrue(g.allSatisfy(\.isFinite), "\(size) px gradients")
            XCTAssertEqual(model.forward(x, mode: .eval).shape, [2, 1, 1, 5])
        }
    }
}
