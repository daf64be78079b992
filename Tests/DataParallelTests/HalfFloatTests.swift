import CHalfFloat
import DataParallel
import XCTest

/// The fp16/bf16 kernels of --grad-compression against independent references: Swift's own
/// Float16 conversions (round to nearest even) and a bit-level bfloat16 rounding. Every value
/// goes once through the 8-wide F16C path and once through the scalar tail.
final class HalfFloatTests: XCTestCase {
    var values: [Float] = {
        var values: [Float] = [0, -0, 1, -1, 0.1, 1.0 / 3, 65504, 65519.99, 65520, -70000, 1e-8, 6e-8, 2.9802322e-8,
                               5.9604645e-8, 6.1035156e-5, 6.1e-5, 3e-5, .infinity, -.infinity, 1e30, -1e-30,
                               .leastNonzeroMagnitude, .greatestFiniteMagnitude, 1.00048828125, 1.000732421875, 2049, 2051]
        var state: UInt64 = 12345
        for _ in 0..<4000 {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            let bits = UInt32(truncatingIfNeeded: state >> 32)
            let value = Float(bitPattern: bits)
            if value.isFinite && abs(value) < 1e6 { values.append(value) }
            values.append(Float(Int32(truncatingIfNeeded: bits)) / Float(1 << 24))
        }
        return values
    }()

    /// Runs `kernel` on each value alone (scalar code) and on all of them at once (vector code).
    func bothPaths<T: Equatable>(_ count: Int, _ kernel: (_ start: Int, _ count: Int) -> Void, read: () -> [T]) -> ([T], [T]) {
        kernel(0, count)
        let vector = read()
        for i in 0..<count { kernel(i, 1) }
        return (vector, read())
    }

    func testFloatToHalfRoundsLikeSwiftFloat16() {
        var out = [UInt16](repeating: 0, count: values.count)
        let (vector, scalar) = bothPaths(values.count, { start, n in
            values.withUnsafeBufferPointer { v in out.withUnsafeMutableBufferPointer { o in
                hf_f32_to_f16(v.baseAddress! + start, o.baseAddress! + start, n) } }
        }, read: { out })
        for (i, v) in values.enumerated() {
            let reference = Float16(v).bitPattern
            XCTAssertEqual(vector[i], reference, "vector path, \(v)")
            XCTAssertEqual(scalar[i], reference, "scalar path, \(v)")
        }
        var nan = Float.nan, packed: UInt16 = 0
        hf_f32_to_f16(&nan, &packed, 1)
        XCTAssertTrue(Float16(bitPattern: packed).isNaN)
    }

    func testHalfToFloatIsExact() {
        let halves = (0...UInt16.max).map { $0 }
        var out = [Float](repeating: 0, count: halves.count)
        let (vector, scalar) = bothPaths(halves.count, { start, n in
            halves.withUnsafeBufferPointer { h in out.withUnsafeMutableBufferPointer { o in
                hf_f16_to_f32(h.baseAddress! + start, o.baseAddress! + start, n) } }
        }, read: { out })
        for h in halves where !Float16(bitPattern: h).isNaN {
            XCTAssertEqual(vector[Int(h)].bitPattern, Float(Float16(bitPattern: h)).bitPattern, "vector, 0x\(String(h, radix: 16))")
            XCTAssertEqual(scalar[Int(h)].bitPattern, Float(Float16(bitPattern: h)).bitPattern, "scalar, 0x\(String(h, radix: 16))")
        }
    }

    func testHalfSumIsOneRoundingOfTheFloatSum() {
        let a = values.map { Float16($0).bitPattern }, b = values.reversed().map { Float16($0 * 0.75).bitPattern }
        var inout_ = b
        let (vector, scalar) = bothPaths(a.count, { start, n in
            if n == a.count || start == 0 { inout_ = b }
            a.withUnsafeBufferPointer { x in inout_.withUnsafeMutableBufferPointer { y in
                hf_f16_add(x.baseAddress! + start, y.baseAddress! + start, n) } }
        }, read: { inout_ })
        for i in a.indices {
            let reference = Float16(Float(Float16(bitPattern: a[i])) + Float(Float16(bitPattern: b[i])))
            if reference.isNaN { continue }
            XCTAssertEqual(vector[i], reference.bitPattern, "vector, \(i)")
            XCTAssertEqual(scalar[i], reference.bitPattern, "scalar, \(i)")
        }
    }

    /// bfloat16 by hand: keep the top 16 bits, rounding the dropped 16 to nearest, ties to even.
    func referenceBF16(_ v: Float) -> UInt16 {
        let bits = v.bitPattern
        let upper = UInt16(bits >> 16), lower = bits & 0xFFFF
        if lower > 0x8000 || (lower == 0x8000 && upper & 1 == 1) { return upper &+ 1 }
        return upper
    }

    func testBFloat16RoundsToNearestEvenAndAddsInFloat() {
        var packed = [UInt16](repeating: 0, count: values.count)
        hf_f32_to_bf16(values, &packed, values.count)
        for (i, v) in values.enumerated() { XCTAssertEqual(packed[i], referenceBF16(v), "\(v)") }
        var back = [Float](repeating: 0, count: values.count)
        hf_bf16_to_f32(packed, &back, values.count)
        for (i, p) in packed.enumerated() { XCTAssertEqual(back[i].bitPattern, UInt32(p) << 16) }
        var sums = packed.reversed().map { $0 }
        let other = sums
        hf_bf16_add(packed, &sums, values.count)
        for i in values.indices {
            let exact = Float(bitPattern: UInt32(packed[i]) << 16) + Float(bitPattern: UInt32(other[i]) << 16)
            if exact.isNaN { continue }
            XCTAssertEqual(sums[i], referenceBF16(exact), "\(i)")
        }
    }

    func testCompressionRoundTripThroughTheEnum() {
        var packed = [UInt16](repeating: 0, count: 3)
        var back = [Float](repeating: 0, count: 3)
        GradientCompression.fp16.compress([0.1, 3, 1e5], into: &packed, count: 3)
        GradientCompression.fp16.decompress(packed, into: &back, count: 3)
        XCTAssertEqual(back, [Float(Float16(0.1)), 3, .infinity])
        GradientCompression.bf16.compress([0.1, 3, 1e5], into: &packed, count: 3)
        GradientCompression.bf16.decompress(packed, into: &back, count: 3)
        XCTAssertEqual(back, [0.10009765625, 3, 99840])
    }
}
