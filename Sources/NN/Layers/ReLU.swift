import Kernels

/// max(x, 0) elementwise. Backward masks by the output (y > 0), like PyTorch's
/// threshold_backward, so the gradient at exactly 0 is 0. After a BatchNorm, prefer
/// `BatchNorm2d(activation: .relu)`, which stores one tensor fewer (Note [Fused activation]).
public final class ReLU: Layer {
    private static let profileCategory = Profiler.category("ReLU")
    private let output = Tensor()

    public init() {}

    public func forward(_ x: Tensor, mode: Mode) -> Tensor {
        let started = Profiler.start()
        defer { Profiler.record(Self.profileCategory, since: started) }
        output.resize(like: x)
        reluForward(x.pointer, output.pointer, count: x.count)
        return output
    }

    public func backward(_ dy: Tensor) -> Tensor {
        let started = Profiler.start()
        defer { Profiler.record(Self.profileCategory, since: started) }
        return reluGradient(dy, output: output)
    }
}

/// The gradient through a ReLU whose output is `output`, consuming dy (Note [Gradient pool]):
/// also for blocks that apply the ReLU in place on a tensor they own (a residual sum).
func reluGradient(_ dy: Tensor, output: Tensor) -> Tensor {
    precondition(dy.hasSameShape(as: output), "ReLU backward: gradient shape \(dy.shape) ≠ output shape \(output.shape)")
    let dx = dy.inPlaceOrNew()
    reluBackward(dy.pointer, output: output.pointer, dx.pointer, count: output.count)
    dy.release(unlessItIs: dx)
    return dx
}
