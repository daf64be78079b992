import XCTest
import Kernels

/// The gradient pool's bookkeeping (Note [Gradient pool] in Kernels/TensorPool.swift).
final class TensorPoolTests: XCTestCase {
    func testReleasedTensorsAreReused() {
        let pool = TensorPool()
        let a = pool.acquire(n: 2, h: 3, w: 3, c: 4)
        XCTAssertEqual(a.shape, [2, 3, 3, 4])
        XCTAssertTrue(a.isExclusive)
        XCTAssertEqual(pool.liveCount, 1)
        a.release()
        XCTAssertEqual(pool.liveCount, 0)
        let b = pool.acquire(n: 1, h: 3, w: 3, c: 4)
        XCTAssertTrue(a === b, "a free tensor large enough is handed out again")
        XCTAssertEqual(b.shape, [1, 3, 3, 4])
        b.release()
        XCTAssertEqual(pool.tensorCount, 1)
        XCTAssertEqual(pool.peakLiveCount, 1)
    }

    /// The tightest free fit wins; with none large enough the largest free tensor grows, so
    /// the pool never holds more tensors than were live at once.
    func testBestFitAndGrowth() {
        let pool = TensorPool()
        let small = pool.acquire(n: 1, h: 1, w: 1, c: 10), large = pool.acquire(n: 1, h: 1, w: 1, c: 100)
        small.release()
        large.release()
        let mid = pool.acquire(n: 1, h: 1, w: 1, c: 50)
        XCTAssertTrue(mid === large)
        let tiny = pool.acquire(n: 1, h: 1, w: 1, c: 5)
        XCTAssertTrue(tiny === small)
        mid.release()
        tiny.release()
        let huge = pool.acquire(n: 1, h: 1, w: 1, c: 1000)
        XCTAssertTrue(huge === large, "the largest free tensor grows")
        XCTAssertGreaterThanOrEqual(huge.storage.capacity, 1000)
        XCTAssertEqual(pool.tensorCount, 2)
        XCTAssertEqual(pool.reservedBytes, (10 + 1000) * 4)
        huge.release()
    }

    func testHoldsAndInPlaceTargets() {
        let pool = TensorPool()
        let g = pool.acquire(n: 1, h: 2, w: 2, c: 1)
        XCTAssertTrue(g.inPlaceOrNew() === g, "the only holder may overwrite")
        g.retain()
        XCTAssertFalse(g.isExclusive)
        let other = g.inPlaceOrNew()
        XCTAssertFalse(other === g, "a shared gradient is not overwritten")
        XCTAssertTrue(other.pool === pool)
        g.release()
        XCTAssertEqual(pool.liveCount, 2, "one hold remains")
        g.release()
        other.release()
        XCTAssertEqual(pool.liveCount, 0)

        let unmanaged = Tensor(n: 1, h: 2, w: 2, c: 1)
        XCTAssertFalse(unmanaged.isExclusive)
        let fresh = unmanaged.inPlaceOrNew()
        XCTAssertFalse(fresh === unmanaged)
        XCTAssertTrue(fresh.isExclusive, "a result drawn outside any pool is still managed")
        XCTAssertNil(fresh.pool)
        unmanaged.release()  // no effect
        XCTAssertEqual(unmanaged.holders, 0)
    }

    func testSumGradientsWritesIntoAnExclusiveOperand() {
        let pool = TensorPool()
        let a = pool.acquire(n: 1, h: 1, w: 1, c: 3), b = pool.acquire(n: 1, h: 1, w: 1, c: 3)
        for i in 0..<3 { a.pointer[i] = Float(i); b.pointer[i] = 10 }
        b.retain()  // b is still needed elsewhere: the sum must go into a
        let sum = sumGradients(a, b)
        XCTAssertTrue(sum === a)
        XCTAssertEqual(sum.array, [10, 11, 12])
        XCTAssertEqual(b.array, [10, 10, 10])
        XCTAssertEqual(b.holders, 1)
        b.release()
        sum.release()
        XCTAssertEqual(pool.liveCount, 0)

        let x = Tensor(n: 1, h: 1, w: 1, c: 2, values: [1, 2]), y = Tensor(n: 1, h: 1, w: 1, c: 2, values: [3, 4])
        let unmanagedSum = sumGradients(x, y)
        XCTAssertFalse(unmanagedSum === x || unmanagedSum === y, "unmanaged operands are never overwritten")
        XCTAssertEqual(unmanagedSum.array, [4, 6])
        XCTAssertEqual(x.array, [1, 2])
    }

    func testPoisoningPoolFillsWithNaN() {
        let pool = TensorPool(poisonsTensors: true)
        let t = pool.acquire(n: 1, h: 1, w: 2, c: 2)
        XCTAssertTrue(t.array.allSatisfy(\.isNaN))
        t.pointer.update(repeating: 1, count: t.count)
        t.release()
        XCTAssertTrue(t.array.allSatisfy(\.isNaN), "a released tensor is poisoned for whoever still reads it")
    }
}
