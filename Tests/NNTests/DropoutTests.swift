import Kernels
import NN
import XCTest

final class DropoutTests: XCTestCase {
    /// With the seed fixed the mask is fixed, so the layer is linear and finite differences apply.
    func testGradientCheck() {
        let dropout = Dropout(probability: 0.3)
        dropout.randomSeed = 17
        let input = randomTensor(n: 3, h: 1, w: 1, c: 40, seed: 5)
        assertGradients(GradientChecker().check(dropout, store: nil, input: input), "Dropout")
    }

    /// torch.nn.Dropout: about p of the elements are zeroed, the rest scaled by 1/(1 − p);
    /// evaluation is the identity; another seed gives another mask.
    func testDropsAboutPAndScalesTheRest() {
        let dropout = Dropout(probability: 0.2)
        let x = Tensor(n: 100, h: 1, w: 1, c: 100)
        x.pointer.update(repeating: 2, count: x.count)
        dropout.randomSeed = 1
        let y = dropout.forward(x, mode: .train).array
        let zeros = y.filter { $0 == 0 }.count
        XCTAssertEqual(Double(zeros) / Double(y.count), 0.2, accuracy: 0.02)
        XCTAssertTrue(y.allSatisfy { $0 == 0 || abs($0 - 2 / 0.8) < 1e-6 })
        dropout.randomSeed = 2
        XCTAssertNotEqual(dropout.forward(x, mode: .train).array, y)
        XCTAssertEqual(dropout.forward(x, mode: .eval).array, x.array)
    }
}
