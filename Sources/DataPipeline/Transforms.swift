import Kernels

// Shape letters: H/W height/width, S output size (square), C = 3 channels.

/// What the loader does to each image before normalising it (ImageNet mean/std on x/255).
/// Resize and crop are torchvision's on PIL images, pixel for pixel (bilinear, antialiased; see
/// TorchvisionTransforms.swift).
public enum Augmentation: Sendable, Equatable {
    /// Training: see `TrainTransform`.
    case train(TrainTransform)
    /// Resize(R, shorter side; R = S when nil) + CenterCrop(S).
    case eval(resize: Int?)

    /// The Tiny-ImageNet recipe (pad-4 random crop and a fair flip).
    public static let train = Augmentation.train(TrainTransform())
}

/// The training transform presets (`--train-transform`).
/// - `padCrop`: Resize(S) when the shorter side is not S, RandomCrop(S, padding 4, fill 0),
///   RandomHorizontalFlip(p): the Tiny-ImageNet / CIFAR recipe for small images.
/// - `randomResizedCrop`: RandomResizedCrop(S, scale (0.08, 1), ratio (3/4, 4/3)),
///   RandomHorizontalFlip(p): torchvision's ImageNet recipe.
/// Either may be followed by TrivialAugmentWide and/or ColorJitter on the uint8 crop
/// (Augmentations.swift), before normalisation; both are off by default.
public struct TrainTransform: Sendable, Equatable {
    public enum Kind: String, Sendable, CaseIterable { case padCrop = "pad-crop", randomResizedCrop = "random-resized-crop" }
    public var kind: Kind
    public var flipProbability: Float
    /// RandomResizedCrop only: decode only the crop's region of a JPEG, at the smallest DCT
    /// scale (n/8) that still gives the crop at least S pixels each way, then resize in float
    /// (Note [Float resize]). Pixels differ slightly from decode-then-resize, which evaluation
    /// and `--exact-decode` keep.
    public var fastDecode: Bool
    /// With `fastDecode`: libjpeg's plain chroma upsampling too (Note [Fast decode settings]).
    public var fastUpsampling: Bool
    /// nil or all zero: no colour jitter.
    public var colorJitter: ColorJitter?
    public var autoAugment: AutoAugmentPolicy
    public init(kind: Kind = .padCrop, flipProbability: Float = 0.5, fastDecode: Bool = true,
                fastUpsampling: Bool = false, colorJitter: ColorJitter? = nil, autoAugment: AutoAugmentPolicy = .none) {
        self.kind = kind
        self.flipProbability = flipProbability
        self.fastDecode = fastDecode
        self.fastUpsampling = fastUpsampling
        self.colorJitter = colorJitter
        self.autoAugment = autoAugment
    }

    /// Whether the crop goes through the uint8 augmentation stage at all.
    public var augments: Bool { autoAugment != .none || colorJitter?.isActive == true }
}

/// The smallest of 1/8, 1/4, 1/2 and 1 (in eighths) at which `region` still spans at least
/// `size` pixels in both directions. Only these scales: libjpeg-turbo's 3/8, 5/8, 3/4, 7/8
/// IDCTs have no SIMD paths and decode slower than full size (measured).
public func decodeEighths(for region: CropRegion, size: Int) -> Int {
    let needed = max((8 * size + region.width - 1) / region.width, (8 * size + region.height - 1) / region.height)
    return [1, 2, 4, 8].first { $0 >= needed } ?? 8
}

/// `region` of a width×height image, in the coordinates of the same image decoded at
/// scaledWidth×scaledHeight: edges scaled outwards, clamped to the scaled image.
public func scaleRegion(_ region: CropRegion, width: Int, height: Int, scaledWidth: Int, scaledHeight: Int) -> CropRegion {
    guard scaledWidth != width || scaledHeight != height else { return region }
    let sx = Double(scaledWidth) / Double(width), sy = Double(scaledHeight) / Double(height)
    let left = max(Int((Double(region.left) * sx).rounded(.down)), 0)
    let top = max(Int((Double(region.top) * sy).rounded(.down)), 0)
    let right = min(Int((Double(region.left + region.width) * sx).rounded(.up)), scaledWidth)
    let bottom = min(Int((Double(region.top + region.height) * sy).rounded(.up)), scaledHeight)
    return CropRegion(top: top, left: left, height: max(bottom - top, 1), width: max(right - left, 1))
}

public let imagenetMean: (Float, Float, Float) = (0.485, 0.456, 0.406)
public let imagenetStd: (Float, Float, Float) = (0.229, 0.224, 0.225)

/// The random choices of one sample: derived from (seed, epoch, sample index), never from
/// which thread decodes it, so runs are reproducible whatever the worker count.
public struct CropChoice: Equatable, Sendable {
    public var top: Int
    public var left: Int
    public var flip: Bool
    public init(top: Int, left: Int, flip: Bool) { self.top = top; self.left = left; self.flip = flip }
}

public func trainCropChoice(height: Int, width: Int, size: Int, padding: Int, seed: UInt64, epoch: Int,
                            sampleIndex: Int, flipProbability: Float = 0.5) -> CropChoice {
    var rng = SplitMix64(seed: seed, UInt64(epoch), UInt64(sampleIndex), 0xC0_4F)
    let top = rng.nextInt(below: max(height + 2 * padding - size + 1, 1)) - padding
    let left = rng.nextInt(below: max(width + 2 * padding - size + 1, 1)) - padding
    return CropChoice(top: top, left: left, flip: rng.nextUniform() < flipProbability)
}

/// The evaluation transform: Resize(`resize`, shorter side) + CenterCrop(`size`) + normalise,
/// into one S×S×3 slot.
public func evalTransform(_ image: RGBImage, resize shorterSide: Int, size: Int, into output: UnsafeMutablePointer<Float>) {
    let source = resize(image, shorterSide: shorterSide)
    let region = centerCropRegion(height: source.height, width: source.width, cropHeight: size, cropWidth: size)
    cropFlipNormalize(source, region.cropChoice(), size: size, into: output)
}

/// Crop (zero outside the image) and optional flip into S×S×3 bytes: `cropFlipNormalize`
/// without the normalisation, for the augmentations that work on bytes.
public func cropFlip(_ image: RGBImage, _ choice: CropChoice, size: Int, into output: UnsafeMutablePointer<UInt8>) {
    let w = image.width, h = image.height
    image.pixels.withUnsafeBufferPointer { src in
        let p = src.baseAddress!
        for y in 0..<size {
            let sy = choice.top &+ y
            let row = output + y &* size &* 3
            guard sy >= 0 && sy < h else {
                row.update(repeating: 0, count: size &* 3)
                continue
            }
            for x in 0..<size {
                let sx = choice.left &+ (choice.flip ? size &- 1 &- x : x)
                let o = row + x &* 3
                if sx >= 0 && sx < w {
                    let q = p + (sy &* w &+ sx) &* 3
                    o[0] = q[0]; o[1] = q[1]; o[2] = q[2]
                } else {
                    o[0] = 0; o[1] = 0; o[2] = 0
                }
            }
        }
    }
}

/// ToTensor + Normalize of `pixelCount` RGB pixels into an NHWC slot, with the very arithmetic
/// of `cropFlipNormalize` (so an augmentation that changes nothing changes no float).
public func normalize(_ pixels: UnsafePointer<UInt8>, pixelCount: Int, into output: UnsafeMutablePointer<Float>) {
    let (m0, m1, m2) = imagenetMean
    let (s0, s1, s2) = imagenetStd
    let scale0 = 1 / (255 * s0), scale1 = 1 / (255 * s1), scale2 = 1 / (255 * s2)
    let zero0 = -m0 / s0, zero1 = -m1 / s1, zero2 = -m2 / s2
    for i in 0..<pixelCount {
        let q = pixels + i &* 3, o = output + i &* 3
        o[0] = Float(q[0]) * scale0 + zero0
        o[1] = Float(q[1]) * scale1 + zero1
        o[2] = Float(q[2]) * scale2 + zero2
    }
}

/// Crop (zero outside the image), optional flip, normalise: one pass into an NHWC slot.
public func cropFlipNormalize(_ image: RGBImage, _ choice: CropChoice, size: Int,
                              into output: UnsafeMutablePointer<Float>) {
    let (m0, m1, m2) = imagenetMean
    let (s0, s1, s2) = imagenetStd
    let scale0 = 1 / (255 * s0), scale1 = 1 / (255 * s1), scale2 = 1 / (255 * s2)
    let zero0 = -m0 / s0, zero1 = -m1 / s1, zero2 = -m2 / s2
    let w = image.width, h = image.height
    image.pixels.withUnsafeBufferPointer { src in
        let p = src.baseAddress!
        for y in 0..<size {
            let sy = choice.top + y
            let row = output + y * size * 3
            for x in 0..<size {
                let sx = choice.left + (choice.flip ? size - 1 - x : x)
                let o = row + x * 3
                if sy >= 0 && sy < h && sx >= 0 && sx < w {
                    let q = p + (sy * w + sx) * 3
                    o[0] = Float(q[0]) * scale0 + zero0
                    o[1] = Float(q[1]) * scale1 + zero1
                    o[2] = Float(q[2]) * scale2 + zero2
                } else {
                    o[0] = zero0; o[1] = zero1; o[2] = zero2
                }
            }
        }
    }
}
