import Kernels

/// torch.nn.SiLU: y = x·σ(x) elementwise. Backward needs the input (kept by reference, see
/// `Layer`), from which it recomputes σ. After a BatchNorm, prefer
/// `BatchNorm2d(activation: .silu)`, which need not keep the input (Note [Fused activation]).
public final class SiLU: Layer {
    private static let profileCategory = Profiler.category("SiLU")
    private let output = Tensor()
    private var input: Tensor?

    public init() {}

    public func forward(_ x: Tensor, mode: Mode) -> Tensor {
        let started = Profiler.start()
        defer { Profiler.record(Self.profileCategory, since: started) }
        output.resize(like: x)
        input = mode == .train ? x : nil
        siluForward(x.pointer, output.pointer, count: x.count)
        return output
    }

    public func backward(_ dy: Tensor) -> Tensor {
        let started = Profiler.start()
        defer { Profiler.record(Self.profileCategory, since: started) }
        guard let x = input else { preconditionFailure("SiLU.backward without a .train forward") }
        precondition(dy.hasSameShape(as: x), "SiLU.backward: gradient shape \(dy.shape) ≠ input shape \(x.shape)")
        let dx = dy.inPlaceOrNew()
        siluBackward(dy.pointer, input: x.pointer, dx.pointer, count: x.count)
        dy.release(unlessItIs: dx)
        return dx
    }
}
