import Kernels
import NN
import XCTest

/// The residual block composes conv, BatchNorm, ReLU and the shortcut; its backward (split
/// into branch and shortcut, gradients summed) is checked as a whole.
final class BasicBlockGradientTests: XCTestCase {
    func check(inChannels: Int, channels: Int, stride: Int) {
        let store = ParameterStore()
        let block = BasicBlock(store, name: "b", inChannels: inChannels, channels: channels, stride: stride,
                               workspace: FloatStorage())
        store.finalize(seed: 4)
        let input = randomTensor(n: 4, h: 6, w: 6, c: inChannels, seed: 21)
        var checker = GradientChecker()
        checker.step = 1e-3
        // BatchNorm over a tiny batch amplifies Float rounding; a misrouted gradient errs by ~1.
        checker.tolerance = 5e-2
        checker.kinkThreshold = 0.05
        assertGradients(checker.check(block, store: store, input: input), "BasicBlock \(inChannels)→\(channels)/\(stride)")
    }

    func testIdentityShortcut() { check(inChannels: 4, channels: 4, stride: 1) }
    func testDownsampleShortcut() { check(inChannels: 3, channels: 6, stride: 2) }
}
