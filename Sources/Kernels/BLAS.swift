import COpenBLAS

/// Row-major single-precision GEMM: C = alpha · op(A) · op(B) + beta · C,
/// with op(A) of shape [m, k] and op(B) of shape [k, n].
@inlinable
public func sgemm(transA: Bool = false, transB: Bool = false, m: Int, n: Int, k: Int,
                  alpha: Float = 1, a: UnsafePointer<Float>, lda: Int,
                  b: UnsafePointer<Float>, ldb: Int,
                  beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int) {
    guard m > 0, n > 0 else { return }
    let started = Profiler.start()
    if !transA && !transB && openBLASWouldAllocate(m: m, n: n, k: k) {
        narrowGEMM(m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: c, ldc: ldc)
        Profiler.record(Profiler.gemm, since: started, flops: 2 * Double(m) * Double(n) * Double(k))
        return
    }
    cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    Profiler.record(Profiler.gemm, since: started, flops: 2 * Double(m) * Double(n) * Double(k))
}

/// OpenBLAS 0.3.21 (Haswell kernels, one thread) mallocs a scratch buffer in its small-matrix
/// path for row-major untransposed products with m·n·k ≤ 100³ whose n leaves 1 to 8 columns
/// over a multiple of 16 (measured over m 1…256, n 1…130, k 8…2000; the other transposes
/// never allocate): e.g. EfficientNet's squeeze-excitation backward, once per call, which
/// would break the allocation-free training step. Such products are small: a plain loop,
/// vectorised over n, does them instead.
@inlinable public func openBLASWouldAllocate(m: Int, n: Int, k: Int) -> Bool {
    let rest = n % 16
    return rest >= 1 && rest <= 8 && m * n * k <= 1_000_000
}

/// C = alpha · A · B + beta · C without OpenBLAS (see `openBLASWouldAllocate`).
@usableFromInline
func narrowGEMM(m: Int, n: Int, k: Int, alpha: Float, a: UnsafePointer<Float>, lda: Int,
                b: UnsafePointer<Float>, ldb: Int, beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int) {
    for i in 0..<m {
        let row = c + i &* ldc, ai = a + i &* lda
        // beta = 0 overwrites, as BLAS defines it (C may hold NaN).
        if beta == 0 { row.update(repeating: 0, count: n) } else if beta != 1 { for j in 0..<n { row[j] *= beta } }
        for p in 0..<k {
            let scale = alpha * ai[p], bp = b + p &* ldb
            for j in 0..<n { row[j] += scale * bp[j] }
        }
    }
}

/// Sets how many threads OpenBLAS may use in this process (ranks per host × threads ≤ cores).
public func setBLASThreads(_ count: Int) {
    openblas_set_num_threads(Int32(max(count, 1)))
}

public func blasThreads() -> Int { Int(openblas_get_num_threads()) }
