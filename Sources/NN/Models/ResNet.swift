import Kernels

// Shape letters: N batch, H/W height/width, C channels (activations NHWC).
// Topology and parameter names follow torchvision.models.resnet, so state dicts map 1:1.

/// `imagenet`: 7×7 stride-2 conv1 + 3×3 stride-2 max-pool (torchvision).
/// `small`: 3×3 stride-1 conv1 and no max-pool, for 32–64 px inputs (CIFAR-style).
public enum ResNetStem: String, Sendable, CaseIterable {
    case imagenet, small
}

public enum ResNetDepth: Int, Sendable, CaseIterable {
    case resnet18 = 18, resnet34 = 34, resnet50 = 50, resnet101 = 101, resnet152 = 152

    /// Blocks per stage (torchvision `_resnet(block, layers=…)`).
    var blocksPerStage: [Int] {
        switch self {
        case .resnet18: return [2, 2, 2, 2]
        case .resnet34: return [3, 4, 6, 3]
        case .resnet50: return [3, 4, 6, 3]
        case .resnet101: return [3, 4, 23, 3]
        case .resnet152: return [3, 8, 36, 3]
        }
    }

    /// 18 and 34 use BasicBlock; 50 and deeper use Bottleneck (output = 4 × the block's width).
    var usesBottleneck: Bool { rawValue >= 50 }
}

/// The shortcut's 1×1 conv + BN (`<block>.downsample.0/1`) when a block changes the shape; nil
/// for the identity.
func makeDownsample(_ store: ParameterStore, name: String, inChannels: Int, outChannels: Int, stride: Int,
                    workspace: FloatStorage) -> Sequential? {
    guard stride != 1 || inChannels != outChannels else { return nil }
    let conv = Conv2d(store, name: "\(name).downsample.0", inChannels: inChannels, outChannels: outChannels,
                      kernelSize: 1, stride: stride, workspace: workspace)
    let bn = BatchNorm2d(store, name: "\(name).downsample.1", channels: outChannels)
    conv.foldInEval(bn)  // Note [BatchNorm folding]
    return Sequential([conv, bn])
}

/// torchvision `BasicBlock`: conv3×3 → BN → ReLU → conv3×3 → BN, plus the identity
/// (or a 1×1 conv + BN `downsample` when the shape changes), then ReLU.
///
/// Memory as torchvision's in-place ReLUs and `out += identity`: the first ReLU is fused into
/// bn1 (Note [Fused activation]), and the sum and the last ReLU are written over bn2's output,
/// which bn2's backward does not read, so that one tensor is the block's output.
public final class BasicBlock: Layer {
    let conv1: Conv2d, bn1: BatchNorm2d
    let conv2: Conv2d, bn2: BatchNorm2d
    let downsample: Sequential?
    /// bn2's output after the in-place sum and ReLU: what backward masks by.
    private var output: Tensor?

    public init(_ store: ParameterStore, name: String, inChannels: Int, channels: Int, stride: Int,
                workspace: FloatStorage) {
        conv1 = Conv2d(store, name: "\(name).conv1", inChannels: inChannels, outChannels: channels,
                       kernelSize: 3, stride: stride, padding: 1, workspace: workspace)
        bn1 = BatchNorm2d(store, name: "\(name).bn1", channels: channels, activation: .relu)
        conv2 = Conv2d(store, name: "\(name).conv2", inChannels: channels, outChannels: channels,
                       kernelSize: 3, stride: 1, padding: 1, workspace: workspace)
        bn2 = BatchNorm2d(store, name: "\(name).bn2", channels: channels)
        conv1.foldInEval(bn1)  // Note [BatchNorm folding]
        conv2.foldInEval(bn2)
        downsample = makeDownsample(store, name: name, inChannels: inChannels, outChannels: channels, stride: stride,
                                    workspace: workspace)
    }

    public func forward(_ input: Tensor, mode: Mode) -> Tensor {
        var main = conv1.forward(input, mode: mode)
        main = bn1.forward(main, mode: mode)
        main = conv2.forward(main, mode: mode)
        main = bn2.forward(main, mode: mode)
        return residualReLU(main, shortcut: downsample?.forward(input, mode: mode) ?? input, keeping: &output)
    }

    public func backward(_ outputGradient: Tensor) -> Tensor {
        guard let output else { preconditionFailure("BasicBlock.backward without a forward") }
        let dSum = reluGradient(outputGradient, output: output)
        dSum.retain()  // for the branch and the shortcut (Note [Gradient pool])
        var dMain = bn2.backward(dSum)
        dMain = conv2.backward(dMain)
        dMain = bn1.backward(dMain)
        dMain = conv1.backward(dMain)
        return sumGradients(dMain, downsample?.backward(dSum) ?? dSum)
    }
}

/// torchvision `Bottleneck` (ResNet v1.5: the stride sits on the 3×3 conv, not the first 1×1):
/// conv1×1 → BN → ReLU → conv3×3(stride) → BN → ReLU → conv1×1 (×4 channels) → BN, plus the
/// identity or a 1×1 conv + BN `downsample`, then ReLU. ReLUs fused and the sum written over
/// bn3's output, as in `BasicBlock`.
public final class Bottleneck: Layer {
    public static let expansion = 4
    let conv1: Conv2d, bn1: BatchNorm2d
    let conv2: Conv2d, bn2: BatchNorm2d
    let conv3: Conv2d, bn3: BatchNorm2d
    let downsample: Sequential?
    private var output: Tensor?

    /// `width` is the 3×3 conv's channel count; the block outputs `width × 4` channels.
    public init(_ store: ParameterStore, name: String, inChannels: Int, width: Int, stride: Int,
                workspace: FloatStorage) {
        let outChannels = width * Bottleneck.expansion
        conv1 = Conv2d(store, name: "\(name).conv1", inChannels: inChannels, outChannels: width,
                       kernelSize: 1, workspace: workspace)
        bn1 = BatchNorm2d(store, name: "\(name).bn1", channels: width, activation: .relu)
        conv2 = Conv2d(store, name: "\(name).conv2", inChannels: width, outChannels: width,
                       kernelSize: 3, stride: stride, padding: 1, workspace: workspace)
        bn2 = BatchNorm2d(store, name: "\(name).bn2", channels: width, activation: .relu)
        conv3 = Conv2d(store, name: "\(name).conv3", inChannels: width, outChannels: outChannels,
                       kernelSize: 1, workspace: workspace)
        bn3 = BatchNorm2d(store, name: "\(name).bn3", channels: outChannels)
        conv1.foldInEval(bn1)  // Note [BatchNorm folding]
        conv2.foldInEval(bn2)
        conv3.foldInEval(bn3)
        downsample = makeDownsample(store, name: name, inChannels: inChannels, outChannels: outChannels, stride: stride,
                                    workspace: workspace)
    }

    public func forward(_ input: Tensor, mode: Mode) -> Tensor {
        var main = bn1.forward(conv1.forward(input, mode: mode), mode: mode)
        main = bn2.forward(conv2.forward(main, mode: mode), mode: mode)
        main = bn3.forward(conv3.forward(main, mode: mode), mode: mode)
        return residualReLU(main, shortcut: downsample?.forward(input, mode: mode) ?? input, keeping: &output)
    }

    public func backward(_ outputGradient: Tensor) -> Tensor {
        guard let output else { preconditionFailure("Bottleneck.backward without a forward") }
        let dSum = reluGradient(outputGradient, output: output)
        dSum.retain()  // for the branch and the shortcut (Note [Gradient pool])
        var dMain = conv3.backward(bn3.backward(dSum))
        dMain = conv2.backward(bn2.backward(dMain))
        dMain = conv1.backward(bn1.backward(dMain))
        return sumGradients(dMain, downsample?.backward(dSum) ?? dSum)
    }
}

/// relu(main + shortcut) written over `main` (a BatchNorm output its owner may overwrite),
/// which is remembered in `output` for the ReLU's backward and returned.
func residualReLU(_ main: Tensor, shortcut: Tensor, keeping output: inout Tensor?) -> Tensor {
    precondition(main.hasSameShape(as: shortcut), "residual sum: shapes \(main.shape) and \(shortcut.shape) differ")
    addReLUForward(main.pointer, shortcut.pointer, main.pointer, count: main.count)
    output = main
    return main
}

/// ResNet-18/34/50/101/152 with torchvision's topology and parameter names.
public enum ResNet {
    /// Builds everything before the classifier (ending in global average pooling, so the output
    /// is N×1×1×features), registering parameters in torchvision's state-dict order. The
    /// classifier (`fc`) is added by `ClassifierModel`, after it.
    public static func makeBackbone(_ store: ParameterStore, depth: ResNetDepth, stem: ResNetStem)
        -> (backbone: Sequential, features: Int) {
        // One im2col workspace for every convolution (it holds nothing between calls).
        let workspace = FloatStorage()
        let conv1: Conv2d
        switch stem {
        case .imagenet:
            conv1 = Conv2d(store, name: "conv1", inChannels: 3, outChannels: 64, kernelSize: 7,
                           stride: 2, padding: 3, workspace: workspace)
        case .small:
            conv1 = Conv2d(store, name: "conv1", inChannels: 3, outChannels: 64, kernelSize: 3,
                           stride: 1, padding: 1, workspace: workspace)
        }
        let bn1 = BatchNorm2d(store, name: "bn1", channels: 64, activation: .relu)
        conv1.foldInEval(bn1)  // Note [BatchNorm folding]
        var layers: [any Layer] = [conv1, bn1]
        if stem == .imagenet { layers.append(MaxPool2d(kernelSize: 3, stride: 2, padding: 1)) }
        var inChannels = 64
        for (stage, blocks) in depth.blocksPerStage.enumerated() {
            let width = 64 << stage
            for block in 0..<blocks {
                let stride = (stage > 0 && block == 0) ? 2 : 1
                let name = "layer\(stage + 1).\(block)"
                if depth.usesBottleneck {
                    layers.append(Bottleneck(store, name: name, inChannels: inChannels, width: width, stride: stride,
                                             workspace: workspace))
                    inChannels = width * Bottleneck.expansion
                } else {
                    layers.append(BasicBlock(store, name: name, inChannels: inChannels, channels: width,
                                             stride: stride, workspace: workspace))
                    inChannels = width
                }
            }
        }
        layers.append(GlobalAvgPool2d())
        return (Sequential(layers), inChannels)
    }
}
