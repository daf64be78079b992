import Kernels

// Shape letters: N batch, H/W height/width, C channels (activations NHWC).
// Topology, parameter names and initialisation follow torchvision.models.efficientnet
// (torchvision 0.29: `_efficientnet_conf`, `MBConvConfig`, `EfficientNet.__init__`), so state
// dicts map 1:1. B0–B3 use the default nn.BatchNorm2d (eps 1e-5, momentum 0.1).

/// EfficientNet-B0…B3: (width, depth) multipliers, classifier dropout and evaluation size as
/// torchvision's builders and weight presets give them.
public enum EfficientNetVariant: String, Sendable, CaseIterable {
    case b0, b1, b2, b3

    public var widthMultiplier: Double {
        switch self { case .b0, .b1: return 1.0; case .b2: return 1.1; case .b3: return 1.2 }
    }

    public var depthMultiplier: Double {
        switch self { case .b0: return 1.0; case .b1: return 1.1; case .b2: return 1.2; case .b3: return 1.4 }
    }

    public var dropout: Float {
        switch self { case .b0, .b1: return 0.2; case .b2, .b3: return 0.3 }
    }

    /// The crop size of torchvision's IMAGENET1K_V1 weights' transforms.
    public var imageSize: Int {
        switch self { case .b0: return 224; case .b1: return 240; case .b2: return 260; case .b3: return 300 }
    }
}

/// One row of torchvision's `inverted_residual_setting` for B0 (before scaling).
struct MBConvStage {
    let expandRatio: Double, kernel: Int, stride: Int, inChannels: Int, outChannels: Int, layers: Int
}

public enum EfficientNet {
    /// torchvision `_efficientnet_conf("efficientnet_b*")` (Table 1 of the EfficientNet paper).
    static let baseStages: [MBConvStage] = [
        MBConvStage(expandRatio: 1, kernel: 3, stride: 1, inChannels: 32, outChannels: 16, layers: 1),
        MBConvStage(expandRatio: 6, kernel: 3, stride: 2, inChannels: 16, outChannels: 24, layers: 2),
        MBConvStage(expandRatio: 6, kernel: 5, stride: 2, inChannels: 24, outChannels: 40, layers: 2),
        MBConvStage(expandRatio: 6, kernel: 3, stride: 2, inChannels: 40, outChannels: 80, layers: 3),
        MBConvStage(expandRatio: 6, kernel: 5, stride: 1, inChannels: 80, outChannels: 112, layers: 3),
        MBConvStage(expandRatio: 6, kernel: 5, stride: 2, inChannels: 112, outChannels: 192, layers: 4),
        MBConvStage(expandRatio: 6, kernel: 3, stride: 1, inChannels: 192, outChannels: 320, layers: 1),
    ]

    /// torchvision's default `stochastic_depth_prob`.
    public static let stochasticDepthProbability = 0.2

    /// torchvision `_make_divisible` (from the TF MobileNet code): round to the nearest multiple
    /// of `divisor` (at least `divisor`), but never more than 10% below `value`.
    public static func makeDivisible(_ value: Double, divisor: Int = 8) -> Int {
        var rounded = max(divisor, Int(value + Double(divisor) / 2) / divisor * divisor)
        if Double(rounded) < 0.9 * value { rounded += divisor }
        return rounded
    }

    /// `MBConvConfig.adjust_channels`.
    public static func adjustChannels(_ channels: Int, _ multiplier: Double) -> Int {
        makeDivisible(Double(channels) * multiplier)
    }

    /// `MBConvConfig.adjust_depth`: ceil(layers · depth multiplier).
    public static func adjustDepth(_ layers: Int, _ multiplier: Double) -> Int {
        Int((Double(layers) * multiplier).rounded(.up))
    }

    /// Builds `features` (stem, seven MBConv stages, head 1×1 conv to 4 × the last stage's
    /// channels) and the global average pool, registering parameters in torchvision's order.
    /// The classifier (`classifier.1`, after a Dropout) is added by `ClassifierModel`.
    /// Stochastic depth grows linearly with the block index: p = 0.2 · i / (number of blocks).
    public static func makeBackbone(_ store: ParameterStore, variant: EfficientNetVariant,
                                    stochasticDepthProbability: Double = stochasticDepthProbability)
        -> (backbone: Sequential, features: Int) {
        let workspace = FloatStorage()
        let width = variant.widthMultiplier, depth = variant.depthMultiplier
        let stages = baseStages.map {
            MBConvStage(expandRatio: $0.expandRatio, kernel: $0.kernel, stride: $0.stride,
                        inChannels: adjustChannels($0.inChannels, width), outChannels: adjustChannels($0.outChannels, width),
                        layers: adjustDepth($0.layers, depth))
        }
        var layers: [any Layer] = [
            convNormActivation(store, name: "features.0", inChannels: 3, outChannels: stages[0].inChannels,
                               kernelSize: 3, stride: 2, activation: true, workspace: workspace),
        ]
        let totalBlocks = stages.reduce(0) { $0 + $1.layers }
        var blockIndex = 0
        for (s, stage) in stages.enumerated() {
            var blocks: [any Layer] = []
            for j in 0..<stage.layers {
                let inChannels = j == 0 ? stage.inChannels : stage.outChannels
                // Same expression order as torchvision: (p · float(id)) / total.
                let probability = stochasticDepthProbability * Double(blockIndex) / Double(totalBlocks)
                blocks.append(MBConv(store, name: "features.\(s + 1).\(j)", inChannels: inChannels,
                                     outChannels: stage.outChannels,
                                     expandedChannels: adjustChannels(inChannels, stage.expandRatio),
                                     kernelSize: stage.kernel, stride: j == 0 ? stage.stride : 1,
                                     stochasticDepthProbability: Float(probability), workspace: workspace))
                blockIndex += 1
            }
            layers.append(Sequential(blocks))
        }
        let lastIn = stages[stages.count - 1].outChannels, lastOut = 4 * lastIn
        layers.append(convNormActivation(store, name: "features.\(stages.count + 1)", inChannels: lastIn,
                                         outChannels: lastOut, kernelSize: 1, activation: true, workspace: workspace))
        layers.append(GlobalAvgPool2d())
        // torchvision's init: Conv2d kaiming_normal_(fan_out) (Conv2d's default here), conv biases
        // (the SE's fc1/fc2) zero, BatchNorm ones/zeros (BatchNorm2d's default).
        for p in store.parameters where p.name.hasPrefix("features.") && p.name.hasSuffix(".bias") && p.shape.count == 1
            && (p.name.contains(".fc1.") || p.name.contains(".fc2.")) {
            store.setInitializer(.constant(0), forParameterNamed: p.name)
        }
        return (Sequential(layers), lastOut)
    }

    /// torchvision's init of every nn.Linear in the model (the classifier): weight
    /// U(±1/√out_features), bias 0 (not PyTorch's default U(±1/√in_features)).
    public static func initializeClassifier(_ store: ParameterStore, prefix: String) {
        for p in store.parameters where p.name.hasPrefix(prefix + ".") {
            if p.shape.count == 2 {
                store.setInitializer(.uniform(bound: 1 / Double(p.shape[0]).squareRoot()), forParameterNamed: p.name)
            } else if p.shape.count == 1 {
                store.setInitializer(.constant(0), forParameterNamed: p.name)
            }
        }
    }
}
