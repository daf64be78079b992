import Kernels
import NN
import XCTest

/// The residual blocks compose conv, BatchNorm, ReLU and the shortcut; their backward (split
/// into branch and shortcut, gradients summed) is checked as a whole.
final class ResidualBlockGradientTests: XCTestCase {
    func check(_ block: any Layer, store: ParameterStore, inChannels: Int, label: String, step: Float = 1e-3,
               batch: Int = 4, size: Int = 6) {
        store.finalize(seed: 4)
        let input = randomTensor(n: batch, h: size, w: size, c: inChannels, seed: 21)
        var checker = GradientChecker()
        checker.step = step
        // BatchNorm over a tiny batch amplifies Float rounding; a misrouted gradient errs by ~1.
        checker.tolerance = 5e-2
        checker.kinkThreshold = 0.05
        assertGradients(checker.check(block, store: store, input: input), label)
    }

    func checkBasic(inChannels: Int, channels: Int, stride: Int) {
        let store = ParameterStore()
        let block = BasicBlock(store, name: "b", inChannels: inChannels, channels: channels, stride: stride,
                               workspace: FloatStorage())
        check(block, store: store, inChannels: inChannels, label: "BasicBlock \(inChannels)→\(channels)/\(stride)")
    }

    func checkBottleneck(inChannels: Int, width: Int, stride: Int) {
        let store = ParameterStore()
        let block = Bottleneck(store, name: "b", inChannels: inChannels, width: width, stride: stride,
                               workspace: FloatStorage())
        // Three ReLUs per block, and a weight's step moves its whole channel through BatchNorm:
        // fewer pixels and a smaller step keep kink crossings rare (Float noise stays far below
        // the tolerance).
        check(block, store: store, inChannels: inChannels, label: "Bottleneck \(inChannels)→\(width)×4/\(stride)",
              step: 2.5e-4, batch: 3, size: 4)
    }

    func testBasicBlockIdentityShortcut() { checkBasic(inChannels: 4, channels: 4, stride: 1) }
    func testBasicBlockDownsampleShortcut() { checkBasic(inChannels: 3, channels: 6, stride: 2) }
    func testBottleneckIdentityShortcut() { checkBottleneck(inChannels: 16, width: 4, stride: 1) }
    func testBottleneckDownsampleShortcut() { checkBottleneck(inChannels: 4, width: 3, stride: 2) }
}
