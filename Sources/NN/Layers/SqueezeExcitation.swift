import Kernels

// Shape letters: N batch, H/W height/width, C channels, S squeeze channels.

/// torchvision.ops.SqueezeExcitation as EfficientNet builds it (activation SiLU, scale
/// activation Sigmoid):
///   s = σ(fc2(SiLU(fc1(avgpool(x)))))  [N, 1, 1, C],   y = x · s  (broadcast over H, W)
/// fc1 and fc2 are 1×1 convolutions with bias (`<name>.fc1.weight` [S, C, 1, 1], `.fc1.bias`,
/// `.fc2.*`), so the state dict matches torchvision's; on the pooled N×1×1×C input they are
/// plain GEMMs (Conv2d's pointwise path).
///
/// x reaches y by two paths (directly and through the pooled scale), so backward sums them:
///   dx = dy·s + avgpool′(fc1′(SiLU′(fc2′(σ′(Σ_hw dy·x))))).
public final class SqueezeExcitation: Layer {
    public let channels: Int
    public let squeezeChannels: Int
    let pool = GlobalAvgPool2d()
    let fc1: Conv2d
    let activation = SiLU()
    let fc2: Conv2d
    let scaleActivation = Sigmoid()
    let scale = ChannelScale()

    public init(_ store: ParameterStore, name: String, channels: Int, squeezeChannels: Int,
                workspace: FloatStorage? = nil) {
        self.channels = channels
        self.squeezeChannels = squeezeChannels
        fc1 = Conv2d(store, name: "\(name).fc1", inChannels: channels, outChannels: squeezeChannels, kernelSize: 1,
                     bias: true, workspace: workspace)
        fc2 = Conv2d(store, name: "\(name).fc2", inChannels: squeezeChannels, outChannels: channels, kernelSize: 1,
                     bias: true, workspace: workspace)
    }

    public func forward(_ x: Tensor, mode: Mode) -> Tensor {
        var s = pool.forward(x, mode: mode)
        s = fc1.forward(s, mode: mode)
        s = activation.forward(s, mode: mode)
        s = fc2.forward(s, mode: mode)
        s = scaleActivation.forward(s, mode: mode)
        return scale.forward(x, scale: s, mode: mode)
    }

    public func backward(_ dy: Tensor) -> Tensor {
        let (dDirect, dScale) = scale.backward(dy)
        var g = scaleActivation.backward(dScale)
        g = fc2.backward(g)
        g = activation.backward(g)
        g = fc1.backward(g)
        g = pool.backward(g)
        return sumGradients(dDirect, g)
    }
}
