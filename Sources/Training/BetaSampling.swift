import Foundation
import Kernels

// Mixup and CutMix draw their mixing weight from Beta(α, α) (numpy's np.random.beta in timm).
// Beta(a, b) = X / (X + Y) with X ~ Gamma(a), Y ~ Gamma(b); Gamma by Marsaglia and Tsang,
// "A simple method for generating gamma variables" (ACM TOMS 26(3), 2000).

extension SplitMix64 {
    /// log of a Gamma(shape, 1) draw. Kept in logs because for shape < 1 the boost
    /// Gamma(a) = Gamma(a + 1)·U^(1/a) underflows to 0 for small a (α = 0.2 is common in
    /// mixup recipes), and X / (X + Y) would then be 0/0.
    public mutating func nextLogGamma(shape a: Double) -> Double {
        precondition(a > 0, "Gamma shape must be positive, got \(a)")
        if a < 1 {
            let u = max(nextDouble(), Double.leastNonzeroMagnitude)
            return nextLogGamma(shape: a + 1) + Foundation.log(u) / a
        }
        let d = a - 1.0 / 3.0, c = 1 / (9 * d).squareRoot()
        while true {
            let x = nextNormal()
            let t = 1 + c * x
            guard t > 0 else { continue }
            let v = t * t * t
            let u = nextDouble()
            // The squeeze accepts most draws without a logarithm; the log test is exact.
            if u < 1 - 0.0331 * x * x * x * x { return Foundation.log(d * v) }
            if u > 0, Foundation.log(u) < 0.5 * x * x + d * (1 - v + Foundation.log(v)) {
                return Foundation.log(d * v)
            }
        }
    }

    /// A Gamma(shape, 1) draw.
    public mutating func nextGamma(shape a: Double) -> Double { Foundation.exp(nextLogGamma(shape: a)) }

    /// A Beta(a, b) draw in [0, 1].
    public mutating func nextBeta(_ a: Double, _ b: Double) -> Double {
        let logX = nextLogGamma(shape: a), logY = nextLogGamma(shape: b)
        // X / (X + Y) = 1 / (1 + exp(log Y − log X)), finite whatever the magnitudes.
        return 1 / (1 + Foundation.exp(logY - logX))
    }
}
