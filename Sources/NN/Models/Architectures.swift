import Kernels

/// What `ClassifierModel` needs to know about one architecture: how to build everything
/// before the classifier, and how the reference implementation names and shapes its head.
public struct Architecture: Sendable {
    /// The `--model` name.
    public let name: String
    /// Module name of the classifier in the reference state dict (`fc`, `classifier`, …).
    public let headPrefix: String
    /// Dropout before the classifier's Linear, as the reference builds it: > 0 puts the Linear
    /// at `<prefix>.1` after a Dropout at `<prefix>.0` (torchvision's EfficientNet).
    public let headDropout: Float
    /// The input size the reference recipe evaluates at.
    public let defaultImageSize: Int
    /// Listed in help texts (hidden ones are for tests).
    public let isListed: Bool
    /// Registers the backbone's parameters in reference state-dict order and returns it with
    /// its output feature count (the output is N×1×1×features).
    public let makeBackbone: @Sendable (ParameterStore, ResNetStem) -> (backbone: Sequential, features: Int)
    /// Run after the head is registered and before `finalize`, for references whose classifier
    /// init differs from PyTorch's Linear default (torchvision's EfficientNet); nil keeps it.
    public var initializeHead: (@Sendable (ParameterStore, _ headPrefix: String) -> Void)? = nil

    /// The name of the head's (last) Linear for the plain linear head.
    public var linearHeadName: String { headDropout > 0 ? "\(headPrefix).1" : headPrefix }

    public static let all: [Architecture] = [
        resnet("resnet18", .resnet18), resnet("resnet34", .resnet34), resnet("resnet50", .resnet50),
        resnet("resnet101", .resnet101), resnet("resnet152", .resnet152),
    ] + EfficientNetVariant.allCases.map(efficientnet) + [
        // timm 1.0.31 `inception_resnet_v2`: classifier `classif`, drop_rate 0 by default (its
        // `head_drop` is a separate, parameterless module), evaluated at 299 px; no stem variants.
        Architecture(name: "inception_resnet_v2", headPrefix: "classif", headDropout: 0, defaultImageSize: 299,
                     isListed: true, makeBackbone: { store, _ in InceptionResNetV2.makeBackbone(store) }),
        Architecture(name: "plain_convnet", headPrefix: "fc", headDropout: 0, defaultImageSize: 32, isListed: false,
                     makeBackbone: { store, _ in PlainConvNet.makeBackbone(store) }),
    ]

    public static func named(_ name: String) -> Architecture? { all.first { $0.name == name } }

    /// The names users may pass to `--model`.
    public static var listedNames: [String] { all.filter(\.isListed).map(\.name) }

    static func resnet(_ name: String, _ depth: ResNetDepth) -> Architecture {
        Architecture(name: name, headPrefix: "fc", headDropout: 0, defaultImageSize: 224, isListed: true,
                     makeBackbone: { store, stem in ResNet.makeBackbone(store, depth: depth, stem: stem) })
    }

    /// `efficientnet_b0`…`b3`; the stem option does not apply and is ignored.
    static func efficientnet(_ variant: EfficientNetVariant) -> Architecture {
        Architecture(name: "efficientnet_\(variant.rawValue)", headPrefix: "classifier", headDropout: variant.dropout,
                     defaultImageSize: variant.imageSize, isListed: true,
                     makeBackbone: { store, _ in EfficientNet.makeBackbone(store, variant: variant) },
                     initializeHead: { store, prefix in EfficientNet.initializeClassifier(store, prefix: prefix) })
    }
}
