import Kernels

// Shape letters: N batch, H/W height/width, C channels.

/// Mean over H·W per image and channel: [N, H, W, C] → [N, 1, 1, C]
/// (torch: AdaptiveAvgPool2d((1, 1)) followed by flatten, which is the same order in NHWC).
public final class GlobalAvgPool2d: Layer {
    private static let profileCategory = Profiler.category("global average pool")
    private let output = Tensor()
    private var inputShape = (n: 0, h: 0, w: 0, c: 0)

    public init() {}

    public func forward(_ x: Tensor, mode: Mode) -> Tensor {
        let started = Profiler.start()
        defer { Profiler.record(Self.profileCategory, since: started) }
        let n = x.n, hw = x.h * x.w, c = x.c
        precondition(hw > 0, "GlobalAvgPool2d: empty spatial extent in shape \(x.shape)")
        inputShape = (x.n, x.h, x.w, x.c)
        output.resize(n: n, h: 1, w: 1, c: c)
        let inv = 1 / Float(hw)
        var src = UnsafePointer(x.pointer)
        var out = output.pointer
        for _ in 0..<n {
            out.update(repeating: 0, count: c)
            for _ in 0..<hw {
                for ch in 0..<c { out[ch] += src[ch] }
                src += c
            }
            for ch in 0..<c { out[ch] *= inv }
            out += c
        }
        return output
    }

    /// dx[n, h, w, c] = dy[n, c] / (H·W).
    public func backward(_ dy: Tensor) -> Tensor {
        let started = Profiler.start()
        defer { Profiler.record(Self.profileCategory, since: started) }
        let (n, h, w, c) = inputShape
        precondition(dy.hasShape(n, 1, 1, c), "GlobalAvgPool2d.backward: gradient shape \(dy.shape) ≠ \([n, 1, 1, c])")
        let dInput = dy.acquireFromSamePool(n: n, h: h, w: w, c: c)
        let hw = h * w, inv = 1 / Float(hw)
        var g = UnsafePointer(dy.pointer)
        var dx = dInput.pointer
        for _ in 0..<n {
            for _ in 0..<hw {
                for ch in 0..<c { dx[ch] = g[ch] * inv }
                dx += c
            }
            g += c
        }
        dy.release()
        return dInput
    }
}
