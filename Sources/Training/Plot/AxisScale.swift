import Foundation

/// An axis's range and tick marks, on "nice" values: 1, 2 or 5 times a power of ten apart.
struct AxisScale: Equatable {
    var lower: Double
    var upper: Double
    var ticks: [Double]
    var tickStep: Double

    /// Ticks for data between `minimum` and `maximum`, about `targetTicks` of them; the range is
    /// the data's plus `margin` of its span on each side, with the ticks inside it.
    static func nice(minimum: Double, maximum: Double, targetTicks: Int = 5, margin: Double = 0) -> AxisScale {
        var low = minimum, high = maximum
        if !(low.isFinite && high.isFinite) { low = 0; high = 1 }
        if high - low < 1e-12 * max(1, abs(high)) {
            // One value (or all equal): centre it in a range a tenth of its magnitude each way.
            let half = low == 0 ? 1 : abs(low) * 0.1
            low -= half
            high += half
        }
        let pad = (high - low) * margin
        low -= pad
        high += pad
        let step = niceStep((high - low) / Double(max(1, targetTicks)))
        var ticks: [Double] = []
        var index = (low / step - 1e-9).rounded(.up)
        while index * step <= high + step * 1e-9 {
            ticks.append(index * step == 0 ? 0 : index * step)  // no "-0"
            index += 1
        }
        return AxisScale(lower: low, upper: high, ticks: ticks, tickStep: step)
    }

    /// The 1-2-5 value nearest to `raw` (on a log scale, roughly), so the tick count stays near the target.
    static func niceStep(_ raw: Double) -> Double {
        let magnitude = pow(10, (log10(raw)).rounded(.down))
        let fraction = raw / magnitude
        let nice: Double = fraction < 1.5 ? 1 : fraction < 3.5 ? 2 : fraction < 7.5 ? 5 : 10
        return nice * magnitude
    }

    /// Position of `value` in 0…1 along the axis.
    func fraction(_ value: Double) -> Double { (value - lower) / (upper - lower) }

    /// As many decimals as the tick step needs and no more (0.02, 0.04 … not 0.020000);
    /// steps below 0.0001 switch to exponents (2e-5), which stay short.
    func label(_ value: Double) -> String {
        if value == 0 { return "0" }
        let exponent = Int(log10(tickStep).rounded(.down))
        if exponent >= -4 { return String(format: "%.\(max(0, -exponent))f", value) }
        let mantissaExponent = Int(log10(abs(value)).rounded(.down))
        let mantissa = value / pow(10, Double(mantissaExponent))
        var digits = String(format: "%.\(max(0, mantissaExponent - exponent))f", mantissa)
        if digits.contains(".") {
            while digits.hasSuffix("0") { digits.removeLast() }
            if digits.hasSuffix(".") { digits.removeLast() }
        }
        return "\(digits)e\(mantissaExponent)"
    }
}
