import Kernels

/// Errors raised while building a model from user options.
public struct ModelError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// A network plus the flat parameter store that owns its weights: what the trainer, the
/// checkpoint code and the benchmarks work with.
public final class ClassifierModel {
    public static let architectures = ["resnet18", "resnet34"]
    /// Models kept for tests and experiments; accepted by `make` but not advertised.
    public static let hiddenArchitectures = ["plain_convnet"]

    public let architecture: String
    public let numClasses: Int
    public let stem: ResNetStem
    public let store: ParameterStore
    public let network: Sequential

    public init(architecture: String, numClasses: Int, stem: ResNetStem, seed: UInt64) throws {
        guard numClasses >= 1 else { throw ModelError("--num-classes must be at least 1 (got \(numClasses))") }
        let store = ParameterStore()
        switch architecture {
        case "resnet18": network = ResNet.make(store, depth: .resnet18, numClasses: numClasses, stem: stem)
        case "resnet34": network = ResNet.make(store, depth: .resnet34, numClasses: numClasses, stem: stem)
        case "plain_convnet": network = PlainConvNet.make(store, numClasses: numClasses)
        default:
            throw ModelError("unknown model '\(architecture)'; available: \(ClassifierModel.architectures.joined(separator: ", "))")
        }
        store.finalize(seed: seed)
        self.architecture = architecture
        self.numClasses = numClasses
        self.stem = stem
        self.store = store
    }

    /// images: N×H×W×3 normalised; returns N×1×1×numClasses logits (owned by the model).
    public func forward(_ images: Tensor, mode: Mode) -> Tensor { network.forward(images, mode: mode) }

    /// Adds parameter gradients into `store.gradients`.
    public func backward(_ logitsGradient: Tensor) { _ = network.backward(logitsGradient) }

    public var parameterCount: Int { store.parameterCount }
}
