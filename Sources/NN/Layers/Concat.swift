import Kernels

// Shape letters: N batch, H/W height/width, C = Σ Cᵢ output channels, Cᵢ branch i's channels.

/// Runs every branch on the same input and concatenates their outputs along channels, in branch
/// order (torch.cat(dim=1) in NCHW; the last axis in NHWC): an Inception "mixed" module.
///
/// Backward splits the output gradient into each branch's channel slice, runs the branches
/// backward, and sums their input gradients (the input fanned out to every branch, see the
/// residual note in Kernels/Elementwise.swift).
public final class Concat: Layer {
    public let branches: [any Layer]
    private let output = Tensor()
    /// Per branch: its last output (owned by the branch). Replaced element by element, so a
    /// steady-state step allocates nothing.
    private var branchOutputs: [Tensor]
    /// dy's per-branch slices during backward; kept so that backward allocates no array.
    private var slices: [Tensor]

    public init(_ branches: [any Layer]) {
        precondition(!branches.isEmpty, "Concat needs at least one branch")
        self.branches = branches
        branchOutputs = branches.map { _ in Tensor() }
        slices = branchOutputs
    }

    public func forward(_ x: Tensor, mode: Mode) -> Tensor {
        var channels = 0
        for i in branches.indices {
            let y = branches[i].forward(x, mode: mode)
            branchOutputs[i] = y
            let first = branchOutputs[0]
            precondition(y.n == first.n && y.h == first.h && y.w == first.w,
                         "Concat: branch \(i) output \(y.shape) does not match branch 0 output \(first.shape) outside channels")
            channels += y.c
        }
        let first = branchOutputs[0]
        let rows = first.n * first.h * first.w
        output.resize(n: first.n, h: first.h, w: first.w, c: channels)
        var offset = 0
        for y in branchOutputs {
            let c = y.c
            var src = UnsafePointer(y.pointer), dst = output.pointer + offset
            for _ in 0..<rows {
                dst.update(from: src, count: c)
                src += c
                dst += channels
            }
            offset += c
        }
        return output
    }

    /// All slices are cut before any branch runs, so dy goes back to its pool first and the
    /// slices (together dy's size) are consumed branch by branch.
    public func backward(_ dy: Tensor) -> Tensor {
        precondition(dy.hasSameShape(as: output), "Concat.backward: gradient shape \(dy.shape) ≠ output shape \(output.shape)")
        let rows = dy.n * dy.h * dy.w, channels = dy.c
        var offset = 0
        for (i, y) in branchOutputs.enumerated() {
            let c = y.c
            let slice = dy.acquireFromSamePool(n: dy.n, h: dy.h, w: dy.w, c: c)
            var src = UnsafePointer(dy.pointer + offset), dst = slice.pointer
            for _ in 0..<rows {
                dst.update(from: src, count: c)
                src += channels
                dst += c
            }
            offset += c
            slices[i] = slice
        }
        dy.release()
        var dInput = branches[0].backward(slices[0])
        for i in branches.indices.dropFirst() {
            dInput = sumGradients(dInput, branches[i].backward(slices[i]))
        }
        return dInput
    }
}
