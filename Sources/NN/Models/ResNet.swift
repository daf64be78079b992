import Kernels

// Shape letters: N batch, H/W height/width, C channels (activations NHWC).
// Topology and parameter names follow torchvision.models.resnet, so state dicts map 1:1.

/// `imagenet`: 7×7 stride-2 conv1 + 3×3 stride-2 max-pool (torchvision).
/// `small`: 3×3 stride-1 conv1 and no max-pool, for 32–64 px inputs (CIFAR-style).
public enum ResNetStem: String, Sendable, CaseIterable {
    case imagenet, small
}

public enum ResNetDepth: Int, Sendable, CaseIterable {
    case resnet18 = 18, resnet34 = 34

    /// Blocks per stage (torchvision `_resnet(BasicBlock, layers=…)`).
    var blocksPerStage: [Int] {
        switch self {
        case .resnet18: return [2, 2, 2, 2]
        case .resnet34: return [3, 4, 6, 3]
        }
    }
}

/// torchvision `BasicBlock`: conv3×3 → BN → ReLU → conv3×3 → BN, plus the identity
/// (or a 1×1 conv + BN `downsample` when the shape changes), then ReLU.
public final class BasicBlock: Layer {
    let conv1: Conv2d, bn1: BatchNorm2d, relu1 = ReLU()
    let conv2: Conv2d, bn2: BatchNorm2d
    let downsample: Sequential?
    let reluOut = ReLU()
    private let sum = Tensor()
    private let inputGradient = Tensor()

    public init(_ store: ParameterStore, name: String, inChannels: Int, channels: Int, stride: Int,
                workspace: FloatStorage) {
        conv1 = Conv2d(store, name: "\(name).conv1", inChannels: inChannels, outChannels: channels,
                       kernelSize: 3, stride: stride, padding: 1, workspace: workspace)
        bn1 = BatchNorm2d(store, name: "\(name).bn1", channels: channels)
        conv2 = Conv2d(store, name: "\(name).conv2", inChannels: channels, outChannels: channels,
                       kernelSize: 3, stride: 1, padding: 1, workspace: workspace)
        bn2 = BatchNorm2d(store, name: "\(name).bn2", channels: channels)
        if stride != 1 || inChannels != channels {
            downsample = Sequential([
                Conv2d(store, name: "\(name).downsample.0", inChannels: inChannels, outChannels: channels,
                       kernelSize: 1, stride: stride, workspace: workspace),
                BatchNorm2d(store, name: "\(name).downsample.1", channels: channels),
            ])
        } else {
            downsample = nil
        }
    }

    public func forward(_ input: Tensor, mode: Mode) -> Tensor {
        var main = conv1.forward(input, mode: mode)
        main = bn1.forward(main, mode: mode)
        main = relu1.forward(main, mode: mode)
        main = conv2.forward(main, mode: mode)
        main = bn2.forward(main, mode: mode)
        let shortcut = downsample?.forward(input, mode: mode) ?? input
        addForward(main, shortcut, into: sum)
        return reluOut.forward(sum, mode: mode)
    }

    public func backward(_ outputGradient: Tensor) -> Tensor {
        let dSum = reluOut.backward(outputGradient)
        var dMain = bn2.backward(dSum)
        dMain = conv2.backward(dMain)
        dMain = relu1.backward(dMain)
        dMain = bn1.backward(dMain)
        dMain = conv1.backward(dMain)
        let dShortcut = downsample?.backward(dSum) ?? dSum
        addForward(dMain, dShortcut, into: inputGradient)
        return inputGradient
    }
}

/// ResNet-18/34 with torchvision's topology and parameter names.
public enum ResNet {
    /// Builds the network, registering parameters in torchvision's state-dict order.
    public static func make(_ store: ParameterStore, depth: ResNetDepth, numClasses: Int,
                            stem: ResNetStem) -> Sequential {
        // One im2col workspace for every convolution (it holds nothing between calls).
        let workspace = FloatStorage()
        var layers: [any Layer] = []
        switch stem {
        case .imagenet:
            layers.append(Conv2d(store, name: "conv1", inChannels: 3, outChannels: 64, kernelSize: 7,
                                 stride: 2, padding: 3, workspace: workspace))
        case .small:
            layers.append(Conv2d(store, name: "conv1", inChannels: 3, outChannels: 64, kernelSize: 3,
                                 stride: 1, padding: 1, workspace: workspace))
        }
        layers.append(BatchNorm2d(store, name: "bn1", channels: 64))
        layers.append(ReLU())
        if stem == .imagenet { layers.append(MaxPool2d(kernelSize: 3, stride: 2, padding: 1)) }
        var inChannels = 64
        for (stage, blocks) in depth.blocksPerStage.enumerated() {
            let channels = 64 << stage
            for block in 0..<blocks {
                let stride = (stage > 0 && block == 0) ? 2 : 1
                layers.append(BasicBlock(store, name: "layer\(stage + 1).\(block)", inChannels: inChannels,
                                         channels: channels, stride: stride, workspace: workspace))
                inChannels = channels
            }
        }
        layers.append(GlobalAvgPool2d())
        layers.append(Linear(store, name: "fc", inFeatures: inChannels, outFeatures: numClasses))
        return Sequential(layers)
    }
}
