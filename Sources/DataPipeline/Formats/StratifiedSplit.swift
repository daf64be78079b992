import Kernels

/// Splits one labelled set into train and val, for an ImageFolder without a val folder.
///
/// The rule, per class with n images (in the set's order):
/// - val takes k = round(fraction · n) of them (halves away from zero), but at least 1 when
///   n ≥ 2 and at most n − 1, so every class with two or more images is in both parts;
/// - which k: the first k of a Fisher–Yates shuffle of 0..<n driven by
///   `SplitMix64(seed: seed, classIndex)`, so a class's split depends only on the seed, its
///   index and its own images, never on other classes;
/// - both parts keep the original sample order.
/// The shuffle is written out here rather than `shuffle(using:)`, whose algorithm the standard
/// library does not promise to keep, so the split stays the same across Swift versions.
public func stratifiedSplit(_ dataset: ImageDataset, valFraction: Double, seed: UInt64)
    -> (train: ImageDataset, val: ImageDataset)
{
    precondition(valFraction > 0 && valFraction < 1, "valFraction must be in (0, 1)")
    var positionsByClass = [[Int]](repeating: [], count: dataset.classNames.count)
    for (position, sample) in dataset.samples.enumerated() { positionsByClass[sample.label].append(position) }
    var isVal = [Bool](repeating: false, count: dataset.count)
    for (label, positions) in positionsByClass.enumerated() {
        let n = positions.count
        guard n >= 2 else { continue }
        let k = min(max(Int((valFraction * Double(n)).rounded()), 1), n - 1)
        var order = Array(0..<n)
        var rng = SplitMix64(seed: seed, UInt64(label))
        for i in stride(from: n - 1, to: 0, by: -1) { order.swapAt(i, rng.nextInt(below: i + 1)) }
        for i in order.prefix(k) { isVal[positions[i]] = true }
    }
    var train = dataset, val = dataset
    train.samples = zip(dataset.samples, isVal).filter { !$0.1 }.map(\.0)
    val.samples = zip(dataset.samples, isVal).filter { $0.1 }.map(\.0)
    return (train, val)
}
