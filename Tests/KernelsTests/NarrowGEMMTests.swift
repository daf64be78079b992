import COpenBLAS
import Kernels
import XCTest

/// `sgemm` computes the small untransposed products OpenBLAS would allocate for itself
/// (`openBLASWouldAllocate`): the same results as OpenBLAS, for every beta, strided rows.
final class NarrowGEMMTests: XCTestCase {
    func testNarrowProductsMatchOpenBLAS() {
        var rng = SplitMix64(seed: 9)
        for (m, n, k) in [(4, 8, 96), (16, 24, 384), (1, 1, 5), (7, 24, 3), (16, 40, 240), (64, 65, 240)] {
            XCTAssertTrue(openBLASWouldAllocate(m: m, n: n, k: k))
            for (alpha, beta) in [(Float(1), Float(0)), (0.5, 1), (2, -0.25)] {
                let lda = k + 3, ldb = n + 2, ldc = n + 5
                let a = (0..<(m * lda)).map { _ in Float(rng.nextNormal()) }
                let b = (0..<(k * ldb)).map { _ in Float(rng.nextNormal()) }
                var c = (0..<(m * ldc)).map { _ in Float(rng.nextNormal()) }
                if beta == 0 { for i in 0..<m { c[i * ldc] = .nan } }  // beta 0 must overwrite NaN
                var expected = c
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(m), Int32(n), Int32(k), alpha, a,
                            Int32(lda), b, Int32(ldb), beta, &expected, Int32(ldc))
                sgemm(m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: &c, ldc: ldc)
                for i in 0..<m {
                    for j in 0..<ldc {
                        let (x, y) = (c[i * ldc + j], expected[i * ldc + j])
                        XCTAssertEqual(x, y, accuracy: 1e-4 * max(1, abs(y)), "m \(m) n \(n) k \(k) beta \(beta) at \(i),\(j)")
                    }
                }
            }
        }
        XCTAssertFalse(openBLASWouldAllocate(m: 64, n: 66, k: 240), "above 100³")
        XCTAssertFalse(openBLASWouldAllocate(m: 4, n: 32, k: 240), "a multiple of 16 columns")
    }
}
