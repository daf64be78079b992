// Pillow's `Image.resize` for 8-bit RGB, reproduced bit for bit (Pillow 13, libImaging/Resample.c
// and Geometry.c), because torchvision's Resize / RandomResizedCrop on PIL images is exactly that
// call. Shape letters: W/H source width/height, w/h output width/height, 3 interleaved channels.

/// The resampling filters of torchvision's `InterpolationMode` that we reproduce.
public enum ResampleFilter: Sendable {
    /// Pillow NEAREST: no antialiasing, source pixel under the output pixel's centre.
    case nearest
    /// Pillow BILINEAR: triangle filter, widened by the scale when shrinking (antialiasing).
    case bilinear
    /// Pillow BICUBIC: Keys cubic with a = −0.5, widened by the scale when shrinking.
    case bicubic
}

/// A rectangle of an image in its pixel coordinates; it may reach outside the image where the
/// operation says what lies there (zero padding for crops).
public struct CropRegion: Equatable, Sendable {
    public var top: Int
    public var left: Int
    public var height: Int
    public var width: Int
    public init(top: Int, left: Int, height: Int, width: Int) {
        self.top = top; self.left = left; self.height = height; self.width = width
    }
}

/// Pillow `image.resize((width, height), filter)`. The image itself comes back when the size is
/// unchanged (Pillow copies; torchvision returns the input untouched).
public func resize(_ image: RGBImage, width: Int, height: Int, filter: ResampleFilter = .bilinear) -> RGBImage {
    resize(image, region: CropRegion(top: 0, left: 0, height: image.height, width: image.width),
           width: width, height: height, filter: filter)
}

/// Pillow `image.crop(region).resize((width, height), filter)` without materialising the crop:
/// torchvision's `resized_crop`. The region must lie inside the image. (This is not Pillow's
/// `resize(box:)`, whose filters read pixels outside the box.)
public func resize(_ image: RGBImage, region: CropRegion, width: Int, height: Int,
                   filter: ResampleFilter = .bilinear) -> RGBImage {
    precondition(width > 0 && height > 0, "resize to \(width)×\(height)")
    precondition(region.width > 0 && region.height > 0 && region.top >= 0 && region.left >= 0
                 && region.top + region.height <= image.height && region.left + region.width <= image.width,
                 "region \(region) outside the \(image.width)×\(image.height) image")
    let wholeImage = region.width == image.width && region.height == image.height
    if width == region.width && height == region.height {
        return wholeImage ? image : crop(image, region)
    }
    switch filter {
    case .nearest: return resizeNearest(image, region: region, width: width, height: height)
    case .bilinear: return resizeSeparable(image, region: region, width: width, height: height, kernel: .triangle)
    case .bicubic: return resizeSeparable(image, region: region, width: width, height: height, kernel: .keysCubic)
    }
}

/// Copies `region` out of the image; pixels outside the image are zero (torchvision's pad-then-crop).
public func crop(_ image: RGBImage, _ region: CropRegion) -> RGBImage {
    let (w, h) = (region.width, region.height)
    precondition(w > 0 && h > 0, "empty crop \(region)")
    let pixels = [UInt8](unsafeUninitializedCapacity: w * h * 3) { out, count in
        out.initialize(repeating: 0)
        count = w * h * 3
        // The overlap of the region with the image, in region coordinates.
        let x0 = max(0, -region.left), x1 = min(w, image.width - region.left)
        let y0 = max(0, -region.top), y1 = min(h, image.height - region.top)
        guard x0 < x1 && y0 < y1 else { return }
        image.pixels.withUnsafeBufferPointer { src in
            for y in y0..<y1 {
                let from = src.baseAddress! + ((region.top + y) * image.width + region.left + x0) * 3
                (out.baseAddress! + (y * w + x0) * 3).update(from: from, count: (x1 - x0) * 3)
            }
        }
    }
    return RGBImage(width: w, height: h, pixels: pixels)
}

// MARK: - Nearest

/// Pillow resizes NEAREST through its affine "scale" transform: the source coordinate of output
/// pixel i is the running sum 0.5·s + s + s + … (s = in/out as a double), truncated. The running
/// sum, not i·s, is what Pillow computes, and it can differ in the last bit, so we sum too.
func nearestSourceIndices(inSize: Int, outSize: Int) -> [Int] {
    let step = Double(inSize) / Double(outSize)
    var position = step * 0.5
    var indices = [Int](repeating: 0, count: outSize)
    for i in 0..<outSize {
        // Positions are positive and below inSize − step/2, so truncation never leaves the image.
        indices[i] = min(Int(position), inSize - 1)
        position += step
    }
    return indices
}

func resizeNearest(_ image: RGBImage, region: CropRegion, width: Int, height: Int) -> RGBImage {
    let columns = nearestSourceIndices(inSize: region.width, outSize: width)
    let rows = nearestSourceIndices(inSize: region.height, outSize: height)
    let pixels = [UInt8](unsafeUninitializedCapacity: width * height * 3) { out, count in
        image.pixels.withUnsafeBufferPointer { src in
            columns.withUnsafeBufferPointer { columns in
                let base = src.baseAddress! + (region.top * image.width + region.left) * 3
                let dst = out.baseAddress!
                for y in 0..<height {
                    let inRow = base + rows[y] * image.width * 3
                    let outRow = dst + y * width * 3
                    for x in 0..<width {
                        let p = inRow + columns[x] * 3
                        outRow[3 * x] = p[0]; outRow[3 * x + 1] = p[1]; outRow[3 * x + 2] = p[2]
                    }
                }
            }
        }
        count = width * height * 3
    }
    return RGBImage(width: width, height: height, pixels: pixels)
}
