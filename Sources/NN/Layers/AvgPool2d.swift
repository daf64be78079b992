import Kernels

// Shape letters: N batch, H/W input height/width, Ho/Wo output height/width, C channels.

/// Average pooling over NHWC input, as PyTorch's AvgPool2d with ceil_mode = false and no
/// divisor_override (aten/src/ATen/native/cpu/AvgPoolKernel.cpp): the window of output (oy, ox)
/// starts at oy·s − p and ends at min(start + k, H + p); the sum runs over its in-bounds part;
/// the divisor is the padded window's size with `countIncludePad`, else the in-bounds count
/// (timm's Inception modules use count_include_pad = False, so border averages are not
/// diluted by padding zeros).
public final class AvgPool2d: Layer {
    private static let profileCategory = Profiler.category("average pool")
    public let kernelSize: Int
    public let stride: Int
    public let padding: Int
    public let countIncludePad: Bool

    private let output = Tensor()
    private var inputShape = (n: 0, h: 0, w: 0, c: 0)

    public init(kernelSize: Int, stride: Int, padding: Int = 0, countIncludePad: Bool = true) {
        precondition(kernelSize > 0 && stride > 0, "AvgPool2d: kernel and stride must be positive")
        precondition(padding >= 0 && padding <= kernelSize / 2,
                     "AvgPool2d: padding \(padding) must be at most half the kernel size \(kernelSize) (PyTorch's rule)")
        self.kernelSize = kernelSize
        self.stride = stride
        self.padding = padding
        self.countIncludePad = countIncludePad
    }

    /// The in-bounds window [y0, y1) × [x0, x1) of output (oy, ox) and 1 / its divisor.
    @inline(__always)
    private func window(_ oy: Int, _ ox: Int, h: Int, w: Int) -> (Int, Int, Int, Int, Float) {
        let k = kernelSize, s = stride, p = padding
        let ys = oy &* s &- p, xs = ox &* s &- p
        let ye = min(ys &+ k, h &+ p), xe = min(xs &+ k, w &+ p)
        let padded = (ye &- ys) &* (xe &- xs)
        let y0 = max(ys, 0), x0 = max(xs, 0), y1 = min(ye, h), x1 = min(xe, w)
        let divisor = countIncludePad ? padded : (y1 &- y0) &* (x1 &- x0)
        return (y0, y1, x0, x1, 1 / Float(divisor))
    }

    public func forward(_ x: Tensor, mode: Mode) -> Tensor {
        let started = Profiler.start()
        defer { Profiler.record(Self.profileCategory, since: started) }
        let g = ConvGeometry(inHeight: x.h, inWidth: x.w, channels: x.c, kernelHeight: kernelSize,
                             kernelWidth: kernelSize, stride: stride, paddingHeight: padding, paddingWidth: padding)
        let n = x.n, h = x.h, w = x.w, c = x.c, ho = g.outHeight, wo = g.outWidth
        inputShape = (n, h, w, c)
        output.resize(n: n, h: ho, w: wo, c: c)
        var out = output.pointer
        for b in 0..<n {
            let image = UnsafePointer(x.pointer + b &* h &* w &* c)
            for oy in 0..<ho {
                for ox in 0..<wo {
                    let (y0, y1, x0, x1, inv) = window(oy, ox, h: h, w: w)
                    out.update(repeating: 0, count: c)
                    for iy in y0..<y1 {
                        for ix in x0..<x1 {
                            let src = image + (iy &* w &+ ix) &* c
                            for ch in 0..<c { out[ch] += src[ch] }
                        }
                    }
                    for ch in 0..<c { out[ch] *= inv }
                    out += c
                }
            }
        }
        return output
    }

    /// dx = 0, then every input of a window receives dy / divisor (windows may overlap).
    public func backward(_ dy: Tensor) -> Tensor {
        let started = Profiler.start()
        defer { Profiler.record(Self.profileCategory, since: started) }
        let (n, h, w, c) = inputShape
        precondition(dy.hasSameShape(as: output), "AvgPool2d.backward: gradient shape \(dy.shape) ≠ output shape \(output.shape)")
        let dInput = dy.acquireFromSamePool(n: n, h: h, w: w, c: c)
        dInput.zero()
        let ho = output.h, wo = output.w
        var g = UnsafePointer(dy.pointer)
        for b in 0..<n {
            let image = dInput.pointer + b &* h &* w &* c
            for oy in 0..<ho {
                for ox in 0..<wo {
                    let (y0, y1, x0, x1, inv) = window(oy, ox, h: h, w: w)
                    for iy in y0..<y1 {
                        for ix in x0..<x1 {
                            let dst = image + (iy &* w &+ ix) &* c
                            for ch in 0..<c { dst[ch] += g[ch] * inv }
                        }
                    }
                    g += c
                }
            }
        }
        dy.release()
        return dInput
    }
}
