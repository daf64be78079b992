import NN

/// An exponential moving average of the model's weights, as timm's `ModelEmaV3` keeps it
/// (no warm-up): after every optimizer step each float parameter and buffer moves towards the
/// model's, e ← e + (1 − decay)·(m − e) (torch's `lerp_`); integer buffers are copied.
/// The average lives in a second model of the same architecture, so evaluating and saving it
/// reuse everything the raw model has.
public final class ModelEMA {
    public let model: ClassifierModel
    public let decay: Float

    public init(like source: ClassifierModel, decay: Float) throws {
        model = try ClassifierModel(architecture: source.architecture, numClasses: source.numClasses, stem: source.stem,
                                    head: source.head, seed: 0)
        self.decay = decay
        copy(from: source)
    }

    /// Starts the average at the model's current weights (timm initialises it as a deep copy).
    public func copy(from source: ClassifierModel) {
        let (e, m) = (model.store, source.store)
        e.values.update(from: m.values, count: m.parameterCount)
        e.floatBuffers.update(from: m.floatBuffers, count: m.floatBufferCount)
        e.intBuffers.update(from: m.intBuffers, count: m.intBufferCount)
    }

    public func update(from source: ClassifierModel) {
        let (e, m) = (model.store, source.store)
        let weight = 1 - decay
        lerp(e.values, towards: m.values, count: m.parameterCount, weight: weight)
        lerp(e.floatBuffers, towards: m.floatBuffers, count: m.floatBufferCount, weight: weight)
        e.intBuffers.update(from: m.intBuffers, count: m.intBufferCount)
    }

    private func lerp(_ e: UnsafeMutablePointer<Float>, towards m: UnsafePointer<Float>, count: Int, weight: Float) {
        for i in 0..<count { e[i] += weight * (m[i] - e[i]) }
    }
}
