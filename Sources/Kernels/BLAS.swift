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
    cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    Profiler.record(Profiler.gemm, since: started, flops: 2 * Double(m) * Double(n) * Double(k))
}

/// Sets how many threads OpenBLAS may use in this process (ranks per host × threads ≤ cores).
public func setBLASThreads(_ count: Int) {
    openblas_set_num_threads(Int32(max(count, 1)))
}

public func blasThreads() -> Int { Int(openblas_get_num_threads()) }
