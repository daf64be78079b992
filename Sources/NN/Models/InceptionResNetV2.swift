import Kernels

// Shape letters: N batch, H/W height/width, C channels (activations NHWC).
// Topology, parameter names and initialisation follow timm 1.0.31
// (timm/models/inception_resnet_v2.py, `inception_resnet_v2`), so state dicts map 1:1:
// every convolution but the residual projections is a ConvNormAct `<name>.conv` (no bias) +
// `<name>.bn` (BatchNorm eps 0.001) + ReLU; the classifier is `classif`. timm adds no init of
// its own, so every layer keeps PyTorch's default (Conv2d and Linear U(±1/√fan_in), BatchNorm
// weight 1, bias 0).

/// timm's ConvNormAct as configured by InceptionResnetV2: conv (no bias) → BatchNorm2d(eps
/// 0.001) → ReLU (fused into the BatchNorm, Note [Fused activation]), parameters
/// `<name>.conv.weight` and `<name>.bn.*`.
func convNormAct(_ store: ParameterStore, _ name: String, _ inChannels: Int, _ outChannels: Int,
                 kernel: (Int, Int), stride: Int = 1, padding: (Int, Int) = (0, 0),
                 workspace: FloatStorage) -> Sequential {
    let conv = Conv2d(store, name: "\(name).conv", inChannels: inChannels, outChannels: outChannels,
                      kernelSize: kernel, stride: stride, padding: padding, weightInit: .pytorchDefault,
                      workspace: workspace)
    let bn = BatchNorm2d(store, name: "\(name).bn", channels: outChannels, eps: InceptionResNetV2.batchNormEps,
                         activation: .relu)
    conv.foldInEval(bn)  // Note [BatchNorm folding]
    return Sequential([conv, bn])
}

/// Square-kernel shorthand for `convNormAct`.
func convNormAct(_ store: ParameterStore, _ name: String, _ inChannels: Int, _ outChannels: Int,
                 kernel: Int, stride: Int = 1, padding: Int = 0, workspace: FloatStorage) -> Sequential {
    convNormAct(store, name, inChannels, outChannels, kernel: (kernel, kernel), stride: stride,
                padding: (padding, padding), workspace: workspace)
}

/// Inception-ResNet's scaled residual (timm Block35 / Block17 / Block8):
///   out = relu(x + scale · conv2d(concat(branches(x))))
/// with `conv2d` a 1×1 convolution WITH bias and no BatchNorm, projecting the concatenation back
/// to x's channels; the network's last Block8 has no ReLU (`relu: false`).
///
/// Backward: dSum = relu'(dOut) (or dOut), the projection receives scale · dSum, and the input
/// gradient is the branches' input gradient plus dSum (the identity path).
///
/// The sum and the ReLU are written over the projection's output, which Conv2d's backward does
/// not read, so the block keeps one tensor where a separate sum and ReLU would keep three.
public final class ScaledResidualBlock: Layer {
    public let branches: Concat
    public let projection: Conv2d
    public let scale: Float
    public let appliesReLU: Bool
    /// The projection's output after the in-place sum (and ReLU): the block's output.
    private var output: Tensor?

    public init(branches: Concat, projection: Conv2d, scale: Float, relu: Bool) {
        self.branches = branches
        self.projection = projection
        self.scale = scale
        appliesReLU = relu
    }

    public func forward(_ x: Tensor, mode: Mode) -> Tensor {
        let y = projection.forward(branches.forward(x, mode: mode), mode: mode)
        precondition(y.hasSameShape(as: x), "ScaledResidualBlock: projection output \(y.shape) ≠ input \(x.shape)")
        let s = scale, a = UnsafePointer(x.pointer), out = y.pointer
        if appliesReLU {
            for i in 0..<x.count { out[i] = max(a[i] + s * out[i], 0) }
        } else {
            for i in 0..<x.count { out[i] = a[i] + s * out[i] }
        }
        output = y
        return y
    }

    public func backward(_ outputGradient: Tensor) -> Tensor {
        guard let output else { preconditionFailure("ScaledResidualBlock.backward without a forward") }
        let dSum = appliesReLU ? reluGradient(outputGradient, output: output) : outputGradient
        // dSum is kept for the identity path; the projection consumes a scaled copy.
        let scaled = dSum.acquireFromSamePool(like: dSum)
        let s = scale, g = UnsafePointer(dSum.pointer), out = scaled.pointer
        for i in 0..<dSum.count { out[i] = s * g[i] }
        let dBranches = branches.backward(projection.backward(scaled))
        return sumGradients(dBranches, dSum)
    }

    /// timm Block35 (35×35 grid at 299 px): 320 channels, branches 1×1 32 | 1×1 32 → 3×3 32 |
    /// 1×1 32 → 3×3 48 → 3×3 64, projection 128 → 320.
    public static func block35(_ store: ParameterStore, name: String, scale: Float = 0.17,
                               workspace: FloatStorage) -> ScaledResidualBlock {
        let branches = Concat([
            convNormAct(store, "\(name).branch0", 320, 32, kernel: 1, workspace: workspace),
            Sequential([
                convNormAct(store, "\(name).branch1.0", 320, 32, kernel: 1, workspace: workspace),
                convNormAct(store, "\(name).branch1.1", 32, 32, kernel: 3, padding: 1, workspace: workspace),
            ]),
            Sequential([
                convNormAct(store, "\(name).branch2.0", 320, 32, kernel: 1, workspace: workspace),
                convNormAct(store, "\(name).branch2.1", 32, 48, kernel: 3, padding: 1, workspace: workspace),
                convNormAct(store, "\(name).branch2.2", 48, 64, kernel: 3, padding: 1, workspace: workspace),
            ]),
        ])
        return ScaledResidualBlock(branches: branches, projection: projection(store, name, 128, 320, workspace),
                                   scale: scale, relu: true)
    }

    /// timm Block17 (17×17 grid): 1088 channels, branches 1×1 192 | 1×1 128 → 1×7 160 → 7×1 192,
    /// projection 384 → 1088.
    public static func block17(_ store: ParameterStore, name: String, scale: Float = 0.10,
                               workspace: FloatStorage) -> ScaledResidualBlock {
        let branches = Concat([
            convNormAct(store, "\(name).branch0", 1088, 192, kernel: 1, workspace: workspace),
            Sequential([
                convNormAct(store, "\(name).branch1.0", 1088, 128, kernel: 1, workspace: workspace),
                convNormAct(store, "\(name).branch1.1", 128, 160, kernel: (1, 7), padding: (0, 3), workspace: workspace),
                convNormAct(store, "\(name).branch1.2", 160, 192, kernel: (7, 1), padding: (3, 0), workspace: workspace),
            ]),
        ])
        return ScaledResidualBlock(branches: branches, projection: projection(store, name, 384, 1088, workspace),
                                   scale: scale, relu: true)
    }

    /// timm Block8 (8×8 grid): 2080 channels, branches 1×1 192 | 1×1 192 → 1×3 224 → 3×1 256,
    /// projection 448 → 2080. timm's default scale is 1.0 (the final `block8`); the repeats use 0.20.
    public static func block8(_ store: ParameterStore, name: String, scale: Float = 1.0, relu: Bool = true,
                              workspace: FloatStorage) -> ScaledResidualBlock {
        let branches = Concat([
            convNormAct(store, "\(name).branch0", 2080, 192, kernel: 1, workspace: workspace),
            Sequential([
                convNormAct(store, "\(name).branch1.0", 2080, 192, kernel: 1, workspace: workspace),
                convNormAct(store, "\(name).branch1.1", 192, 224, kernel: (1, 3), padding: (0, 1), workspace: workspace),
                convNormAct(store, "\(name).branch1.2", 224, 256, kernel: (3, 1), padding: (1, 0), workspace: workspace),
            ]),
        ])
        return ScaledResidualBlock(branches: branches, projection: projection(store, name, 448, 2080, workspace),
                                   scale: scale, relu: relu)
    }

    /// `<block>.conv2d`: nn.Conv2d(…, kernel_size=1) with its default bias.
    static func projection(_ store: ParameterStore, _ name: String, _ inChannels: Int, _ outChannels: Int,
                           _ workspace: FloatStorage) -> Conv2d {
        Conv2d(store, name: "\(name).conv2d", inChannels: inChannels, outChannels: outChannels, kernelSize: 1,
               bias: true, weightInit: .pytorchDefault, workspace: workspace)
    }
}

/// Inception-ResNet-v2 (Szegedy et al. 2016, arXiv:1602.07261) as timm builds `inception_resnet_v2`.
public enum InceptionResNetV2 {
    /// timm's norm_eps default for this model.
    public static let batchNormEps: Float = 1e-3
    public static let features = 1536
    /// The smallest input the unpadded stride-2 stages accept: 75 px reaches a 1×1 grid after
    /// mixed_7a (75 → 37 → 35 → 35 → 17 → 17 → 15 → 7 → 3 → 1); 74 px would not.
    public static let minimumImageSize = 75

    /// Everything before the classifier, ending in global average pooling (N×1×1×1536), with
    /// parameters registered in timm's state-dict order. The classifier `classif` is added by
    /// `ClassifierModel`, after it.
    public static func makeBackbone(_ store: ParameterStore) -> (backbone: Sequential, features: Int) {
        let ws = FloatStorage()  // one im2col workspace for every convolution (Note [Shared workspace])
        var layers: [any Layer] = [
            convNormAct(store, "conv2d_1a", 3, 32, kernel: 3, stride: 2, workspace: ws),
            convNormAct(store, "conv2d_2a", 32, 32, kernel: 3, workspace: ws),
            convNormAct(store, "conv2d_2b", 32, 64, kernel: 3, padding: 1, workspace: ws),
            MaxPool2d(kernelSize: 3, stride: 2),
            convNormAct(store, "conv2d_3b", 64, 80, kernel: 1, workspace: ws),
            convNormAct(store, "conv2d_4a", 80, 192, kernel: 3, workspace: ws),
            MaxPool2d(kernelSize: 3, stride: 2),
            // Mixed_5b: 192 → 96 + 64 + 96 + 64 = 320
            Concat([
                convNormAct(store, "mixed_5b.branch0", 192, 96, kernel: 1, workspace: ws),
                Sequential([
                    convNormAct(store, "mixed_5b.branch1.0", 192, 48, kernel: 1, workspace: ws),
                    convNormAct(store, "mixed_5b.branch1.1", 48, 64, kernel: 5, padding: 2, workspace: ws),
                ]),
                Sequential([
                    convNormAct(store, "mixed_5b.branch2.0", 192, 64, kernel: 1, workspace: ws),
                    convNormAct(store, "mixed_5b.branch2.1", 64, 96, kernel: 3, padding: 1, workspace: ws),
                    convNormAct(store, "mixed_5b.branch2.2", 96, 96, kernel: 3, padding: 1, workspace: ws),
                ]),
                Sequential([
                    AvgPool2d(kernelSize: 3, stride: 1, padding: 1, countIncludePad: false),
                    convNormAct(store, "mixed_5b.branch3.1", 192, 64, kernel: 1, workspace: ws),
                ]),
            ]),
        ]
        for i in 0..<10 { layers.append(ScaledResidualBlock.block35(store, name: "repeat.\(i)", workspace: ws)) }
        // Mixed_6a: 320 → 384 + 384 + 320 (max-pool) = 1088
        layers.append(Concat([
            convNormAct(store, "mixed_6a.branch0", 320, 384, kernel: 3, stride: 2, workspace: ws),
            Sequential([
                convNormAct(store, "mixed_6a.branch1.0", 320, 256, kernel: 1, workspace: ws),
                convNormAct(store, "mixed_6a.branch1.1", 256, 256, kernel: 3, padding: 1, workspace: ws),
                convNormAct(store, "mixed_6a.branch1.2", 256, 384, kernel: 3, stride: 2, workspace: ws),
            ]),
            MaxPool2d(kernelSize: 3, stride: 2),
        ]))
        for i in 0..<20 { layers.append(ScaledResidualBlock.block17(store, name: "repeat_1.\(i)", workspace: ws)) }
        // Mixed_7a: 1088 → 384 + 288 + 320 + 1088 (max-pool) = 2080
        layers.append(Concat([
            Sequential([
                convNormAct(store, "mixed_7a.branch0.0", 1088, 256, kernel: 1, workspace: ws),
                convNormAct(store, "mixed_7a.branch0.1", 256, 384, kernel: 3, stride: 2, workspace: ws),
            ]),
            Sequential([
                convNormAct(store, "mixed_7a.branch1.0", 1088, 256, kernel: 1, workspace: ws),
                convNormAct(store, "mixed_7a.branch1.1", 256, 288, kernel: 3, stride: 2, workspace: ws),
            ]),
            Sequential([
                convNormAct(store, "mixed_7a.branch2.0", 1088, 256, kernel: 1, workspace: ws),
                convNormAct(store, "mixed_7a.branch2.1", 256, 288, kernel: 3, padding: 1, workspace: ws),
                convNormAct(store, "mixed_7a.branch2.2", 288, 320, kernel: 3, stride: 2, workspace: ws),
            ]),
            MaxPool2d(kernelSize: 3, stride: 2),
        ]))
        for i in 0..<9 {
            layers.append(ScaledResidualBlock.block8(store, name: "repeat_2.\(i)", scale: 0.20, workspace: ws))
        }
        layers.append(ScaledResidualBlock.block8(store, name: "block8", scale: 1.0, relu: false, workspace: ws))
        layers.append(convNormAct(store, "conv2d_7b", 2080, features, kernel: 1, workspace: ws))
        layers.append(GlobalAvgPool2d())
        return (Sequential(layers), features)
    }
}
