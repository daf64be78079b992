import Kernels

/// Stochastic gradient descent with PyTorch's update rule (torch.optim.SGD, dampening 0):
///   g ← scale·grad + weightDecay·p
///   buf ← momentum·buf + g            (PyTorch starts buf at g; with dampening 0 that is the same)
///   d ← nesterov ? g + momentum·buf : buf
///   p ← p − lr·d
/// `scale` folds the 1/worldSize of gradient averaging into the same pass.
public final class SGD {
    public var momentum: Float
    public var weightDecay: Float
    public var nesterov: Bool
    public let store: ParameterStore
    private let buffer: FloatStorage

    public init(store: ParameterStore, momentum: Float = 0.9, weightDecay: Float = 0, nesterov: Bool = false) {
        self.store = store
        self.momentum = momentum
        self.weightDecay = weightDecay
        self.nesterov = nesterov
        buffer = FloatStorage(capacity: store.parameterCount)
        buffer.pointer.update(repeating: 0, count: store.parameterCount)
    }

    /// The momentum buffer, laid out like the parameters (saved in checkpoints).
    public var momentumBuffer: UnsafeMutablePointer<Float> { buffer.pointer }

    /// Updates the parameters in `range` of the flat buffers (all of them by default; a frozen
    /// backbone passes the head's range, so frozen weights see no update and no weight decay).
    public func step(learningRate: Float, gradientScale: Float = 1, range: Range<Int>? = nil) {
        let range = range ?? 0..<store.parameterCount
        let count = range.count
        let p = store.values + range.lowerBound, grad = store.gradients + range.lowerBound
        let buf = buffer.pointer + range.lowerBound
        let m = momentum, wd = weightDecay, lr = learningRate, scale = gradientScale
        if m == 0 {
            for i in 0..<count {
                let g = grad[i] * scale + wd * p[i]
                p[i] -= lr * g
            }
        } else if nesterov {
            for i in 0..<count {
                let g = grad[i] * scale + wd * p[i]
                let b = m * buf[i] + g
                buf[i] = b
                p[i] -= lr * (g + m * b)
            }
        } else {
            for i in 0..<count {
                let g = grad[i] * scale + wd * p[i]
                let b = m * buf[i] + g
                buf[i] = b
                p[i] -= lr * b
            }
        }
    }
}
