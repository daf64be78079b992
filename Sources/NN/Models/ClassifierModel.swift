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
    /// side information. Returns the head and the name of its last Linear.
    public static func detect(_ architecture: Architecture, shapes: [String: [Int]])
        -> (head: ClassifierHead, lastLinear: String)? {
        let prefix = architecture.headPrefix
        if let first = shapes["\(prefix).0.weight"], first.count == 2, shapes["\(prefix).3.weight"] != nil {
            return (.mlp(hidden: first[0]), "\(prefix).3")
        }
        if shapes["\(architecture.linearHeadName).weight"] != nil { return (.linear, architecture.linearHeadName) }
        return nil
    }
}

/// A network plus the flat parameter store that owns its weights: what the trainer, the
/// checkpoint code and the benchmarks work with. The network is a backbone (ending in global
/// pooling) followed by a head; the head's parameters are registered last, so they are one
/// contiguous tail of the flat buffers (what a frozen-backbone run trains, reduces and steps).
public final class ClassifierModel {
    public let architecture: String
    public let spec: Architecture
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
    /// Every random layer, reseeded each step: the head's first, then the backbone's (found
    /// through `CompositeLayer`, e.g. EfficientNet's stochastic depth), so the indices that seed
    /// existing models' head dropout are unchanged.
    public let stochasticLayers: [any StochasticLayer]
    /// Where backward's activation gradients live (Note [Gradient pool]); every tensor in it
    /// is free again when `backward` returns. Replaceable (tests swap in a poisoning pool).
    public var gradientPool = TensorPool()

    public init(architecture: String, numClasses: Int, stem: ResNetStem, head: ClassifierHead = .linear,
                seed: UInt64) throws {
        guard numClasses >= 1 else { throw ModelError("--num-classes must be at least 1 (got \(numClasses))") }
        guard let spec = Architecture.named(architecture) else {
            throw ModelError("unknown model '\(architecture)'; available: \(Architecture.listedNames.joined(separator: ", "))")
        }
        let store = ParameterStore()
        let built = spec.makeBackbone(store, stem)
        let prefix = spec.headPrefix
        var stochastic: [any StochasticLayer] = []
        switch head {
        case .linear where spec.headDropout > 0:
            let dropout = Dropout(probability: spec.headDropout)
            stochastic.append(dropout)
            headNetwork = Sequential([
                dropout,
                Linear(store, name: spec.linearHeadName, inFeatures: built.features, outFeatures: numClasses),
            ])
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
        spec.initializeHead?(store, prefix)
        // The images need no gradient: the first convolution skips computing it.
        var first: any Layer = built.backbone
        while let composite = first as? any CompositeLayer, let head = composite.sublayers.first { first = head }
        (first as? Conv2d)?.computesInputGradient = false
        stochastic += NN.stochasticLayers(in: built.backbone)
        store.finalize(seed: seed)
        self.architecture = architecture
        self.spec = spec
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
    /// `logitsGradient` is only read: a pooled copy of it starts the chain of gradients.
    public func backward(_ logitsGradient: Tensor) {
        let pooled = gradientPool.acquire(like: logitsGradient)
        pooled.pointer.update(from: logitsGradient.pointer, count: logitsGradient.count)
        let featureGradient = headNetwork.backward(pooled)
        if freezeBackbone {
            featureGradient.release()
        } else {
            backbone.backward(featureGradient).release()
        }
    }

    /// Seeds every random layer for one training step; `stream` separates ranks.
    public func reseedStochasticLayers(seed: UInt64, step: Int, stream: Int) {
        for (i, layer) in stochasticLayers.enumerated() {
            var rng = SplitMix64(seed: seed, UInt64(step), UInt64(stream), UInt64(i) &+ 0xD0)
            layer.randomSeed = rng.next()
        }
    }

    public var parameterCount: Int { store.parameterCount }

    /// The parameter count of an architecture with a linear head, without allocating or
    /// initialising any weights (for listings).
    public static func parameterCount(of spec: Architecture, numClasses: Int, stem: ResNetStem = .imagenet) -> Int {
        let store = ParameterStore()
        let built = spec.makeBackbone(store, stem)
        return store.parameterCount + built.features * numClasses + numClasses
    }

    /// The flat-buffer range the optimizer and the all-reduce cover: everything, or with a
    /// frozen backbone the head's tail alone.
    public var trainableRange: Range<Int> {
        guard freezeBackbone else { return 0..<store.parameterCount }
        return headParameterOffset..<store.parameterCount
    }

    /// Offset of the head's first parameter in the flat buffers.
    public var headParameterOffset: Int {
        let prefix = spec.headPrefix + "."
        return store.parameters.first { $0.name.hasPrefix(prefix) }?.offset ?? store.parameterCount
    }
}
