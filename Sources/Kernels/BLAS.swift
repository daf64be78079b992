import COpenBLAS

/// Row-major single-precision GEMM: C = alpha · op(A) · op(B) + beta · C,
/// with op(A) of shape [m, k] and op(B) of shape [k, n]. With more than one compute thread a
/// large product is cut into blocks of C's rows (or columns, when C has few rows), one
/// single-threaded OpenBLAS call per thread (Note [Compute threads]).
@inlinable
public func sgemm(transA: Bool = false, transB: Bool = false, m: Int, n: Int, k: Int,
                  alpha: Float = 1, a: UnsafePointer<Float>, lda: Int,
                  b: UnsafePointer<Float>, ldb: Int,
                  beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int) {
    guard m > 0, n > 0 else { return }
    let started = Profiler.start()
    let threads = ComputeThreads.shared
    // Blocks of 16 rows or columns (whole register tiles); split the longer side.
    let blocks = max(m, n) / 16
    if threads.count > 1 && blocks >= 2 {
        let splitRows = m >= n
        threads.parallelFor(work: m * n * k / 64) { part, parts in
            let own = splitRange(blocks, part: part, parts: parts)
            let first = own.lowerBound * 16, last = part == parts - 1 ? (splitRows ? m : n) : own.upperBound * 16
            if splitRows {
                // Row r of op(A) starts at a + r·lda, or at column r when A is stored transposed.
                sgemmOneThread(transA: transA, transB: transB, m: last - first, n: n, k: k, alpha: alpha,
                               a: a + (transA ? first : first * lda), lda: lda, b: b, ldb: ldb, beta: beta,
                               c: c + first * ldc, ldc: ldc)
            } else {
                sgemmOneThread(transA: transA, transB: transB, m: m, n: last - first, k: k, alpha: alpha,
                               a: a, lda: lda, b: b + (transB ? first * ldb : first), ldb: ldb, beta: beta,
                               c: c + first, ldc: ldc)
            }
        }
    } else {
        sgemmOneThread(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda,
                       b: b, ldb: ldb, beta: beta, c: c, ldc: ldc)
    }
    Profiler.record(Profiler.gemm, since: started, flops: 2 * Double(m) * Double(n) * Double(k))
}

@usableFromInline
func sgemmOneThread(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float, a: UnsafePointer<Float>, lda: Int,
                    b: UnsafePointer<Float>, ldb: Int, beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int) {
    if !transA && !transB && openBLASWouldAllocate(m: m, n: n, k: k) {
        narrowGEMM(m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: c, ldc: ldc)
        return
    }
    cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
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

/// Sets how many threads this process computes on (ranks per host × threads ≤ cores): ours,
/// with OpenBLAS kept to one (Note [Compute threads]).
public func setComputeThreads(_ count: Int) {
    openblas_set_num_threads(1)
    ComputeThreads.shared.setCount(count)
}

public func blasThreads() -> Int { Int(openblas_get_num_threads()) }
