import Foundation
import Kernels
import NN
import XCTest

/// torch.optim.SGD / Adam / AdamW step for step: trajectories of 10 steps on a fixed gradient
/// sequence with a per-step learning rate, made by Fixtures/optim/make_optim_fixtures.py.
/// Every step's parameters must be within 1e-6 of torch's.
final class OptimizerParityTests: XCTestCase {
    struct Fixture: Decodable {
        struct Parameter: Decodable {
            let name: String
            let shape: [Int]
            let initial: [Double]
        }
        struct Case: Decodable {
            let name: String
            let optimizer: String
            let momentum: Float
            let dampening: Float
            let nesterov: Bool
            let weight_decay: Float
            let betas: [Float]
            let eps: Float
            let no_decay_on_norm_and_bias: Bool
            let lr: [Double]
            let params_after_step: [[Double]]
        }
        let parameters: [Parameter]
        let gradients: [[Double]]
        let cases: [Case]
    }

    static let fixturePath = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("Fixtures/optim/optim_fixtures.json")

    static func loadFixture() throws -> Fixture {
        try JSONDecoder().decode(Fixture.self, from: Data(contentsOf: fixturePath))
    }

    func makeStore(_ fixture: Fixture) -> ParameterStore {
        let store = ParameterStore()
        for p in fixture.parameters { store.addParameter(p.name, shape: p.shape, initializer: .constant(0)) }
        store.finalize(seed: 0)
        let initial = fixture.parameters.flatMap(\.initial)
        for i in initial.indices { store.values[i] = Float(initial[i]) }
        return store
    }

    func makeOptimizer(_ c: Fixture.Case, store: ParameterStore) -> any Optimizer {
        let noDecayOnNormAndBias = c.no_decay_on_norm_and_bias
        let applies = { (p: ParameterEntry) -> Bool in
            noDecayOnNormAndBias ? WeightDecaySelection.noDecayOnNormAndBias(p) : true
        }
        switch c.optimizer {
        case "sgd":
            return SGD(store: store, momentum: c.momentum, dampening: c.dampening, weightDecay: c.weight_decay,
                       nesterov: c.nesterov, weightDecayApplies: applies)
        case "adam", "adamw":
            return Adam(store: store, beta1: c.betas[0], beta2: c.betas[1], epsilon: c.eps,
                        weightDecay: c.weight_decay, decoupledWeightDecay: c.optimizer == "adamw",
                        weightDecayApplies: applies)
        default:
            fatalError("unknown optimizer \(c.optimizer) in the fixture")
        }
    }

    func testEveryCaseMatchesTorchAtEveryStep() throws {
        let fixture = try Self.loadFixture()
        XCTAssertEqual(fixture.cases.count, 9)
        for c in fixture.cases {
            let store = makeStore(fixture)
            let optimizer = makeOptimizer(c, store: store)
            var worstOverSteps = 0.0
            for step in 0..<c.lr.count {
                let g = fixture.gradients[step]
                for i in g.indices { store.gradients[i] = Float(g[i]) }
                optimizer.step(learningRate: Float(c.lr[step]), gradientScale: 1, range: nil)
                let ours = Array(UnsafeBufferPointer(start: store.values, count: store.parameterCount))
                let worst = maxAbsDifference(ours, c.params_after_step[step])
                worstOverSteps = max(worstOverSteps, worst)
                XCTAssertLessThanOrEqual(worst, 1e-6, "\(c.name) step \(step + 1)")
            }
            XCTAssertEqual(optimizer.stepCount, c.lr.count)
            print("\(c.name): max |ours − torch| over \(c.lr.count) steps \(worstOverSteps)")
        }
    }
}
