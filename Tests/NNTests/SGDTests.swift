import Kernels
import NN
import XCTest

/// torch.optim.SGD (dampening 0), written out in Double for a few steps.
final class SGDTests: XCTestCase {
    func reference(p0: [Double], grads: [[Double]], lr: Double, momentum: Double, wd: Double, nesterov: Bool,
                   scale: Double) -> [Double] {
        var p = p0
        var buf: [Double]? = nil
        for g0 in grads {
            var d = zip(g0, p).map { $0 * scale + wd * $1 }
            if momentum != 0 {
                if let b = buf { buf = zip(b, d).map { momentum * $0 + $1 } } else { buf = d }
                d = nesterov ? zip(d, buf!).map { $0 + momentum * $1 } : buf!
            }
            p = zip(p, d).map { $0 - lr * $1 }
        }
        return p
    }

    func check(momentum: Float, wd: Float, nesterov: Bool, scale: Float) {
        let store = ParameterStore()
        store.addParameter("w", shape: [5], initializer: .uniform(bound: 1))
        store.finalize(seed: 11)
        let p0 = (0..<5).map { Double(store.values[$0]) }
        let sgd = SGD(store: store, momentum: momentum, weightDecay: wd, nesterov: nesterov)
        var rng = SplitMix64(seed: 2)
        var grads: [[Double]] = []
        for _ in 0..<4 {
            let g = (0..<5).map { _ in Float(rng.nextNormal()) }
            grads.append(g.map(Double.init))
            for i in 0..<5 { store.gradients[i] = g[i] }
            sgd.step(learningRate: 0.1, gradientScale: scale)
        }
        let expected = reference(p0: p0, grads: grads, lr: 0.1, momentum: Double(momentum), wd: Double(wd),
                                 nesterov: nesterov, scale: Double(scale))
        for i in 0..<5 { XCTAssertEqual(Double(store.values[i]), expected[i], accuracy: 1e-6) }
    }

    func testPlain() { check(momentum: 0, wd: 0, nesterov: false, scale: 1) }
    func testMomentumAndWeightDecay() { check(momentum: 0.9, wd: 5e-4, nesterov: false, scale: 1) }
    func testNesterovWithAveragingScale() { check(momentum: 0.9, wd: 1e-2, nesterov: true, scale: 0.5) }
}
