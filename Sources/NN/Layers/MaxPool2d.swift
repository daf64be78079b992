import Kernels

// Shape letters: N batch, H/W input height/width, Ho/Wo output height/width, C channels.

/// Max pooling over NHWC input, as PyTorch's MaxPool2d with dilation 1 and ceil_mode = false:
/// padding acts as −∞, Ho = floor((H + 2p − k)/s) + 1, and backward routes each output gradient
/// to the first maximum of its window in (kh, kw) order (strict `>`; a NaN wins, as in PyTorch).
public final class MaxPool2d: Layer {
    private static let profileCategory = Profiler.category("max pool")
    public let kernelSize: Int
    public let stride: Int
    public let padding: Int

    private let output = Tensor()
    private var inputShape = (n: 0, h: 0, w: 0, c: 0)
    /// Per output element: the argmax as an offset inside its input image (h·W + w)·C + c.
    /// Per image rather than global so Int32 cannot overflow with large batches.
    private var argmax: UnsafeMutablePointer<Int32> = .allocate(capacity: 1)
    private var argmaxCapacity = 1

    public init(kernelSize: Int, stride: Int, padding: Int = 0) {
        precondition(kernelSize > 0 && stride > 0, "MaxPool2d: kernel and stride must be positive")
        precondition(padding >= 0 && padding <= kernelSize / 2,
                     "MaxPool2d: padding \(padding) must be at most half the kernel size \(kernelSize) (PyTorch's rule)")
        self.kernelSize = kernelSize
        self.stride = stride
        self.padding = padding
    }

    deinit { argmax.deallocate() }

    public func forward(_ x: Tensor, mode: Mode) -> Tensor {
        let started = Profiler.start()
        defer { Profiler.record(Self.profileCategory, since: started) }
        let g = ConvGeometry(inHeight: x.h, inWidth: x.w, channels: x.c, kernelHeight: kernelSize,
                             kernelWidth: kernelSize, stride: stride, paddingHeight: padding, paddingWidth: padding)
        let n = x.n, h = x.h, w = x.w, c = x.c, ho = g.outHeight, wo = g.outWidth
        let k = kernelSize, s = stride, p = padding
        precondition(h * w * c <= Int(Int32.max), "MaxPool2d: image too large for Int32 argmax")
        inputShape = (n, h, w, c)
        output.resize(n: n, h: ho, w: wo, c: c)
        let outCount = output.count
        if outCount > argmaxCapacity {
            argmax.deallocate()
            argmax = .allocate(capacity: outCount)
            argmaxCapacity = outCount
        }
        let lanes = SIMD8<Int32>(0, 1, 2, 3, 4, 5, 6, 7)
        var out = output.pointer
        var idx = argmax
        for b in 0..<n {
            let image = UnsafePointer(x.pointer + b &* h &* w &* c)
            for oy in 0..<ho {
                let y0 = max(oy &* s &- p, 0), y1 = min(oy &* s &- p &+ k, h)
                for ox in 0..<wo {
                    let x0 = max(ox &* s &- p, 0), x1 = min(ox &* s &- p &+ k, w)
                    // PyTorch starts from −∞ at the window's first in-bounds position.
                    let first = Int32((y0 &* w &+ x0) &* c)
                    // Eight channels at a time with the running max and argmax in registers (a
                    // scalar loop with a data-dependent index update does not vectorise).
                    var ch = 0
                    while ch &+ 8 <= c {
                        var best = SIMD8<Float>(repeating: -.infinity)
                        var bestAt = SIMD8<Int32>(repeating: first &+ Int32(ch)) &+ lanes
                        for iy in y0..<y1 {
                            for ix in x0..<x1 {
                                let offset = (iy &* w &+ ix) &* c &+ ch
                                let v = UnsafeRawPointer(image + offset).loadUnaligned(as: SIMD8<Float>.self)
                                let take = (v .> best) .| (v .!= v)
                                best.replace(with: v, where: take)
                                bestAt.replace(with: SIMD8<Int32>(repeating: Int32(offset)) &+ lanes, where: take)
                            }
                        }
                        UnsafeMutableRawPointer(out + ch).storeBytes(of: best, as: SIMD8<Float>.self)
                        UnsafeMutableRawPointer(idx + ch).storeBytes(of: bestAt, as: SIMD8<Int32>.self)
                        ch &+= 8
                    }
                    while ch < c {
                        var best = -Float.infinity
                        var at = first &+ Int32(ch)
                        for iy in y0..<y1 {
                            for ix in x0..<x1 {
                                let offset = (iy &* w &+ ix) &* c &+ ch
                                let v = image[offset]
                                if v > best || v.isNaN { best = v; at = Int32(offset) }
                            }
                        }
                        out[ch] = best
                        idx[ch] = at
                        ch &+= 1
                    }
                    out += c
                    idx += c
                }
            }
        }
        return output
    }

    /// dx = 0, then dx[argmax] += dy for every output element (windows may overlap).
    public func backward(_ dy: Tensor) -> Tensor {
        let started = Profiler.start()
        defer { Profiler.record(Self.profileCategory, since: started) }
        let (n, h, w, c) = inputShape
        precondition(dy.hasSameShape(as: output), "MaxPool2d.backward: gradient shape \(dy.shape) ≠ output shape \(output.shape)")
        let dInput = dy.acquireFromSamePool(n: n, h: h, w: w, c: c)
        dInput.zero()
        let perImageOut = output.h * output.w * c, perImageIn = h * w * c
        var g = UnsafePointer(dy.pointer)
        var idx = UnsafePointer(argmax)
        for b in 0..<n {
            let dx = dInput.pointer + b &* perImageIn
            for i in 0..<perImageOut { dx[Int(idx[i])] += g[i] }
            g += perImageOut
            idx += perImageOut
        }
        dy.release()
        return dInput
    }
}
