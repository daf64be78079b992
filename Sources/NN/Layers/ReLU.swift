import Kernels

/// max(x, 0) elementwise. Backward masks by the output (y > 0), like PyTorch's
/// threshold_backward, so the gradient at exactly 0 is 0.
public final class ReLU: Layer {
    private let output = Tensor()
    private let dInput = Tensor()

    public init() {}

    public func forward(_ x: Tensor, mode: Mode) -> Tensor {
        output.resize(like: x)
        reluForward(x.pointer, output.pointer, count: x.count)
        return output
    }

    public func backward(_ dy: Tensor) -> Tensor {
        precondition(dy.shape == output.shape, "ReLU.backward: gradient shape \(dy.shape) ≠ output shape \(output.shape)")
        dInput.resize(like: output)
        reluBackward(dy.pointer, output: output.pointer, dInput.pointer, count: output.count)
        return dInput
    }
}
