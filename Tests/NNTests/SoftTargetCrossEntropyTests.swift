import Foundation
import Kernels
import NN
import XCTest

/// SoftmaxCrossEntropy against [N, K] soft targets (timm's SoftTargetCrossEntropy).
final class SoftTargetCrossEntropyTests: XCTestCase {
    /// Rows of a random distribution (positive, summing to 1).
    func randomTargets(n: Int, k: Int, seed: UInt64) -> [Float] {
        var rng = SplitMix64(seed: seed)
        var t = [Float](repeating: 0, count: n * k)
        for i in 0..<n {
            var sum: Float = 0
            for j in 0..<k { t[i * k + j] = rng.nextUniform() + 0.01; sum += t[i * k + j] }
            for j in 0..<k { t[i * k + j] /= sum }
        }
        return t
    }

    /// mean over samples of −Σ t·log softmax(z), in Double.
    func reference(_ z: Tensor, _ t: [Float]) -> Double {
        let k = z.c
        var total = 0.0
        for i in 0..<z.n {
            let row = (0..<k).map { Double(z.pointer[i * k + $0]) }
            let m = row.max()!
            let lse = m + log(row.reduce(0) { $0 + exp($1 - m) })
            for j in 0..<k { total -= Double(t[i * k + j]) * (row[j] - lse) }
        }
        return total / Double(z.n)
    }

    func testLossMatchesTheDefinition() {
        let z = randomTensor(n: 5, h: 1, w: 1, c: 7, seed: 3, scale: 4)
        let t = randomTargets(n: 5, k: 7, seed: 4)
        let ce = SoftmaxCrossEntropy()
        let loss = t.withUnsafeBufferPointer { ce.forward(logits: z, targets: $0.baseAddress!) }
        XCTAssertEqual(Double(loss), reference(z, t), accuracy: 1e-5)
        XCTAssertEqual(ce.lossSum / 5, reference(z, t), accuracy: 1e-7)
    }

    /// Smoothed one-hot targets give exactly the integer-label loss with label smoothing.
    func testSmoothedOneHotTargetsEqualLabelSmoothing() {
        let z = randomTensor(n: 4, h: 1, w: 1, c: 6, seed: 9, scale: 3)
        let labels: [Int32] = [2, 0, 5, 2]
        let eps: Float = 0.1, k = 6
        var t = [Float](repeating: eps / Float(k), count: 4 * k)
        for i in 0..<4 { t[i * k + Int(labels[i])] = 1 - eps + eps / Float(k) }
        let hard = SoftmaxCrossEntropy(labelSmoothing: eps), soft = SoftmaxCrossEntropy()
        let hardLoss = labels.withUnsafeBufferPointer { hard.forward(logits: z, labels: $0.baseAddress!) }
        let softLoss = t.withUnsafeBufferPointer { soft.forward(logits: z, targets: $0.baseAddress!) }
        XCTAssertEqual(softLoss, hardLoss, accuracy: 1e-6)
        let dHard = hard.backward().array, dSoft = soft.backward().array
        for i in dHard.indices { XCTAssertEqual(dSoft[i], dHard[i], accuracy: 1e-7) }
        XCTAssertEqual(soft.correctCount(topK: 1), hard.correctCount(topK: 1))
    }

    /// backward = (softmax − t)/N, checked by central differences of the Double loss sum.
    func testGradientMatchesFiniteDifferences() {
        let z = randomTensor(n: 4, h: 1, w: 1, c: 6, seed: 71, scale: 3)
        let t = randomTargets(n: 4, k: 6, seed: 72)
        let ce = SoftmaxCrossEntropy()
        let loss: () -> Double = {
            _ = t.withUnsafeBufferPointer { ce.forward(logits: z, targets: $0.baseAddress!) }
            return ce.lossSum / 4
        }
        _ = loss()
        let analytic = ce.backward().array
        let result = GradientChecker(step: 1e-2, tolerance: 1e-3).compare("logits", analytic: analytic,
                                                                       values: z.pointer, loss: loss)
        XCTAssertTrue(result.passed, result.summary)
    }

    /// After a soft forward, accuracy counts against each target's largest entry.
    func testAccuracyUsesTheDominantTargetClass() {
        let z = Tensor(n: 2, h: 1, w: 1, c: 3, values: [3, 1, 0, 0, 1, 3])
        let t: [Float] = [0.7, 0.3, 0, 0.6, 0, 0.4]
        let ce = SoftmaxCrossEntropy()
        _ = t.withUnsafeBufferPointer { ce.forward(logits: z, targets: $0.baseAddress!) }
        XCTAssertTrue(ce.isCorrect(sample: 0, topK: 1))
        XCTAssertFalse(ce.isCorrect(sample: 1, topK: 1))
        XCTAssertEqual(ce.correctCount(topK: 1), 1)
    }
}
