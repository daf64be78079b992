import Foundation
import Kernels

// Note [Fast decode settings]: measured with bench-data on 500×375 photo-like JPEGs (4:2:0,
// quality 90), 224 output, one worker, CPU time per image on a loaded 2-core machine (medians of
// 5 interleaved runs), and on the decoded region against the exact decode (RegionDecodeTests,
// testFastSettingsDifferFromTheExactDecodeBoundedly):
//   - libjpeg's fast integer IDCT (JDCT_IFAST): no faster (668 vs 677 images per CPU-second),
//     mean |diff| 1.0 level (max 5–7; 0.9–1.0 after the resize to 224). Not used: libjpeg-turbo's
//     accurate IDCT is SIMD, and once only the region is transformed, entropy decoding (which
//     no setting avoids) is about half of the fast path's time.
//   - plain chroma upsampling (do_fancy_upsampling = FALSE, merged upsampling + colour
//     conversion): about 12% more images per CPU-second (758 vs 677, with the fast IDCT).
//     After the resize to 224, mean |diff| 0.32 levels (max 10) on a photograph (grace_hopper),
//     2.1 (max 59) on colour noise. Offered as `--fast-upsampling`, off by default, so that
//     the fast path's only departures from the exact one stay the DCT scale and float rounding.
// Where a fast-path image's time went after these changes (perf, same files): Huffman
// decoding 48%, IDCT + upsampling + colour conversion 14%, the float resize 22% (horizontal
// pass 14, vertical 8), the kernel 10% (page faults on fresh batch buffers, file reads).

/// One batch ready for the model. `count` may be below the batch size when files were
/// skipped (possibly 0); `images` is count×S×S×3 and `labels` has `count` entries.
public final class Batch: @unchecked Sendable {
    // @unchecked Sendable: a batch is owned by exactly one side at a time — the worker filling
    // it, then (after the hand-off under the loader's lock) the consumer, then the pool.
    public let images = Tensor()
    public var labels: [Int32] = []
    public var count = 0
    public var skipped = 0
    /// "<file>: <reason>" for each skipped file (what `--strict-data` turns into an error).
    public var problems: [String] = []
    /// Position in the epoch's batch sequence.
    public var index = 0
    init(capacity: Int, size: Int) {
        images.resize(n: capacity, h: size, w: size, c: 3)
        labels.reserveCapacity(capacity)
    }
}

/// Background threads read, decode and transform one rank's images into a small pool of
/// reused batches, delivered strictly in order whatever the worker count. A file that cannot
/// be read or decoded is skipped with one warning naming it; it never stops the run.
public final class BatchLoader: @unchecked Sendable {
    // @unchecked Sendable: all mutable state below is guarded by `condition`.
    private let dataset: ImageDataset
    private let indices: [Int]
    private let batchSize: Int
    private let imageSize: Int
    private let augmentation: Augmentation
    private let seed: UInt64
    private let epoch: Int
    private let warn: @Sendable (String) -> Void
    private let maxPixels: Int
    public let batchCount: Int

    private let condition = NSCondition()
    private var free: [Batch] = []
    private var ready: [Int: Batch] = [:]
    private var nextToClaim = 0
    private var nextToDeliver = 0
    private var stopped = false
    private var running = 0

    public init(dataset: ImageDataset, indices: [Int], batchSize: Int, imageSize: Int, augmentation: Augmentation,
                seed: UInt64, epoch: Int, workers: Int, maxPixels: Int = ImageDecoder.defaultMaxPixels,
                warn: @escaping @Sendable (String) -> Void) {
        self.dataset = dataset; self.indices = indices; self.batchSize = batchSize; self.imageSize = imageSize
        self.augmentation = augmentation; self.seed = seed; self.epoch = epoch; self.warn = warn
        self.maxPixels = maxPixels
        batchCount = (indices.count + batchSize - 1) / batchSize
        let workers = max(1, min(workers, max(batchCount, 1)))
        // Pool: one batch per worker in progress, plus two ready ahead of the consumer.
        free = (0..<(workers + 2)).map { _ in Batch(capacity: batchSize, size: imageSize) }
        running = workers
        for _ in 0..<workers {
            let thread = Thread { [self] in work() }
            thread.stackSize = 1 << 20
            thread.start()
        }
    }

    deinit { stop() }

    /// The next batch in order, or nil after the last one.
    public func next() -> Batch? {
        condition.lock(); defer { condition.unlock() }
        guard nextToDeliver < batchCount else { return nil }
        while ready[nextToDeliver] == nil && !stopped { condition.wait() }
        guard let batch = ready.removeValue(forKey: nextToDeliver) else { return nil }
        nextToDeliver += 1
        return batch
    }

    /// Gives a batch's buffers back for reuse (no allocation in the steady state).
    public func recycle(_ batch: Batch) {
        condition.lock()
        free.append(batch)
        condition.signal()
        condition.unlock()
    }

    /// Stops the workers and waits for them; safe to call more than once.
    public func stop() {
        condition.lock()
        stopped = true
        condition.broadcast()
        while running > 0 { condition.wait() }
        condition.unlock()
    }

    private func work() {
        let decoder = ImageDecoder()
        decoder.maxPixels = maxPixels
        var image = RGBImage(width: 0, height: 0, pixels: [])
        var bytes: [UInt8] = []  // the file's bytes, storage reused from image to image
        let canvas = AugmentImage()  // the uint8 crop when augmentations are on, reused
        let scratch = ResizeScratch()  // the fast path's float rows, reused
        while true {
            // Claim the next batch index together with a free buffer, so batches are claimed
            // in order and the consumer's next batch always has a buffer: no deadlock.
            condition.lock()
            while !stopped && nextToClaim < batchCount && free.isEmpty { condition.wait() }
            if stopped || nextToClaim >= batchCount {
                running -= 1
                condition.broadcast()
                condition.unlock()
                return
            }
            let batch = free.removeLast()
            let k = nextToClaim
            nextToClaim += 1
            condition.unlock()

            fill(batch, index: k, decoder: decoder, image: &image, bytes: &bytes, canvas: canvas, scratch: scratch)

            condition.lock()
            ready[k] = batch
            condition.broadcast()
            condition.unlock()
        }
    }

    private func fill(_ batch: Batch, index k: Int, decoder: ImageDecoder, image: inout RGBImage, bytes: inout [UInt8],
                      canvas: AugmentImage, scratch: ResizeScratch) {
        let start = k * batchSize, end = min(start + batchSize, indices.count)
        batch.index = k
        batch.count = 0
        batch.skipped = 0
        batch.problems.removeAll(keepingCapacity: true)
        batch.labels.removeAll(keepingCapacity: true)
        batch.images.resize(n: end - start, h: imageSize, w: imageSize, c: 3)
        let slotSize = imageSize * imageSize * 3
        for position in start..<end {
            let sampleIndex = indices[position]
            let sample = dataset.samples[sampleIndex]
            do {
                try readImageFile(sample.path, into: &bytes)
                let slot = batch.images.pointer + batch.count * slotSize
                switch augmentation {
                case .train(let transform) where transform.kind == .randomResizedCrop:
                    // The crop is drawn on the header's size, so it is the same whichever way
                    // the pixels are then decoded.
                    let (width, height) = try decoder.imageSize(bytes)
                    let choice = trainResizedCropChoice(height: height, width: width, seed: seed, epoch: epoch,
                                                        sampleIndex: sampleIndex, flipProbability: transform.flipProbability)
                    let unflipped = CropChoice(top: 0, left: 0, flip: choice.flip)
                    if transform.fastDecode {
                        // Only the crop's rows and columns, DCT-scaled where the crop allows:
                        // the same pixels as decoding all and cropping (ImageDecoder.decodeRegion),
                        // then the float resize (Note [Float resize]) unless augmentations need bytes.
                        // Note [Fast decode settings].
                        let eighths = decodeEighths(for: choice.region, size: imageSize)
                        if transform.augments {
                            try decoder.decode(bytes, region: choice.region, eighths: eighths, into: &image,
                                               options: RegionDecodeOptions(fastUpsampling: transform.fastUpsampling))
                            cropFlipAugmentNormalize(resize(image, width: imageSize, height: imageSize), unflipped, transform,
                                                     sampleIndex: sampleIndex, canvas: canvas, into: slot)
                        } else {
                            let pixels = try decoder.decodeRegion(bytes, region: choice.region, eighths: eighths,
                                                                  options: RegionDecodeOptions(fastUpsampling: transform.fastUpsampling))
                            resizeFlipNormalize(pixels, size: imageSize, flip: choice.flip, scratch: scratch, into: slot)
                        }
                    } else {
                        try decoder.decode(bytes, into: &image)
                        cropFlipAugmentNormalize(resizedCrop(image, region: choice.region, size: imageSize), unflipped, transform,
                                                 sampleIndex: sampleIndex, canvas: canvas, into: slot)
                    }
                case .train(let transform):
                    try decoder.decode(bytes, into: &image)
                    let source = resize(image, shorterSide: imageSize)
                    let choice = trainCropChoice(height: source.height, width: source.width, size: imageSize, padding: 4,
                                                 seed: seed, epoch: epoch, sampleIndex: sampleIndex,
                                                 flipProbability: transform.flipProbability)
                    cropFlipAugmentNormalize(source, choice, transform, sampleIndex: sampleIndex, canvas: canvas, into: slot)
                case .eval(let resize):
                    try decoder.decode(bytes, into: &image)
                    evalTransform(image, resize: resize ?? imageSize, size: imageSize, into: slot)
                }
                batch.labels.append(Int32(sample.label))
                batch.count += 1
            } catch {
                batch.skipped += 1
                batch.problems.append("\(sample.path): \(error)")
                warn("skipping \(sample.path): \(error)")
            }
        }
        batch.images.resize(n: batch.count, h: imageSize, w: imageSize, c: 3)
    }

    /// The training crop and flip, then (only when the transform has any) the augmentations
    /// on its bytes, then normalisation. Without augmentations this is `cropFlipNormalize`
    /// itself, so runs that do not ask for them are unchanged bit for bit.
    private func cropFlipAugmentNormalize(_ source: RGBImage, _ crop: CropChoice, _ transform: TrainTransform,
                                          sampleIndex: Int, canvas: AugmentImage, into slot: UnsafeMutablePointer<Float>) {
        guard let choice = trainAugmentChoice(transform, seed: seed, epoch: epoch, sampleIndex: sampleIndex) else {
            cropFlipNormalize(source, crop, size: imageSize, into: slot)
            return
        }
        canvas.loadCrop(of: source, crop, size: imageSize)
        canvas.apply(choice)
        normalize(canvas.pixels, pixelCount: imageSize * imageSize, into: slot)
    }
}
