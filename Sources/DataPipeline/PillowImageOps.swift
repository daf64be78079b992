import Foundation

// Pillow 13's 8-bit RGB operations that torchvision's ColorJitter and TrivialAugmentWide call on
// PIL images, re-derived from Pillow's sources (src/libImaging/Blend.c, Convert.c, Filter.c,
// Geometry.c; src/PIL/Image.py, ImageEnhance.py, ImageOps.py) so that they give the same bytes.
// The exact float/double mix of the C code is part of the result (a float product rounded
// once more or less moves a byte), so every expression below keeps Pillow's types and order.
// Shape letters: W/H width/height; pixels are interleaved RGB, rows top to bottom, no padding.

// MARK: - Blend (ImageEnhance.*.enhance = Image.blend(degenerate, image, factor))

/// Blend.c `ImagingBlend` for one byte: `in1 + alpha·(in2 − in1)` in float (alpha arrives as a C
/// float: `_blend` casts the Python double), then truncated by the UINT8 cast. Pillow clips
/// only when alpha is outside [0, 1]; inside it the value cannot leave [0, 255] (the rounding
/// of a product by alpha ≤ 1 and of the sum are monotonic), so one clipping form serves both.
@inline(__always)
func pillowBlend(_ degenerate: Float, _ image: Float, _ alpha: Float) -> UInt8 {
    clampTruncateToByte(degenerate + alpha * (image - degenerate))
}

/// `v <= 0 ? 0 : v >= 255 ? 255 : (UINT8)v` (Blend.c, Filter.c's clip8) without Swift's
/// trapping float-to-int conversion, whose range check keeps loops from vectorising (measured
/// 3–10× slower): adding 2^23 puts round-to-nearest(v) in the low bits of the float's pattern,
/// and one is taken off where that rounded up, which leaves the truncation.
@inline(__always)
func clampTruncateToByte(_ value: Float) -> UInt8 {
    let v = min(max(value, 0), 255)
    let shifted = v + 8_388_608
    let nearest = UInt8(truncatingIfNeeded: shifted.bitPattern)
    return shifted - 8_388_608 > v ? nearest &- 1 : nearest
}

/// Blend with a constant image (Brightness: 0; Contrast: the mean grey), in place.
func pillowBlendConstant(_ pixels: UnsafeMutablePointer<UInt8>, count: Int, constant: UInt8, alpha: Float) {
    let degenerate = Float(constant)
    for i in 0..<count { pixels[i] = pillowBlend(degenerate, Float(pixels[i]), alpha) }
}

/// Blend `image` over `degenerate` (same size) into `output`, which may be `image` itself.
func pillowBlend(degenerate: UnsafePointer<UInt8>, image: UnsafePointer<UInt8>,
                 into output: UnsafeMutablePointer<UInt8>, count: Int, alpha: Float) {
    for i in 0..<count { output[i] = pillowBlend(Float(degenerate[i]), Float(image[i]), alpha) }
}

// MARK: - Luma (convert("L"))

/// Convert.c `rgb2l`: ITU-R 601-2 luma in 16-bit fixed point, rounded (the L24 macro:
/// R·19595 + G·38470 + B·7471 + 0x8000, shifted by 16). Not the (R·299 + G·587 + B·114)/1000
/// of the "1" and "F" conversions; the two differ by one level on some colours.
@inline(__always)
func pillowLuma(_ r: UInt8, _ g: UInt8, _ b: UInt8) -> UInt8 {
    UInt8(truncatingIfNeeded: (Int32(r) &* 19595 &+ Int32(g) &* 38470 &+ Int32(b) &* 7471 &+ 0x8000) >> 16)
}

/// ImageEnhance.Color: blend with `convert("L").convert("RGB")` (the luma in all three
/// channels), in place; each pixel's luma is read before the pixel is overwritten.
func pillowBlendLuma(_ pixels: UnsafeMutablePointer<UInt8>, pixelCount: Int, alpha: Float) {
    for p in 0..<pixelCount {
        let q = pixels + p &* 3
        let luma = Float(pillowLuma(q[0], q[1], q[2]))
        q[0] = pillowBlend(luma, Float(q[0]), alpha)
        q[1] = pillowBlend(luma, Float(q[1]), alpha)
        q[2] = pillowBlend(luma, Float(q[2]), alpha)
    }
}

/// ImageEnhance.Contrast's grey level: `int(ImageStat.Stat(image.convert("L")).mean[0] + 0.5)`.
/// The mean is Python's int / int (correctly rounded), which Double(sum) / Double(n) equals while
/// both are below 2^53.
func pillowMeanLuma(_ pixels: UnsafePointer<UInt8>, pixelCount: Int) -> UInt8 {
    var sum = 0
    for p in 0..<pixelCount {
        let q = pixels + p &* 3
        sum &+= Int(pillowLuma(q[0], q[1], q[2]))
    }
    return UInt8(Int(Double(sum) / Double(pixelCount) + 0.5))
}

// MARK: - SMOOTH filter (ImageEnhance.Sharpness's degenerate image)

/// `image.filter(ImageFilter.SMOOTH)`: Filter.c `ImagingFilter3x3` with the kernel
/// [1 1 1; 1 5 1; 1 1 1] / 13 (each weight a float divided by the float 13 in `_filter`), a
/// float sum that starts at 0.5 and adds the rows below, at and above the pixel in that order
/// (each row as (left·k + centre·k) + right·k), then clamped and truncated. The outermost rows
/// and columns are copied unfiltered; an image under 3×3 is copied whole.
func pillowSmooth(_ source: UnsafePointer<UInt8>, into output: UnsafeMutablePointer<UInt8>, width: Int, height: Int) {
    let rowBytes = width &* 3
    guard width >= 3 && height >= 3 else {
        output.update(from: source, count: rowBytes &* height)
        return
    }
    let edge = Float(1) / Float(13), centre = Float(5) / Float(13)
    output.update(from: source, count: rowBytes)
    for y in 1..<(height &- 1) {
        let above = source + (y &- 1) &* rowBytes, row = source + y &* rowBytes, below = source + (y &+ 1) &* rowBytes
        let out = output + y &* rowBytes
        for c in 0..<3 {
            out[c] = row[c]
            out[rowBytes &- 3 &+ c] = row[rowBytes &- 3 &+ c]
        }
        for i in 3..<(rowBytes &- 3) {
            var sum: Float = 0.5
            sum += Float(below[i &- 3]) * edge + Float(below[i]) * edge + Float(below[i &+ 3]) * edge
            sum += Float(row[i &- 3]) * edge + Float(row[i]) * centre + Float(row[i &+ 3]) * edge
            sum += Float(above[i &- 3]) * edge + Float(above[i]) * edge + Float(above[i &+ 3]) * edge
            out[i] = clampTruncateToByte(sum)
        }
    }
    let last = (height &- 1) &* rowBytes
    (output + last).update(from: source + last, count: rowBytes)
}

// MARK: - Hue (torchvision's adjust_hue on PIL: convert("HSV"), H += shift mod 256, back to RGB)

/// hsv2rgb's per-level values, which depend on one byte each: the sector floor(h·6/255) and its
/// fraction f (a float) for every H, and fs = S / 255 (a float) for every S. Computed once with
/// Convert.c's expressions; looking them up saves three double divisions per pixel.
final class PillowHSVTables: @unchecked Sendable {
    // @unchecked Sendable: written once in init, read-only afterwards.
    static let shared = PillowHSVTables()
    let sector = UnsafeMutablePointer<Int>.allocate(capacity: 256)
    let fraction = UnsafeMutablePointer<Float>.allocate(capacity: 256)
    let saturation = UnsafeMutablePointer<Float>.allocate(capacity: 256)
    private init() {
        for level in 0..<256 {
            let scaled = Double(Float(level)) * 6.0 / 255.0
            let i = Int(scaled)  // floor: scaled is in [0, 6]
            sector[level] = i % 6
            fraction[level] = Float(scaled - Double(Float(i)))
            saturation[level] = Float(Double(Float(level)) / 255.0)
        }
    }
}

/// Convert.c `rgb2hsv_row` then `hsv2rgb` with H moved by `shift` (mod 256), on each pixel, in
/// place. The C mixes float variables with double constants: `2.0 + rc - bc` and
/// `h / 6.0 + 1.0` are double expressions stored back into floats, `fs * f` is a float product
/// while `fs * (1.0 - f)` is a double one, and round() rounds half away from zero.
func pillowShiftHue(_ pixels: UnsafeMutablePointer<UInt8>, pixelCount: Int, shift: UInt8) {
    let tables = PillowHSVTables.shared
    let sectors = tables.sector, fractions = tables.fraction, saturations = tables.saturation
    for pixel in 0..<pixelCount {
        let q = pixels + pixel &* 3
        let r = q[0], g = q[1], b = q[2]
        let maxc = max(r, max(g, b)), minc = min(r, min(g, b))
        // Grey stays grey: S = 0 comes back as (V, V, V) whatever H is.
        if minc == maxc { continue }
        let v = maxc
        let cr = Float(maxc &- minc)
        // Each branch divides only the two differences it uses (the C computes all three).
        var hf: Float
        if r == maxc {
            hf = Float(maxc &- b) / cr - Float(maxc &- g) / cr
        } else if g == maxc {
            hf = Float(2.0 + Double(Float(maxc &- r) / cr) - Double(Float(maxc &- b) / cr))
        } else {
            hf = Float(4.0 + Double(Float(maxc &- g) / cr) - Double(Float(maxc &- r) / cr))
        }
        // fmod(h / 6 + 1, 1) of a value in (0.8, 1.9): subtracting 1 is exact there (Sterbenz).
        let wrapped = Double(hf) / 6.0 + 1.0
        hf = Float(wrapped >= 1 ? wrapped - 1 : wrapped)
        let h = clip8(Int(Double(hf) * 255.0)) &+ shift
        let s = clip8(Int(Double(cr / Float(maxc)) * 255.0))
        if s == 0 {
            q[0] = v; q[1] = v; q[2] = v
            continue
        }
        let f = fractions[Int(h)], fs = saturations[Int(s)]
        let vd = Double(Float(v))
        let p = clip8(roundHalfAway(vd * (1.0 - Double(fs))))
        let qq = clip8(roundHalfAway(vd * (1.0 - Double(fs * f))))
        let t = clip8(roundHalfAway(vd * (1.0 - Double(fs) * (1.0 - Double(f)))))
        switch sectors[Int(h)] {
        case 0: q[0] = v; q[1] = t; q[2] = p
        case 1: q[0] = qq; q[1] = v; q[2] = p
        case 2: q[0] = p; q[1] = v; q[2] = t
        case 3: q[0] = p; q[1] = qq; q[2] = v
        case 4: q[0] = t; q[1] = p; q[2] = v
        default: q[0] = v; q[1] = p; q[2] = qq
        }
    }
}

/// C's round() for 0 ≤ y < 2^52 (half away from zero), inline: the fraction y − trunc(y) is
/// exact in that range.
@inline(__always)
func roundHalfAway(_ y: Double) -> Int {
    let whole = Int(y)
    return y - Double(whole) >= 0.5 ? whole &+ 1 : whole
}

/// Pillow's CLIP8: clamp an int to a byte.
@inline(__always)
func clip8(_ value: Int) -> UInt8 { value <= 0 ? 0 : value < 256 ? UInt8(value) : 255 }

// MARK: - Lookup tables (ImageOps.posterize / solarize / autocontrast / equalize, Image.point)

/// `image.point(lut)` with a 768-entry table (256 per channel, already clipped to bytes as
/// `_point` does with CLIP8), in place.
func pillowApplyLUT(_ pixels: UnsafeMutablePointer<UInt8>, pixelCount: Int, lut: UnsafePointer<UInt8>) {
    let lutG = lut + 256, lutB = lut + 512
    for p in 0..<pixelCount {
        let q = pixels + p &* 3
        q[0] = lut[Int(q[0])]
        q[1] = lutG[Int(q[1])]
        q[2] = lutB[Int(q[2])]
    }
}

/// `image.histogram()` of an RGB image: 256 counts per channel, R then G then B.
func pillowHistogram(_ pixels: UnsafePointer<UInt8>, pixelCount: Int, into histogram: UnsafeMutablePointer<Int>) {
    histogram.update(repeating: 0, count: 768)
    for p in 0..<pixelCount {
        let q = pixels + p &* 3
        histogram[Int(q[0])] &+= 1
        histogram[256 &+ Int(q[1])] &+= 1
        histogram[512 &+ Int(q[2])] &+= 1
    }
}

/// ImageOps.autocontrast(image) (cutoff 0, no ignore, no mask), per channel: the lowest and
/// highest used levels stretch to 0 and 255 with `int(ix · scale + offset)` in doubles
/// (truncated towards zero, then clamped); a channel with one level keeps its values.
func pillowAutocontrastLUT(histogram: UnsafePointer<Int>, into lut: UnsafeMutablePointer<UInt8>) {
    for channel in 0..<3 {
        let h = histogram + channel &* 256, table = lut + channel &* 256
        var lo = 0
        while lo < 255 && h[lo] == 0 { lo &+= 1 }
        var hi = 255
        while hi > 0 && h[hi] == 0 { hi &-= 1 }
        if hi <= lo {
            for ix in 0..<256 { table[ix] = UInt8(ix) }
            continue
        }
        let scale = 255.0 / Double(hi &- lo)
        let offset = Double(-lo) * scale
        for ix in 0..<256 { table[ix] = clip8(Int(Double(ix) * scale + offset)) }
    }
}

/// ImageOps.equalize(image) (no mask), per channel: step = (pixels − count of the highest used
/// level) // 255, and level i maps to (step // 2 + pixels below i) // step, clipped to 255 by
/// `_point` (it can reach 256 and more). A channel with one used level, or step 0, is kept.
func pillowEqualizeLUT(histogram: UnsafePointer<Int>, into lut: UnsafeMutablePointer<UInt8>) {
    for channel in 0..<3 {
        let h = histogram + channel &* 256, table = lut + channel &* 256
        var used = 0, total = 0, lastCount = 0
        for i in 0..<256 where h[i] != 0 {
            used &+= 1
            total &+= h[i]
            lastCount = h[i]
        }
        let step = used <= 1 ? 0 : (total &- lastCount) / 255
        if step == 0 {
            for ix in 0..<256 { table[ix] = UInt8(ix) }
            continue
        }
        var n = step / 2
        for i in 0..<256 {
            table[i] = clip8(n / step)
            n &+= h[i]
        }
    }
}

// MARK: - Affine transform with NEAREST (Image.transform(size, AFFINE, data, NEAREST))

/// The six coefficients Pillow's AFFINE transform takes: the *inverse* map, output pixel
/// centre (x + 0.5, y + 0.5) → input coordinates (a·x + b·y + c, d·x + e·y + f).
public struct PillowAffine: Equatable, Sendable {
    public var a, b, c, d, e, f: Double
    public init(_ a: Double, _ b: Double, _ c: Double, _ d: Double, _ e: Double, _ f: Double) {
        self.a = a; self.b = b; self.c = c; self.d = d; self.e = e; self.f = f
    }
}

/// Geometry.c's COORD: a coordinate to a pixel index, −1 for anything left of 0.
@inline(__always)
private func coord(_ v: Double) -> Int { v < 0 ? -1 : Int(v) }

/// Geometry.c `ImagingTransformAffine` for NEAREST on an 8-bit RGB image of the same size as
/// the output; pixels that map outside the source are 0 (torchvision's fill 0). Pillow picks
/// one of three engines and their roundings differ, so we pick as it does: a pure scale or
/// translation (b = d = 0) walks double coordinates per row and column
/// (`ImagingScaleAffine`); anything else steps in 16.16 fixed point (`affine_fixed`) when
/// all four corners map inside ±32768, else in doubles.
/// `columnTable` needs `width` entries (scratch for the scale engine).
func pillowAffineNearest(_ source: UnsafePointer<UInt8>, into output: UnsafeMutablePointer<UInt8>,
                         width: Int, height: Int, _ m: PillowAffine, columnTable: UnsafeMutablePointer<Int>) {
    output.update(repeating: 0, count: width &* height &* 3)
    if m.b == 0 && m.d == 0 {
        // ImagingScaleAffine: a column table, then one source row per output row.
        var xo = m.c + m.a * 0.5
        var yo = m.f + m.e * 0.5
        var xmin = width, xmax = 0
        for x in 0..<width {
            let xin = coord(xo)
            columnTable[x] = 0
            if xin >= 0 && xin < width {
                xmax = x &+ 1
                if x < xmin { xmin = x }
                columnTable[x] = xin
            }
            xo += m.a
        }
        for y in 0..<height {
            let yi = coord(yo)
            if yi >= 0 && yi < height && xmin < xmax {
                let inRow = source + yi &* width &* 3, outRow = output + y &* width &* 3
                for x in xmin..<xmax {
                    let s = inRow + columnTable[x] &* 3, o = outRow + x &* 3
                    o[0] = s[0]; o[1] = s[1]; o[2] = s[2]
                }
            }
            yo += m.e
        }
        return
    }
    func fits(_ x: Double, _ y: Double) -> Bool {
        abs(x * m.a + y * m.b + m.c) < 32768.0 && abs(x * m.d + y * m.e + m.f) < 32768.0
    }
    let w = Double(width), h = Double(height)
    if fits(0, 0) && fits(w, h) && fits(0, h) && fits(w, 0) {
        // affine_fixed: FIX(v) = floor(v · 65536 + 0.5); the pixel centre's half steps are
        // folded into the start before conversion, as Pillow does.
        @inline(__always) func fix(_ v: Double) -> Int32 { Int32((v * 65536.0 + 0.5).rounded(.down)) }
        let a0 = fix(m.a), a1 = fix(m.b), a3 = fix(m.d), a4 = fix(m.e)
        var a2 = fix(m.c + m.a * 0.5 + m.b * 0.5)
        var a5 = fix(m.f + m.d * 0.5 + m.e * 0.5)
        for y in 0..<height {
            var xx = a2, yy = a5
            let outRow = output + y &* width &* 3
            for x in 0..<width {
                let xin = Int(xx >> 16)
                if xin >= 0 && xin < width {
                    let yin = Int(yy >> 16)
                    if yin >= 0 && yin < height {
                        let s = source + (yin &* width &+ xin) &* 3, o = outRow + x &* 3
                        o[0] = s[0]; o[1] = s[1]; o[2] = s[2]
                    }
                }
                xx &+= a0
                yy &+= a3
            }
            a2 &+= a1
            a5 &+= a4
        }
        return
    }
    // The double engine (only for coordinates beyond ±32768); note its other summation order.
    var xo = m.c + m.b * 0.5 + m.a * 0.5
    var yo = m.f + m.e * 0.5 + m.d * 0.5
    for y in 0..<height {
        var xx = xo, yy = yo
        let outRow = output + y &* width &* 3
        for x in 0..<width {
            let xin = coord(xx)
            if xin >= 0 && xin < width {
                let yin = coord(yy)
                if yin >= 0 && yin < height {
                    let s = source + (yin &* width &+ xin) &* 3, o = outRow + x &* 3
                    o[0] = s[0]; o[1] = s[1]; o[2] = s[2]
                }
            }
            xx += m.a
            yy += m.d
        }
        xo += m.b
        yo += m.e
    }
}

/// The quarter and half turns `Image.rotate` takes without resampling (Image.transpose).
enum PillowTranspose { case rotate90, rotate180, rotate270 }

/// Geometry.c `ImagingRotate90/180/270` (counter-clockwise turns). The quarter turns are used
/// on square images only (Image.rotate without expand takes that path only when W = H).
func pillowTranspose(_ source: UnsafePointer<UInt8>, into output: UnsafeMutablePointer<UInt8>,
                     width: Int, height: Int, _ kind: PillowTranspose) {
    precondition(kind == .rotate180 || width == height, "quarter turns of a non-square image change its size")
    for y in 0..<height {
        for x in 0..<width {
            // The output pixel (x, y) and the source pixel it copies.
            let (sx, sy): (Int, Int)
            switch kind {
            case .rotate90: (sx, sy) = (width &- 1 &- y, x)
            case .rotate180: (sx, sy) = (width &- 1 &- x, height &- 1 &- y)
            case .rotate270: (sx, sy) = (y, height &- 1 &- x)
            }
            let s = source + (sy &* width &+ sx) &* 3, o = output + (y &* width &+ x) &* 3
            o[0] = s[0]; o[1] = s[1]; o[2] = s[2]
        }
    }
}

// MARK: - Matrices (Python's own arithmetic)

/// CPython's math.radians / math.degrees multiply by these constants (mathmodule.c).
let degreesToRadians = Double.pi / 180.0
let radiansToDegrees = 180.0 / Double.pi

/// Python's `round(x, 15)`: the exact binary value of x rounded half-to-even to 15 decimals
/// (`_Py_dg_dtoa` mode 3), read back correctly rounded. With x = m·2^e exactly, that is
/// N = round(m·5^15·2^(15+e)) and the result N / 10^15, one correctly rounded division.
func pythonRound15(_ x: Double) -> Double {
    guard x.isFinite && x != 0 else { return x }
    let significand = UInt64(x.significandBitPattern) | (x.isNormal ? 1 << 52 : 0)
    let exponent = Int(x.exponentBitPattern == 0 ? -1074 : Int(x.exponentBitPattern) - 1075)
    let shift = -(15 + exponent)
    // x·10^15 is an integer already: round() gives x back.
    guard shift > 0 else { return x }
    let scaled = UInt128(significand) * 30_517_578_125  // 5^15; below 2^88
    var n: UInt128 = 0
    if shift < 128 {
        n = scaled >> shift
        let remainder = scaled & ((1 << shift) - 1), half: UInt128 = 1 << (shift - 1)
        if remainder > half || (remainder == half && n & 1 == 1) { n += 1 }
    }
    let magnitude = Double(n) / 1e15
    return x < 0 ? -magnitude : magnitude
}

/// Python's float `angle % 360.0`: the remainder takes the divisor's sign.
func pythonModulo360(_ angle: Double) -> Double {
    let r = angle.truncatingRemainder(dividingBy: 360.0)
    if r == 0 { return 0 }
    return r < 0 ? r + 360.0 : r
}
