import Foundation
import Kernels

// torchvision 0.29 transforms on PIL images, exactly (../shared/formats.md, "torchvision
// transform semantics"): Resize(int), CenterCrop, RandomResizedCrop. They compose as RGBImage →
// RGBImage; crops are also available as CropRegions (source coordinates, possibly reaching
// outside the image where torchvision pads with zeros), which `cropFlipNormalize` can consume
// through `CropRegion.cropChoice` when the region is S×S. Shape letters: H/W image height/width.

// MARK: - Resize

/// torchvision `Resize(size, max_size)` with an int size (`_compute_resized_output_size`): the
/// shorter side becomes `shorterSide`, the longer int(size · long / short), truncated; if that
/// exceeds `maxSize`, the longer side becomes maxSize and the shorter int(maxSize · short' / long').
public func resizedSize(width: Int, height: Int, shorterSide: Int, maxSize: Int? = nil) -> (width: Int, height: Int) {
    precondition(width > 0 && height > 0 && shorterSide > 0, "resize \(width)×\(height) to shorter side \(shorterSide)")
    let (short, long) = width <= height ? (width, height) : (height, width)
    // Python's true division then int(): a double quotient truncated (exact for image sizes).
    var newShort = shorterSide
    var newLong = Int(Double(shorterSide * long) / Double(short))
    if let maxSize {
        precondition(maxSize > shorterSide, "max_size = \(maxSize) must be strictly greater than size = \(shorterSide)")
        if newLong > maxSize {
            newShort = Int(Double(maxSize * newShort) / Double(newLong))
            newLong = maxSize
        }
    }
    return width <= height ? (newShort, newLong) : (newLong, newShort)
}

/// torchvision `Resize(shorterSide, interpolation, max_size)` on a PIL image; the image comes
/// back untouched when the size does not change. Bilinear is torchvision's default.
public func resize(_ image: RGBImage, shorterSide: Int, maxSize: Int? = nil,
                   filter: ResampleFilter = .bilinear) -> RGBImage {
    let size = resizedSize(width: image.width, height: image.height, shorterSide: shorterSide, maxSize: maxSize)
    return resize(image, width: size.width, height: size.height, filter: filter)
}

// MARK: - CenterCrop

extension CropRegion {
    /// The offsets `cropFlipNormalize` takes (it crops S×S; pass `height == width` regions).
    public func cropChoice(flip: Bool = false) -> CropChoice { CropChoice(top: top, left: left, flip: flip) }
}

/// torchvision `CenterCrop((cropHeight, cropWidth))` as a region of the unpadded image. An axis
/// the crop exceeds is zero-padded first, (c − n) // 2 before and (c − n + 1) // 2 after, and
/// then fits exactly, so the region starts at −(c − n) // 2; otherwise the offset is
/// int(round((n − c) / 2)), Python's round half to even (15.5 → 16, 16.5 → 16).
public func centerCropRegion(height: Int, width: Int, cropHeight: Int, cropWidth: Int) -> CropRegion {
    precondition(cropHeight > 0 && cropWidth > 0, "crop \(cropWidth)×\(cropHeight)")
    func offset(_ extent: Int, _ crop: Int) -> Int {
        if crop > extent { return -((crop - extent) / 2) }
        return Int((Double(extent - crop) / 2).rounded(.toNearestOrEven))
    }
    return CropRegion(top: offset(height, cropHeight), left: offset(width, cropWidth), height: cropHeight, width: cropWidth)
}

/// torchvision `CenterCrop((cropHeight, cropWidth))` on a PIL image, zero padding included.
public func centerCrop(_ image: RGBImage, height cropHeight: Int, width cropWidth: Int) -> RGBImage {
    let region = centerCropRegion(height: image.height, width: image.width, cropHeight: cropHeight, cropWidth: cropWidth)
    if region == CropRegion(top: 0, left: 0, height: image.height, width: image.width) { return image }
    return crop(image, region)
}

// MARK: - RandomResizedCrop

/// torchvision `RandomResizedCrop.get_params` (transforms.py, 0.29), step for step, drawing from
/// SplitMix64 instead of torch's generator: 10 tries of (area fraction ~ U(scale), log aspect ~
/// U(log ratio)) with w, h rounded half to even, kept if it fits, placed uniformly; else the
/// central fallback crop clamped to the ratio range. Like torch, the two uniforms are float32
/// (`torch.empty(1).uniform_` and `torch.log(torch.tensor(ratio))` are float32 tensors) and the
/// placement is drawn only on success.
public func randomResizedCropParameters(height: Int, width: Int, scale: (Double, Double) = (0.08, 1.0),
                                        ratio: (Double, Double) = (3.0 / 4.0, 4.0 / 3.0),
                                        rng: inout SplitMix64) -> CropRegion {
    precondition(height > 0 && width > 0, "image \(width)×\(height)")
    // torchvision only warns about reversed ranges; we refuse them (its min()/max() then agree).
    precondition(scale.0 <= scale.1 && ratio.0 <= ratio.1, "scale and ratio must be (min, max)")
    let area = Double(height * width)
    let logRatio = (Foundation.log(Float(ratio.0)), Foundation.log(Float(ratio.1)))
    func uniform(_ low: Float, _ high: Float) -> Float { rng.nextUniform() * (high - low) + low }
    for _ in 0..<10 {
        let targetArea = area * Double(uniform(Float(scale.0), Float(scale.1)))
        let aspectRatio = Double(Foundation.exp(uniform(logRatio.0, logRatio.1)))
        let w = Int((targetArea * aspectRatio).squareRoot().rounded(.toNearestOrEven))
        let h = Int((targetArea / aspectRatio).squareRoot().rounded(.toNearestOrEven))
        if 0 < w && w <= width && 0 < h && h <= height {
            let top = rng.nextInt(below: height - h + 1)
            let left = rng.nextInt(below: width - w + 1)
            return CropRegion(top: top, left: left, height: h, width: w)
        }
    }
    // Fallback: the whole image, trimmed on its longer axis to the nearest allowed aspect ratio.
    let inRatio = Double(width) / Double(height)
    var (w, h) = (width, height)
    if inRatio < ratio.0 {
        h = Int((Double(w) / ratio.0).rounded(.toNearestOrEven))
    } else if inRatio > ratio.1 {
        w = Int((Double(h) * ratio.1).rounded(.toNearestOrEven))
    }
    // Python floor division; h ≤ height and w ≤ width here, so these are never negative.
    return CropRegion(top: (height - h) / 2, left: (width - w) / 2, height: h, width: w)
}

/// The random choices of RandomResizedCrop + RandomHorizontalFlip for one sample.
public struct ResizedCropChoice: Equatable, Sendable {
    public var region: CropRegion
    public var flip: Bool
    public init(region: CropRegion, flip: Bool) { self.region = region; self.flip = flip }
}

/// RandomResizedCrop parameters and a horizontal flip (p = 0.5, drawn after the crop as in
/// torchvision's train transform order) from (seed, epoch, sample index) alone, so the choice
/// never depends on which worker thread decodes the sample (cf. `trainCropChoice`).
public func trainResizedCropChoice(height: Int, width: Int, seed: UInt64, epoch: Int, sampleIndex: Int,
                                   scale: (Double, Double) = (0.08, 1.0),
                                   ratio: (Double, Double) = (3.0 / 4.0, 4.0 / 3.0),
                                   flipProbability: Float = 0.5) -> ResizedCropChoice {
    // A stream tag of its own, so these draws never coincide with trainCropChoice's.
    var rng = SplitMix64(seed: seed, UInt64(epoch), UInt64(sampleIndex), 0x5252_C0DE)
    let region = randomResizedCropParameters(height: height, width: width, scale: scale, ratio: ratio, rng: &rng)
    return ResizedCropChoice(region: region, flip: rng.nextUniform() < flipProbability)
}

/// torchvision `RandomResizedCrop(size)`'s image step: `resized_crop` = crop `region`, resize
/// to size×size (bilinear by default; Pillow antialiases when shrinking). No flip: pass
/// `choice.flip` to `cropFlipNormalize` with `CropChoice(top: 0, left: 0, flip:)`.
public func resizedCrop(_ image: RGBImage, region: CropRegion, size: Int,
                        filter: ResampleFilter = .bilinear) -> RGBImage {
    resize(image, region: region, width: size, height: size, filter: filter)
}
