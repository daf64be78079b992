import Kernels

/// torch.nn.Sigmoid: y = σ(x) = 1 / (1 + e^(−x)) elementwise; backward uses the output,
/// dx = dy·y·(1 − y).
public final class Sigmoid: Layer {
    private let output = Tensor()

    public init() {}

    public func forward(_ x: Tensor, mode: Mode) -> Tensor {
        output.resize(like: x)
        sigmoidForward(x.pointer, output.pointer, count: x.count)
        return output
    }

    public func backward(_ dy: Tensor) -> Tensor {
        precondition(dy.hasSameShape(as: output), "Sigmoid.backward: gradient shape \(dy.shape) ≠ output shape \(output.shape)")
        let dx = dy.inPlaceOrNew()
        sigmoidBackward(dy.pointer, output: output.pointer, dx.pointer, count: output.count)
        dy.release(unlessItIs: dx)
        return dx
    }
}
