import Kernels

// Shape letters: N batch, H/W height/width, C channels.

/// y[n, h, w, c] = x[n, h, w, c] · s[n, c]: a per-image, per-channel scale broadcast over the
/// pixels (the `scale * input` of torchvision's SqueezeExcitation, s of shape [N, 1, 1, C]).
/// It has two inputs, so it is not a `Layer`; its owner calls it directly.
public final class ChannelScale {
    private let output = Tensor()
    private var input: Tensor?
    private var scale: Tensor?

    public init() {}

    /// x: [N, H, W, C], s: [N, 1, 1, C]. Keeps references to both for backward in `.train`.
    public func forward(_ x: Tensor, scale s: Tensor, mode: Mode) -> Tensor {
        precondition(s.hasShape(x.n, 1, 1, x.c), "ChannelScale: scale shape \(s.shape) ≠ \([x.n, 1, 1, x.c])")
        output.resize(like: x)
        input = mode == .train ? x : nil
        scale = mode == .train ? s : nil
        let hw = x.h * x.w, c = x.c
        var src = UnsafePointer(x.pointer), out = output.pointer, sc = UnsafePointer(s.pointer)
        for _ in 0..<x.n {
            for _ in 0..<hw {
                for ch in 0..<c { out[ch] = src[ch] * sc[ch] }
                src += c
                out += c
            }
            sc += c
        }
        return output
    }

    /// dx[n, h, w, c] = dy·s[n, c];  ds[n, c] = Σ_hw dy·x. Consumes dy (dx overwrites it when
    /// exclusively held) and returns both gradients with a hold each (Note [Gradient pool]).
    public func backward(_ dy: Tensor) -> (dInput: Tensor, dScale: Tensor) {
        guard let x = input, let s = scale else { preconditionFailure("ChannelScale.backward without a .train forward") }
        precondition(dy.hasSameShape(as: x), "ChannelScale.backward: gradient shape \(dy.shape) ≠ \(x.shape)")
        let dInput = dy.inPlaceOrNew()
        let dScale = dy.acquireFromSamePool(like: s)
        dScale.zero()
        let hw = x.h * x.w, c = x.c, images = x.n
        let input = UnsafePointer(x.pointer), scales = UnsafePointer(s.pointer), dScales = dScale.pointer
        inPlaceAware(dy.pointer, dInput.pointer) { grad, dInput in  // Note [In-place loops]
            for image in 0..<images {
                let sc = scales + image &* c, ds = dScales + image &* c
                for pixel in 0..<hw {
                    let base = (image &* hw &+ pixel) &* c
                    let src = input + base, g = grad + base, dx = dInput + base
                    for ch in 0..<c {
                        let gradient = g[ch]  // read before dx, which may be the same memory
                        ds[ch] += gradient * src[ch]
                        dx[ch] = gradient * sc[ch]
                    }
                }
            }
        }
        dy.release(unlessItIs: dInput)
        return (dInput, dScale)
    }
}
