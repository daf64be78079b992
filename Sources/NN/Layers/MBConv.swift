import Kernels

// Shape letters: N batch, H/W height/width, C channels (E = expanded channels).

/// Conv2d → BatchNorm2d → optional SiLU, named `<name>.0` and `<name>.1` like torchvision's
/// Conv2dNormActivation (bias-free convolution, padding (k − 1)/2). The SiLU is fused into the
/// BatchNorm (Note [Fused activation]).
func convNormActivation(_ store: ParameterStore, name: String, inChannels: Int, outChannels: Int, kernelSize: Int,
                        stride: Int = 1, groups: Int = 1, activation: Bool, workspace: FloatStorage?) -> Sequential {
    let conv = Conv2d(store, name: "\(name).0", inChannels: inChannels, outChannels: outChannels,
                      kernelSize: kernelSize, stride: stride, padding: (kernelSize - 1) / 2, groups: groups,
                      workspace: workspace)
    let bn = BatchNorm2d(store, name: "\(name).1", channels: outChannels, activation: activation ? .silu : .none)
    conv.foldInEval(bn)  // Note [BatchNorm folding]
    return Sequential([conv, bn])
}

/// torchvision's MBConv (mobile inverted bottleneck, EfficientNet-B0…B7):
///   block = [expand 1×1 conv+BN+SiLU (only when E ≠ C)] → depthwise k×k stride-s conv+BN+SiLU
///           → SqueezeExcitation(E, max(1, C/4)) → project 1×1 conv+BN (no activation)
///   y = StochasticDepth(block(x)) + x   when stride 1 and C == out, else y = block(x).
/// Parameters are `<name>.block.<i>.…` with i counting the block's modules, as torchvision's
/// nn.Sequential does (so the depthwise conv is `block.0` when there is no expansion).
public final class MBConv: CompositeLayer {
    public let inChannels: Int
    public let outChannels: Int
    public let expandedChannels: Int
    public let usesResidual: Bool
    public let block: Sequential
    public let stochasticDepth: StochasticDepth

    /// `expandedChannels` is torchvision's `adjust_channels(input_channels, expand_ratio)`.
    public init(_ store: ParameterStore, name: String, inChannels: Int, outChannels: Int, expandedChannels: Int,
                kernelSize: Int, stride: Int, stochasticDepthProbability: Float, workspace: FloatStorage?) {
        precondition(stride == 1 || stride == 2, "\(name): illegal stride \(stride)")
        self.inChannels = inChannels
        self.outChannels = outChannels
        self.expandedChannels = expandedChannels
        usesResidual = stride == 1 && inChannels == outChannels
        var layers: [any Layer] = []
        func next() -> String { "\(name).block.\(layers.count)" }
        if expandedChannels != inChannels {
            layers.append(convNormActivation(store, name: next(), inChannels: inChannels, outChannels: expandedChannels,
                                             kernelSize: 1, activation: true, workspace: workspace))
        }
        layers.append(convNormActivation(store, name: next(), inChannels: expandedChannels,
                                         outChannels: expandedChannels, kernelSize: kernelSize, stride: stride,
                                         groups: expandedChannels, activation: true, workspace: workspace))
        // torchvision: squeeze_channels = max(1, cnf.input_channels // 4), of the block's INPUT.
        layers.append(SqueezeExcitation(store, name: next(), channels: expandedChannels,
                                        squeezeChannels: max(1, inChannels / 4), workspace: workspace))
        layers.append(convNormActivation(store, name: next(), inChannels: expandedChannels, outChannels: outChannels,
                                         kernelSize: 1, activation: false, workspace: workspace))
        block = Sequential(layers)
        stochasticDepth = StochasticDepth(probability: stochasticDepthProbability)
    }

    /// Only a residual block's stochastic depth acts (torchvision applies it nowhere else), so
    /// only that one is exposed for reseeding.
    public var sublayers: [any Layer] { usesResidual ? [block, stochasticDepth] : [block] }

    /// The block ends in the projection's BatchNorm, whose backward does not read its output
    /// (Note [Fused activation]), so stochastic depth and the shortcut are applied in place
    /// there, as torchvision's `result += input` does: the block's output is that one tensor.
    public func forward(_ x: Tensor, mode: Mode) -> Tensor {
        let main = block.forward(x, mode: mode)
        guard usesResidual else { return main }
        stochasticDepth.forwardInPlace(main, mode: mode)
        addForward(main, x, into: main)
        return main
    }

    /// dy reaches both the block (through stochastic depth) and the shortcut, so it is retained
    /// for the second use (Note [Gradient pool]).
    public func backward(_ dy: Tensor) -> Tensor {
        guard usesResidual else { return block.backward(dy) }
        dy.retain()
        let dMain = block.backward(stochasticDepth.backward(dy))
        return sumGradients(dMain, dy)
    }
}
