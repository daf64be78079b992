import Kernels

/// Errors raised while building a model from user options.
public struct ModelError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// The classifier after the backbone's pooled features.
/// - `linear`: one Linear, named like torchvision's (`fc`).
/// - `mlp(hidden:)`: Linear → ReLU → Dropout(0.2) → Linear, the fine-tuning head of the
///   tutorials (`model.fc = nn.Sequential(...)`), so its tensors are `fc.0.*` and `fc.3.*`.
public enum ClassifierHead: Sendable, Equatable, CustomStringConvertible {
    case linear
    case mlp(hidden: Int)

    public static let mlpDropout: Float = 0.2

    /// Parses `linear` or `mlp:<hidden>`.
    public init?(_ text: String) {
        if text == "linear" { self = .linear; return }
        guard text.hasPrefix("mlp:"), let hidden = Int(text.dropFirst(4)), hidden >= 1 else { return nil }
        self = .mlp(hidden: hidden)
    }

    public var description: String {
        switch self {
        case .linear: return "linear"
        case .mlp(let hidden): return "mlp:\(hidden)"
        }
    }

    /// Recognises the head from a state dict's tensor names and shapes (`fc.weight` → linear,
    /// `fc.0.weight` + `fc.3.weight` → mlp with fc.0's output count), so weights files need no
    /// side information.
    public static func detect(prefix: String, shapes: [String: [Int]]) -> ClassifierHead? {
        if shapes["\(prefix).weight"] != nil { return .linear }
        if let first = shapes["\(prefix).0.weight"], first.count == 2, shapes["\(prefix).3.weight"] != nil {
            return .mlp(hidden: first[0])
        }
        return nil
    }
}

/// A network plus the flat parameter store that owns its weights: what the trainer, the
/// checkpoint code and the benchmarks work with. The network is a backbone (ending in global
/// pooling) followed by a head; the head's parameters are registered last, so they are one
/// contiguous tail of the flat buffers (what a frozen-backbone run trains, reduces and steps).
public final class ClassifierModel {
    public static let architectures = ["resnet18", "resnet34", "resnet50", "resnet101", "resnet152"]
    /// Models kept for tests and experiments; accepted by `make` but not advertised.
    public static let hiddenArchitectures = ["plain_convnet"]
    /// The module name of the classifier in the architectures' state dicts.
    public static let headPrefix = "fc"

    public let architecture: String
    public let numClasses: Int
    public let stem: ResNetStem
    public let head: ClassifierHead
    public let store: ParameterStore
    public let backbone: Sequential
    public let headNetwork: Sequential
    /// Features the backbone hands to the head.
    public let featureCount: Int
    /// Frozen: the backbone runs in eval mode (BatchNorm uses its running statistics) and
    /// receives no gradient; only the head trains.
    public var freezeBackbone = false
    private let stochasticLayers: [any StochasticLayer]

    public init(architecture: String, numClasses: Int, stem: ResNetStem, head: ClassifierHead = .linear,
                seed: UInt64) throws {
        guard numClasses >= 1 else { throw ModelError("--num-classes must be at least 1 (got \(numClasses))") }
        let store = ParameterStore()
        let built: (backbone: Sequential, features: Int)
        switch architecture {
        case "resnet18": built = ResNet.makeBackbone(store, depth: .resnet18, stem: stem)
        case "resnet34": built = ResNet.makeBackbone(store, depth: .resnet34, stem: stem)
        case "resnet50": built = ResNet.makeBackbone(store, depth: .resnet50, stem: stem)
        case "resnet101": built = ResNet.makeBackbone(store, depth: .resnet101, stem: stem)
        case "resnet152": built = ResNet.makeBackbone(store, depth: .resnet152, stem: stem)
        case "plain_convnet": built = PlainConvNet.makeBackbone(store)
        default:
            throw ModelError("unknown model '\(architecture)'; available: \(ClassifierModel.architectures.joined(separator: ", "))")
        }
        let prefix = ClassifierModel.headPrefix
        var stochastic: [any StochasticLayer] = []
        switch head {
        case .linear:
            headNetwork = Sequential([Linear(store, name: prefix, inFeatures: built.features, outFeatures: numClasses)])
        case .mlp(let hidden):
            let dropout = Dropout(probability: ClassifierHead.mlpDropout)
            stochastic.append(dropout)
            headNetwork = Sequential([
                Linear(store, name: "\(prefix).0", inFeatures: built.features, outFeatures: hidden),
                ReLU(),
                dropout,
                Linear(store, name: "\(prefix).3", inFeatures: hidden, outFeatures: numClasses),
            ])
        }
        store.finalize(seed: seed)
        self.architecture = architecture
        self.numClasses = numClasses
        self.stem = stem
        self.head = head
        self.store = store
        backbone = built.backbone
        featureCount = built.features
        stochasticLayers = stochastic
    }

    /// images: N×H×W×3 normalised; returns N×1×1×numClasses logits (owned by the model).
    public func forward(_ images: Tensor, mode: Mode) -> Tensor {
        let features = backbone.forward(images, mode: freezeBackbone ? .eval : mode)
        return headNetwork.forward(features, mode: mode)
    }

    /// Adds parameter gradients into `store.gradients` (the head's alone when frozen).
    public func backward(_ logitsGradient: Tensor) {
        let featureGradient = headNetwork.backward(logitsGradient)
        if !freezeBackbone { _ = backbone.backward(featureGradient) }
    }

    /// Seeds every random layer for one training step; `stream` separates ranks.
    public func reseedStochasticLayers(seed: UInt64, step: Int, stream: Int) {
        for (i, layer) in stochasticLayers.enumerated() {
            var rng = SplitMix64(seed: seed, UInt64(step), UInt64(stream), UInt64(i) &+ 0xD0)
            layer.randomSeed = rng.next()
        }
    }

    public var parameterCount: Int { store.parameterCount }

    /// The flat-buffer range the optimizer and the all-reduce cover: everything, or with a
    /// frozen backbone the head's tail alone.
    public var trainableRange: Range<Int> {
        guard freezeBackbone else { return 0..<store.parameterCount }
        return headParameterOffset..<store.parameterCount
    }

    /// Offset of the head's first parameter in the flat buffers.
    public var headParameterOffset: Int {
        let prefix = ClassifierModel.headPrefix + "."
        return store.parameters.first { $0.name.hasPrefix(prefix) }?.offset ?? store.parameterCount
    }
}
