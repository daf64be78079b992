import Kernels
import NN
import XCTest

/// What the trainer relies on beyond torch parity: the folded 1/worldSize, partial updates of a
/// frozen backbone, the weight-decay selection and the named state buffers.
final class OptimizerOptionsTests: XCTestCase {
    /// A linear weight, its bias, a BatchNorm pair and a 4-D convolution weight.
    func makeStore(seed: UInt64 = 5) -> ParameterStore {
        let store = ParameterStore()
        store.addParameter("fc.weight", shape: [3, 4], initializer: .uniform(bound: 1))
        store.addParameter("fc.bias", shape: [3], initializer: .uniform(bound: 1), isWeight: false)
        store.addParameter("bn.weight", shape: [2], initializer: .uniform(bound: 1), isWeight: false)
        store.addParameter("bn.bias", shape: [2], initializer: .uniform(bound: 1), isWeight: false)
        store.addParameter("conv.weight", shape: [2, 3, 3, 3], layout: .convOHWI, initializer: .uniform(bound: 1))
        store.finalize(seed: seed)
        return store
    }

    typealias MakeOptimizer = (ParameterStore) -> any Optimizer
    let kinds: [(String, MakeOptimizer)] = [
        ("sgd", { SGD(store: $0, momentum: 0.9, weightDecay: 1e-2) }),
        ("sgd dampening", { SGD(store: $0, momentum: 0.9, dampening: 0.3, weightDecay: 1e-2) }),
        ("sgd nesterov", { SGD(store: $0, momentum: 0.9, weightDecay: 1e-2, nesterov: true) }),
        ("adam", { Adam(store: $0, weightDecay: 1e-2) }),
        ("adamw", { Adam(store: $0, weightDecay: 5e-2, decoupledWeightDecay: true) }),
    ]

    func values(_ store: ParameterStore) -> [Float] {
        Array(UnsafeBufferPointer(start: store.values, count: store.parameterCount))
    }

    /// Summed gradients of 4 ranks with gradientScale 1/4 step exactly like their mean.
    func testGradientScaleEqualsPreAveragedGradients() {
        let worldSize = 4
        for (name, make) in kinds {
            let summed = makeStore(), averaged = makeStore()
            let a = make(summed), b = make(averaged)
            var rng = SplitMix64(seed: 17)
            for step in 0..<5 {
                for i in 0..<summed.parameterCount {
                    var sum: Float = 0
                    for _ in 0..<worldSize { sum += Float(rng.nextNormal()) }
                    summed.gradients[i] = sum
                    averaged.gradients[i] = sum / Float(worldSize)
                }
                let lr: Float = 0.05 / Float(step + 1)
                a.step(learningRate: lr, gradientScale: 1 / Float(worldSize), range: nil)
                b.step(learningRate: lr, gradientScale: 1, range: nil)
            }
            XCTAssertEqual(values(summed), values(averaged), name)
        }
    }

    /// A step over a range touches only that range's parameters and state, and inside it does
    /// what a full step does.
    func testRangeRestrictsTheUpdate() {
        for (name, make) in kinds {
            let partial = makeStore(), full = makeStore()
            let a = make(partial), b = make(full)
            let head = partial.parameter(named: "conv.weight")!
            let range = head.offset..<(head.offset + head.count)
            let before = values(partial)
            var rng = SplitMix64(seed: 3)
            for step in 0..<3 {
                for i in 0..<partial.parameterCount {
                    let g = Float(rng.nextNormal())
                    partial.gradients[i] = g
                    full.gradients[i] = g
                }
                a.step(learningRate: 0.1, gradientScale: 1, range: range)
                b.step(learningRate: 0.1, gradientScale: 1, range: nil)
                XCTAssertEqual(a.stepCount, step + 1)
            }
            let after = values(partial), reference = values(full)
            XCTAssertEqual(Array(after[..<range.lowerBound]), Array(before[..<range.lowerBound]), name)
            XCTAssertEqual(Array(after[range]), Array(reference[range]), name)
            XCTAssertNotEqual(Array(after[range]), Array(before[range]), name)
            for state in a.stateBuffers {
                let untouched = UnsafeBufferPointer(start: state.pointer, count: range.lowerBound)
                XCTAssertTrue(untouched.allSatisfy { $0 == 0 }, "\(name) \(state.name) outside the range")
            }
        }
    }

    func testNoDecayOnNormAndBiasFollowsTimm() {
        let store = makeStore()
        let decays = store.parameters.filter(WeightDecaySelection.noDecayOnNormAndBias).map(\.name)
        XCTAssertEqual(decays, ["fc.weight", "conv.weight"])
        XCTAssertTrue(store.parameters.allSatisfy(WeightDecaySelection.everyParameter))
    }

    /// With zero gradients only weight decay moves a parameter, so the excluded ones stay put.
    func testExcludedParametersSeeNoDecay() {
        let makers: [(String, (ParameterStore) -> any Optimizer)] = [
            ("sgd", { SGD(store: $0, momentum: 0.9, weightDecay: 0.1,
                          weightDecayApplies: WeightDecaySelection.noDecayOnNormAndBias) }),
            ("adamw", { Adam(store: $0, weightDecay: 0.1, decoupledWeightDecay: true,
                             weightDecayApplies: WeightDecaySelection.noDecayOnNormAndBias) }),
        ]
        for (name, make) in makers {
            let store = makeStore()
            let optimizer = make(store)
            let before = values(store)
            store.zeroGradients()
            optimizer.step(learningRate: 0.1, gradientScale: 1, range: nil)
            for p in store.parameters {
                let moved = (p.offset..<(p.offset + p.count)).contains { store.values[$0] != before[$0] }
                XCTAssertEqual(moved, p.shape.count > 1, "\(name) \(p.name)")
            }
        }
    }

    func testStateBuffersAreNamedLikeTorch() {
        let store = makeStore()
        let sgd = SGD(store: store)
        XCTAssertEqual(sgd.stateBuffers.map(\.name), ["momentum_buffer"])
        XCTAssertEqual(sgd.stateBuffers[0].pointer, sgd.momentumBuffer)
        XCTAssertEqual(Adam(store: store).stateBuffers.map(\.name), ["exp_avg", "exp_avg_sq"])
    }
}
