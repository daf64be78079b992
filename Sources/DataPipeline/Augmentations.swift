import Foundation
import Kernels

// Optional training augmentations on the uint8 crop, after the crop and the flip and before
// normalisation (torchvision's and timm's order): TrivialAugmentWide, then ColorJitter when
// both are on. Each is torchvision 0.29's transform on a PIL image, byte for byte, through the
// Pillow operations of PillowImageOps.swift; only the random numbers are ours (SplitMix64 from
// (seed, epoch, sample index), like the crops), drawn in the same structure as torchvision's.
// Shape letters: W/H width/height; pixels are interleaved RGB.

// MARK: - Options

/// torchvision `ColorJitter(brightness, contrast, saturation, hue)` with single numbers:
/// factors uniform in [max(0, 1 − x), 1 + x] (hue in [−h, h], h ≤ 0.5); 0 leaves a component
/// out, as torchvision's `_check_input` does.
public struct ColorJitter: Sendable, Equatable {
    public var brightness: Float
    public var contrast: Float
    public var saturation: Float
    public var hue: Float
    public init(brightness: Float = 0, contrast: Float = 0, saturation: Float = 0, hue: Float = 0) {
        self.brightness = brightness; self.contrast = contrast; self.saturation = saturation; self.hue = hue
    }
    /// timm's `--color-jitter F`: brightness = contrast = saturation = F, no hue.
    public init(_ strength: Float) { self.init(brightness: strength, contrast: strength, saturation: strength) }

    /// Whether any component is on.
    public var isActive: Bool { brightness > 0 || contrast > 0 || saturation > 0 || hue > 0 }

    /// One line naming what is wrong, or nil.
    public var problem: String? {
        if [brightness, contrast, saturation, hue].contains(where: { !($0 >= 0) || !$0.isFinite }) {
            return "color jitter strengths must be finite and ≥ 0"
        }
        if hue > 0.5 { return "color jitter hue must be at most 0.5 (got \(hue))" }
        return nil
    }
}

/// `--auto-augment`: which automatic augmentation policy runs on the training crop.
public enum AutoAugmentPolicy: String, Sendable, CaseIterable {
    case none
    /// torchvision `TrivialAugmentWide()`: 31 magnitude bins, NEAREST, fill 0.
    case trivialAugmentWide = "trivial-augment-wide"
}

// MARK: - TrivialAugmentWide

/// torchvision `TrivialAugmentWide` (transforms/autoaugment.py, 0.29): one operation chosen
/// uniformly, one of 31 magnitude bins uniformly (for operations with magnitudes), and for signed
/// operations the magnitude negated with probability 1/2; then `_apply_op` with NEAREST and fill 0.
public enum TrivialAugmentWide {
    /// In `_augmentation_space`'s order (the op index draws from it); raw values are
    /// torchvision's names.
    public enum Op: String, CaseIterable, Sendable {
        case identity = "Identity", shearX = "ShearX", shearY = "ShearY", translateX = "TranslateX"
        case translateY = "TranslateY", rotate = "Rotate", brightness = "Brightness", color = "Color"
        case contrast = "Contrast", sharpness = "Sharpness", posterize = "Posterize", solarize = "Solarize"
        case autoContrast = "AutoContrast", equalize = "Equalize"

        /// Whether a magnitude bin is drawn (Identity, AutoContrast and Equalize have a 0-d tensor).
        public var hasMagnitudes: Bool {
            switch self {
            case .identity, .autoContrast, .equalize: false
            default: true
            }
        }

        /// Whether the magnitude's sign is drawn.
        public var isSigned: Bool {
            switch self {
            case .shearX, .shearY, .translateX, .translateY, .rotate, .brightness, .color, .contrast, .sharpness: true
            default: false
            }
        }

        /// `allCases` built once: the draw indexes it per sample without allocating.
        static let all = allCases
    }

    public static let binCount = 31

    // Note [Magnitude tables]: torchvision builds the tables with torch.linspace in float32.
    // On x86 vector builds of torch (AVX2 and AVX512 agree) linspace rounds some bins one ulp
    // away from start + step·i: 0.62700003 and 0.825 in the 0.99 table, 15.999999, 18.133333
    // and 25.6 in the 32 table. 15.999999 matters: TranslateX/Y at bin 15 moves int(15.999999)
    // = 15 pixels, not 16 (a scalar torch build, ATEN_CPU_CAPABILITY=default, gives 16). These
    // are the vector build's values, checked against Fixtures/augment/tables.json.

    /// torch.linspace(0.0, 0.99, 31): Shear, Brightness, Color, Contrast, Sharpness.
    static let unitMagnitudes: [Float] = [
        0.0, 0.033, 0.066, 0.099, 0.132, 0.16499999, 0.198, 0.231, 0.264, 0.297, 0.32999998, 0.363, 0.396, 0.429,
        0.462, 0.495, 0.528, 0.561, 0.594, 0.62700003, 0.66, 0.693, 0.726, 0.759, 0.792, 0.825, 0.85800004,
        0.89100003, 0.924, 0.957, 0.99,
    ]
    /// torch.linspace(0.0, 32.0, 31): Translate, in pixels (truncated by `int()`).
    static let translateMagnitudes: [Float] = [
        0.0, 1.0666667, 2.1333334, 3.2000003, 4.266667, 5.3333335, 6.4000006, 7.466667, 8.533334, 9.6, 10.666667,
        11.733334, 12.800001, 13.866668, 14.933334, 15.999999, 17.066666, 18.133333, 19.199999, 20.266666,
        21.333332, 22.4, 23.466667, 24.533333, 25.6, 26.666666, 27.733334, 28.8, 29.866667, 30.933332, 32.0,
    ]

    /// The magnitude `_apply_op` receives: the table value at `bin` as a Python float (a float32
    /// widened), negated when `negative`. Rotate's linspace(0, 135) steps by 4.5 and Solarize's
    /// linspace(255, 0) by 8.5, both exact; Posterize is 8 − round(bin / 5) (no ties occur).
    public static func magnitude(_ op: Op, bin: Int, negative: Bool = false) -> Double {
        let value: Double
        switch op {
        case .identity, .autoContrast, .equalize: return 0
        case .shearX, .shearY, .brightness, .color, .contrast, .sharpness: value = Double(unitMagnitudes[bin])
        case .translateX, .translateY: value = Double(translateMagnitudes[bin])
        case .rotate: value = 4.5 * Double(bin)
        case .posterize: value = Double(8 - Int((Float(bin) / 5).rounded(.toNearestOrEven)))
        case .solarize: value = 255 - 8.5 * Double(bin)
        }
        return negative ? -value : value
    }
}

/// One sample's TrivialAugmentWide draw.
public struct TrivialAugmentChoice: Equatable, Sendable {
    public var op: TrivialAugmentWide.Op
    /// 0 for operations without magnitudes.
    public var bin: Int
    public var negative: Bool
    public init(op: TrivialAugmentWide.Op, bin: Int = 0, negative: Bool = false) {
        self.op = op; self.bin = bin; self.negative = negative
    }
    public var magnitude: Double { TrivialAugmentWide.magnitude(op, bin: bin, negative: negative) }
}

/// One sample's ColorJitter draw: `ColorJitter.get_params`' result.
public struct ColorJitterChoice: Equatable, Sendable {
    /// torchvision's `fn_idx`, a permutation of 0 brightness, 1 contrast, 2 saturation, 3 hue
    /// (a SIMD4 so that a draw allocates nothing).
    public var order: SIMD4<UInt8>
    /// nil: the component is off. Float32, as torchvision draws them.
    public var brightness: Float?
    public var contrast: Float?
    public var saturation: Float?
    public var hue: Float?
    public init(order: SIMD4<UInt8>, brightness: Float?, contrast: Float?, saturation: Float?, hue: Float?) {
        self.order = order; self.brightness = brightness; self.contrast = contrast
        self.saturation = saturation; self.hue = hue
    }
}

/// One sample's augmentation draws, applied TrivialAugmentWide first.
public struct AugmentChoice: Equatable, Sendable {
    public var trivialAugment: TrivialAugmentChoice?
    public var colorJitter: ColorJitterChoice?
}

/// The augmentation draws of one training sample from (seed, epoch, sample index) alone, so they
/// never depend on which worker thread decodes it (cf. `trainCropChoice`); nil when the
/// transform has no augmentation. Same structure as torchvision: TrivialAugmentWide draws the
/// op, then a bin only if the op has magnitudes, then a sign only if it is signed; ColorJitter
/// draws the order (randperm(4)), then a float32 factor for each enabled component in turn.
public func trainAugmentChoice(_ transform: TrainTransform, seed: UInt64, epoch: Int, sampleIndex: Int) -> AugmentChoice? {
    guard transform.augments else { return nil }
    // A stream of its own: these draws never coincide with the crop's.
    var rng = SplitMix64(seed: seed, UInt64(epoch), UInt64(sampleIndex), 0xA0_6E_47)
    var choice = AugmentChoice()
    if transform.autoAugment == .trivialAugmentWide {
        let ops = TrivialAugmentWide.Op.all
        let op = ops[rng.nextInt(below: ops.count)]
        let bin = op.hasMagnitudes ? rng.nextInt(below: TrivialAugmentWide.binCount) : 0
        let negative = op.isSigned && rng.nextInt(below: 2) == 1
        choice.trivialAugment = TrivialAugmentChoice(op: op, bin: bin, negative: negative)
    }
    if let jitter = transform.colorJitter, jitter.isActive {
        var order = SIMD4<UInt8>(0, 1, 2, 3)
        for i in stride(from: 3, to: 0, by: -1) {  // Fisher–Yates
            order.swapAt(i, rng.nextInt(below: i + 1))
        }
        // U[low, high) in float32, kept inside the range should the last rounding reach high.
        func uniform(_ low: Float, _ high: Float) -> Float { min(low + (high - low) * rng.nextUniform(), high) }
        func factor(_ strength: Float) -> Float? { strength > 0 ? uniform(max(0, 1 - strength), 1 + strength) : nil }
        let brightness = factor(jitter.brightness)
        let contrast = factor(jitter.contrast)
        let saturation = factor(jitter.saturation)
        let hue = jitter.hue > 0 ? uniform(-jitter.hue, jitter.hue) : nil
        choice.colorJitter = ColorJitterChoice(order: order, brightness: brightness, contrast: contrast,
                                               saturation: saturation, hue: hue)
    }
    return choice
}

extension SIMD4 {
    fileprivate mutating func swapAt(_ i: Int, _ j: Int) { let t = self[i]; self[i] = self[j]; self[j] = t }
}

// MARK: - The image the operations work on

/// One worker's 8-bit RGB image for the augmentation stage, with a spare buffer of the same
/// size for the operations that cannot work in place (they write the spare and swap) and the
/// small tables they need. Buffers grow to the largest image seen and are then reused, so the
/// steady state allocates nothing. Not thread-safe: one per worker.
public final class AugmentImage {
    public private(set) var width = 0
    public private(set) var height = 0
    /// The current pixels, H×W×3; valid until the next operation.
    public private(set) var pixels: UnsafeMutablePointer<UInt8>
    private var spare: UnsafeMutablePointer<UInt8>
    private var capacity = 0
    private var columnTable: UnsafeMutablePointer<Int>
    private var columnCapacity = 0
    private let histogram = UnsafeMutablePointer<Int>.allocate(capacity: 768)
    private let lut = UnsafeMutablePointer<UInt8>.allocate(capacity: 768)

    public init() {
        pixels = AugmentImage.allocateBytes(64)
        spare = AugmentImage.allocateBytes(64)
        capacity = 64
        columnTable = .allocate(capacity: 64)
        columnCapacity = 64
    }

    /// A copy of `image` (tests, tools).
    public convenience init(_ image: RGBImage) {
        self.init()
        resize(width: image.width, height: image.height)
        image.pixels.withUnsafeBufferPointer { pixels.update(from: $0.baseAddress!, count: $0.count) }
    }

    deinit {
        UnsafeMutableRawPointer(pixels).deallocate()
        UnsafeMutableRawPointer(spare).deallocate()
        columnTable.deallocate()
        histogram.deallocate()
        lut.deallocate()
    }

    private static func allocateBytes(_ count: Int) -> UnsafeMutablePointer<UInt8> {
        UnsafeMutableRawPointer.allocate(byteCount: count, alignment: 64).bindMemory(to: UInt8.self, capacity: count)
    }

    /// Sets the size; the pixels are undefined until written. Grows the buffers when needed.
    public func resize(width: Int, height: Int) {
        precondition(width > 0 && height > 0, "image \(width)×\(height)")
        let bytes = width * height * 3
        if bytes > capacity {
            UnsafeMutableRawPointer(pixels).deallocate()
            UnsafeMutableRawPointer(spare).deallocate()
            pixels = AugmentImage.allocateBytes(bytes)
            spare = AugmentImage.allocateBytes(bytes)
            capacity = bytes
        }
        if width > columnCapacity {
            columnTable.deallocate()
            columnTable = .allocate(capacity: width)
            columnCapacity = width
        }
        self.width = width
        self.height = height
    }

    /// The S×S crop of `image` at `choice` (zero outside the image) with its flip, as
    /// `cropFlipNormalize` takes it but kept in bytes for the augmentations.
    public func loadCrop(of image: RGBImage, _ choice: CropChoice, size: Int) {
        resize(width: size, height: size)
        cropFlip(image, choice, size: size, into: pixels)
    }

    /// The pixels as an RGBImage (a copy; tests).
    public var image: RGBImage {
        RGBImage(width: width, height: height, pixels: Array(UnsafeBufferPointer(start: pixels, count: byteCount)))
    }

    private var byteCount: Int { width * height * 3 }
    private var pixelCount: Int { width * height }

    private func swapBuffers() { swap(&pixels, &spare) }

    // MARK: ImageEnhance (blend with a degenerate image; factor as the C float Blend.c gets)

    /// torchvision `adjust_brightness` on PIL: ImageEnhance.Brightness, a blend with black.
    public func adjustBrightness(_ factor: Float) {
        pillowBlendConstant(pixels, count: byteCount, constant: 0, alpha: factor)
    }

    /// `adjust_contrast`: ImageEnhance.Contrast, a blend with the grey of the rounded mean luma.
    public func adjustContrast(_ factor: Float) {
        let mean = pillowMeanLuma(pixels, pixelCount: pixelCount)
        pillowBlendConstant(pixels, count: byteCount, constant: mean, alpha: factor)
    }

    /// `adjust_saturation`: ImageEnhance.Color, a blend with the luma image.
    public func adjustSaturation(_ factor: Float) {
        pillowBlendLuma(pixels, pixelCount: pixelCount, alpha: factor)
    }

    /// `adjust_sharpness`: ImageEnhance.Sharpness, a blend with the SMOOTH-filtered image
    /// (whose border pixels are the original ones).
    public func adjustSharpness(_ factor: Float) {
        pillowSmooth(pixels, into: spare, width: width, height: height)
        pillowBlend(degenerate: spare, image: pixels, into: pixels, count: byteCount, alpha: factor)
    }

    /// torchvision `adjust_hue` on PIL (hue_factor in [−0.5, 0.5]): H in Pillow's HSV moves by
    /// `np.int32(hue_factor · 255)` (truncated, in double) as a uint8 with wrap-around. The
    /// HSV round trip runs even when that shift is 0, and is itself lossy, as in torchvision.
    public func adjustHue(_ hueFactor: Float) {
        precondition(abs(hueFactor) <= 0.5, "hue factor \(hueFactor) is not in [-0.5, 0.5]")
        let shift = UInt8(truncatingIfNeeded: Int32(Double(hueFactor) * 255))
        pillowShiftHue(pixels, pixelCount: pixelCount, shift: shift)
    }

    // MARK: ImageOps (lookup tables)

    /// `posterize(img, bits)`: ImageOps.posterize, keep the top `bits` bits.
    public func posterize(bits: Int) {
        precondition((1...8).contains(bits), "posterize bits \(bits)")
        let mask = UInt8(truncatingIfNeeded: ~((1 << (8 - bits)) - 1))
        for i in 0..<768 { lut[i] = UInt8(i & 255) & mask }
        pillowApplyLUT(pixels, pixelCount: pixelCount, lut: lut)
    }

    /// `solarize(img, threshold)`: ImageOps.solarize, levels at or above the threshold inverted
    /// (compared as Python compares an int with a float).
    public func solarize(threshold: Double) {
        for i in 0..<768 {
            let level = i & 255
            lut[i] = Double(level) < threshold ? UInt8(level) : UInt8(255 - level)
        }
        pillowApplyLUT(pixels, pixelCount: pixelCount, lut: lut)
    }

    /// `autocontrast(img)`: ImageOps.autocontrast per channel.
    public func autocontrast() {
        pillowHistogram(pixels, pixelCount: pixelCount, into: histogram)
        pillowAutocontrastLUT(histogram: histogram, into: lut)
        pillowApplyLUT(pixels, pixelCount: pixelCount, lut: lut)
    }

    /// `equalize(img)`: ImageOps.equalize per channel.
    public func equalize() {
        pillowHistogram(pixels, pixelCount: pixelCount, into: histogram)
        pillowEqualizeLUT(histogram: histogram, into: lut)
        pillowApplyLUT(pixels, pixelCount: pixelCount, lut: lut)
    }

    // MARK: Geometry (NEAREST, fill 0)

    /// `img.transform(img.size, AFFINE, matrix, NEAREST, fillcolor=0)`.
    public func affine(_ matrix: PillowAffine) {
        pillowAffineNearest(pixels, into: spare, width: width, height: height, matrix, columnTable: columnTable)
        swapBuffers()
    }

    /// torchvision `rotate(img, angle)` on PIL = `img.rotate(angle, NEAREST, expand=False,
    /// fillcolor=0)`: counter-clockwise degrees about the centre (W/2, H/2). Pillow takes the
    /// angle mod 360; 0 is a copy, 180 (and 90/270 on a square image) a transpose; any other
    /// angle an affine map whose cos/sin are rounded to 15 decimals, as Image.rotate does.
    public func rotate(degrees angle: Double) {
        let turned = pythonModulo360(angle)
        if turned == 0 { return }
        if turned == 180 || ((turned == 90 || turned == 270) && width == height) {
            let kind: PillowTranspose = turned == 90 ? .rotate90 : turned == 180 ? .rotate180 : .rotate270
            pillowTranspose(pixels, into: spare, width: width, height: height, kind)
            swapBuffers()
            return
        }
        // Pillow rounds cos and sin to 15 decimals (so that e.g. cos 90° is 0, not 6e-17); in
        // 16.16 fixed point that can hardly move a pixel, but it is what Pillow computes.
        let radians = -(turned * degreesToRadians)
        let cosine = pythonRound15(cos(radians)), sine = pythonRound15(sin(radians))
        var m = PillowAffine(cosine, sine, 0.0, pythonRound15(-sin(radians)), cosine, 0.0)
        // Image.rotate: matrix[2], matrix[5] = transform(−cx, −cy); then += cx, cy.
        let cx = Double(width) / 2, cy = Double(height) / 2
        let c = m.a * -cx + m.b * -cy + m.c
        let f = m.d * -cx + m.e * -cy + m.f
        m.c = c + cx
        m.f = f + cy
        affine(m)
    }
}

// MARK: - torchvision's affine matrix

/// torchvision `_get_inverse_affine_matrix(center, angle, translate, scale, shear)` (inverted),
/// in Python's evaluation order: the PIL matrix of `F.affine` on a PIL image. Angles in degrees.
public func torchvisionInverseAffine(center: (Double, Double), angle: Double, translate: (Double, Double),
                                     scale: Double, shear: (Double, Double)) -> PillowAffine {
    let rot = angle * degreesToRadians
    let sx = shear.0 * degreesToRadians, sy = shear.1 * degreesToRadians
    let (cx, cy) = center, (tx, ty) = translate
    let a = cos(rot - sy) / cos(sy)
    let b = -cos(rot - sy) * tan(sx) / cos(sy) - sin(rot)
    let c = sin(rot - sy) / cos(sy)
    let d = -sin(rot - sy) * tan(sx) / cos(sy) + cos(rot)
    // matrix = [d, -b, 0, -c, a, 0] / scale; then the centre and the translation.
    var m = PillowAffine(d / scale, -b / scale, 0.0 / scale, -c / scale, a / scale, 0.0 / scale)
    m.c += m.a * (-cx - tx) + m.b * (-cy - ty)
    m.f += m.d * (-cx - tx) + m.e * (-cy - ty)
    m.c += cx
    m.f += cy
    return m
}

extension AugmentImage {
    /// torchvision `_apply_op(img, op, magnitude, NEAREST, fill=None)` for TrivialAugmentWide.
    public func apply(_ choice: TrivialAugmentChoice) {
        apply(choice.op, magnitude: choice.magnitude)
    }

    /// `_apply_op` with an explicit magnitude (what TrivialAugmentWide.forward passes).
    public func apply(_ op: TrivialAugmentWide.Op, magnitude: Double) {
        switch op {
        case .identity:
            break
        case .shearX, .shearY:
            // Shear by the angle whose tangent is the magnitude, about the top-left corner
            // (center=[0, 0]); math.degrees then math.radians, as torchvision round-trips it.
            let degrees = atan(magnitude) * radiansToDegrees
            affine(torchvisionInverseAffine(center: (0, 0), angle: 0, translate: (0, 0), scale: 1,
                                            shear: op == .shearX ? (degrees, 0) : (0, degrees)))
        case .translateX, .translateY:
            // int(magnitude) pixels; F.affine's default centre (W·0.5, H·0.5) cancels out.
            let pixels = Double(Int(magnitude))
            affine(torchvisionInverseAffine(center: (Double(width) * 0.5, Double(height) * 0.5), angle: 0,
                                            translate: op == .translateX ? (pixels, 0) : (0, pixels), scale: 1,
                                            shear: (0, 0)))
        case .rotate:
            rotate(degrees: magnitude)
        case .brightness:
            adjustBrightness(Float(1.0 + magnitude))
        case .color:
            adjustSaturation(Float(1.0 + magnitude))
        case .contrast:
            adjustContrast(Float(1.0 + magnitude))
        case .sharpness:
            adjustSharpness(Float(1.0 + magnitude))
        case .posterize:
            posterize(bits: Int(magnitude))
        case .solarize:
            solarize(threshold: magnitude)
        case .autoContrast:
            autocontrast()
        case .equalize:
            equalize()
        }
    }

    /// `ColorJitter.forward` with `get_params`' result given.
    public func apply(_ choice: ColorJitterChoice) {
        for k in 0..<4 {
            switch choice.order[k] {
            case 0: if let f = choice.brightness { adjustBrightness(f) }
            case 1: if let f = choice.contrast { adjustContrast(f) }
            case 2: if let f = choice.saturation { adjustSaturation(f) }
            default: if let f = choice.hue { adjustHue(f) }
            }
        }
    }

    /// A sample's augmentations in the loader's order: TrivialAugmentWide, then ColorJitter.
    public func apply(_ choice: AugmentChoice) {
        if let trivial = choice.trivialAugment { apply(trivial) }
        if let jitter = choice.colorJitter { apply(jitter) }
    }
}
