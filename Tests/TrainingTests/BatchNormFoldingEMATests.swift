import Kernels
import NN
import Training
import XCTest

/// Note [BatchNorm folding]: the EMA model's folded weights follow `ModelEMA.update` and
/// `copy(from:)` (which write its store through the mutable accessors, Note [Parameter
/// version]): its next eval equals an unfolded eval of the averaged weights.
final class BatchNormFoldingEMATests: XCTestCase {
    func testEMAEvaluationUsesTheAveragedWeights() throws {
        let model = try ClassifierModel(architecture: "resnet18", numClasses: 10, stem: .imagenet, seed: 1)
        let ema = try ModelEMA(like: model, decay: 0.5)
        let x = Tensor(n: 2, h: 32, w: 32, c: 3)
        var rng = SplitMix64(seed: 3)
        for i in 0..<x.count { x.pointer[i] = Float(rng.nextNormal()) }
        func unfolded(_ m: ClassifierModel) -> [Float] {
            m.store.foldsBatchNormInEval = false
            defer { m.store.foldsBatchNormInEval = true }
            return m.forward(x, mode: .eval).array
        }
        func relative(_ a: [Float], _ b: [Float]) -> Double {
            let scale = Double(b.map { abs($0) }.max() ?? 0)
            return (zip(a, b).map { abs(Double($0) - Double($1)) }.max() ?? 0) / scale
        }
        let first = ema.model.forward(x, mode: .eval).array
        // The model moves (a train forward changes its running statistics, a write its weights).
        _ = model.forward(x, mode: .train)
        let p = model.store.parameter(named: "layer1.0.conv1.weight")!
        for i in 0..<p.count { model.store.value(p)[i] *= 1.5 }
        ema.update(from: model)
        let updated = ema.model.forward(x, mode: .eval).array
        XCTAssertGreaterThan(relative(first, unfolded(ema.model)), 1e-3, "the update changed nothing")
        XCTAssertLessThanOrEqual(relative(updated, unfolded(ema.model)), 1e-5, "stale fold after ModelEMA.update")
        ema.copy(from: model)
        XCTAssertLessThanOrEqual(relative(ema.model.forward(x, mode: .eval).array, unfolded(model)), 1e-5,
                                 "stale fold after ModelEMA.copy")
    }
}
