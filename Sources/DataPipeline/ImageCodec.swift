import CJPEGRegion
import CTurboJPEG
import Foundation

/// An 8-bit RGB image, rows top to bottom, pixels interleaved (H×W×3).
public struct RGBImage: Sendable {
    public var width: Int
    public var height: Int
    public var pixels: [UInt8]
    public init(width: Int, height: Int, pixels: [UInt8]) {
        self.width = width; self.height = height; self.pixels = pixels
    }
}

/// 8-bit RGB pixels held by someone else (`ImageDecoder.decodeRegion`): row y starts at
/// base + y · rowStride bytes.
public struct PixelView {
    public let base: UnsafePointer<UInt8>
    public let width: Int
    public let height: Int
    public let rowStride: Int
    public init(base: UnsafePointer<UInt8>, width: Int, height: Int, rowStride: Int) {
        self.base = base; self.width = width; self.height = height; self.rowStride = rowStride
    }
}

public struct ImageDecodeError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// What the first bytes say a file is (never trust the extension: ImageNet has PNGs named .JPEG).
public enum ImageFormat: Equatable {
    case jpeg, png, unknown
    public init(sniffing bytes: UnsafeRawBufferPointer) {
        if bytes.count >= 3, bytes[0] == 0xFF, bytes[1] == 0xD8, bytes[2] == 0xFF { self = .jpeg }
        else if bytes.count >= 8, Array(bytes[0..<8]) == [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] { self = .png }
        else { self = .unknown }
    }
}

/// Decodes JPEG (libjpeg-turbo) and PNG (libpng) bytes to RGB, choosing by the leading bytes.
/// One per thread: the TurboJPEG handle is not thread-safe, and reusing it (and the CMYK
/// scratch) avoids per-image set-up.
public final class ImageDecoder {
    /// Images whose header claims more pixels are refused before anything is allocated
    /// (`--max-pixels`). The default is where Pillow raises DecompressionBombError.
    public static let defaultMaxPixels = 178_956_970
    public var maxPixels = ImageDecoder.defaultMaxPixels

    private var handle: tjhandle
    private var cmyk: [UInt8] = []
    /// The libjpeg-API decoder behind `decodeRegion`, made on first use, and its buffers.
    private var regionDecoder: OpaquePointer?
    private var regionBuffer = UnsafeMutablePointer<UInt8>.allocate(capacity: 1)
    private var regionCapacity = 1
    private var cmykRGB = UnsafeMutablePointer<UInt8>.allocate(capacity: 1)
    private var cmykRGBCapacity = 1
    private var wholeImage = RGBImage(width: 0, height: 0, pixels: [])

    public init() {
        guard let h = tjInitDecompress() else { fatalError("tjInitDecompress failed") }
        handle = h
    }

    deinit {
        tjDestroy(handle)
        jr_destroy(regionDecoder)
        regionBuffer.deallocate()
        cmykRGB.deallocate()
    }

    public func decode(_ data: [UInt8]) throws -> RGBImage {
        var image = RGBImage(width: 0, height: 0, pixels: [])
        try decode(data, into: &image)
        return image
    }

    /// Decodes into `image`, reusing its pixel storage when large enough.
    /// `eighths` < 8 decodes a JPEG at that many eighths of its size with libjpeg-turbo's
    /// DCT-domain scaling (each side ceil(side · eighths / 8)): far less work, slightly
    /// different pixels than a full decode followed by a resize. PNGs are always decoded whole.
    public func decode(_ data: [UInt8], into image: inout RGBImage, eighths: Int = 8) throws {
        guard !data.isEmpty else { throw ImageDecodeError("empty file (0 bytes)") }
        // Every decoder checks the header's size against `maxPixels` before allocating.
        switch data.withUnsafeBytes({ ImageFormat(sniffing: $0) }) {
        case .jpeg: try decodeJPEG(data, into: &image, eighths: eighths)
        case .png: try decodePNG(data, into: &image, maxPixels: maxPixels)
        case .unknown: throw ImageDecodeError("not a JPEG or PNG image (unrecognised leading bytes)")
        }
    }

    /// The pixel size a file's header declares (JPEG SOF or PNG IHDR), without decoding it.
    public func imageSize(_ data: [UInt8]) throws -> (width: Int, height: Int) {
        switch data.withUnsafeBytes({ ImageFormat(sniffing: $0) }) {
        case .png:
            // IHDR is the first chunk: width and height big-endian at bytes 16 and 20.
            guard data.count >= 24 else { throw ImageDecodeError("truncated PNG header") }
            let be = { (i: Int) in data[i..<(i + 4)].reduce(0) { $0 << 8 | Int($1) } }
            return (be(16), be(20))
        case .jpeg:
            var width: Int32 = 0, height: Int32 = 0, subsampling: Int32 = 0, colorspace: Int32 = 0
            let rc = data.withUnsafeBufferPointer {
                tjDecompressHeader3(handle, $0.baseAddress, UInt($0.count), &width, &height, &subsampling, &colorspace)
            }
            guard rc == 0, width > 0, height > 0 else {
                let message = errorText()
                if let fresh = tjInitDecompress() { tjDestroy(handle); handle = fresh }  // Note [Broken handle]
                throw ImageDecodeError("corrupt JPEG header: \(message)")
            }
            return (Int(width), Int(height))
        case .unknown:
            if data.isEmpty { throw ImageDecodeError("empty file (0 bytes)") }
            throw ImageDecodeError("not a JPEG or PNG image (unrecognised leading bytes)")
        }
    }

    private func decodeJPEG(_ data: [UInt8], into image: inout RGBImage, eighths: Int) throws {
        do {
            try decodeJPEGUnchecked(data, into: &image, eighths: eighths)
        } catch {
            // Note [Broken handle]: after a failed header read TurboJPEG 2.1 leaves the handle
            // in a state where later good files fail too ("SOS before SOF"); start afresh.
            if let fresh = tjInitDecompress() {
                tjDestroy(handle)
                handle = fresh
            }
            throw error
        }
    }

    private func decodeJPEGUnchecked(_ data: [UInt8], into image: inout RGBImage, eighths: Int) throws {
        var width: Int32 = 0, height: Int32 = 0, subsampling: Int32 = 0, colorspace: Int32 = 0
        let size = UInt(data.count)
        let header = data.withUnsafeBufferPointer {
            tjDecompressHeader3(handle, $0.baseAddress, size, &width, &height, &subsampling, &colorspace)
        }
        guard header == 0 else { throw ImageDecodeError("corrupt JPEG header: \(errorText())") }
        // A truncated file can parse as a header that never reached the frame size.
        guard width > 0, height > 0 else { throw ImageDecodeError("corrupt or truncated JPEG (no image size in the header)") }
        try checkPixelLimit(width: Int(width), height: Int(height), format: "JPEG", maxPixels: maxPixels)
        if eighths < 8 {
            // TJSCALED: TurboJPEG picks the scaling factor whose output is exactly this size.
            let n = Int32(max(eighths, 1))
            width = (width * n + 7) / 8
            height = (height * n + 7) / 8
        }
        let (w, h) = (Int(width), Int(height))
        image.width = w
        image.height = h
        if image.pixels.count != w * h * 3 { image.pixels = [UInt8](repeating: 0, count: w * h * 3) }
        let isCMYK = colorspace == Int32(TJCS_CMYK.rawValue) || colorspace == Int32(TJCS_YCCK.rawValue)
        if isCMYK {
            // TurboJPEG decodes CMYK/YCCK only to CMYK pixels; convert as Pillow does below.
            if cmyk.count < w * h * 4 { cmyk = [UInt8](repeating: 0, count: w * h * 4) }
            let rc = data.withUnsafeBufferPointer { src in
                cmyk.withUnsafeMutableBufferPointer {
                    tjDecompress2(handle, src.baseAddress, size, $0.baseAddress, width, 0, height, Int32(TJPF_CMYK.rawValue), 0)
                }
            }
            try checkDecode(rc)
            cmyk.withUnsafeBufferPointer { src in
                image.pixels.withUnsafeMutableBufferPointer { cmykToRGB(src.baseAddress!, $0.baseAddress!, pixels: w * h) }
            }
        } else {
            // Grayscale sources come out as three equal channels (libjpeg's gray → RGB).
            let rc = data.withUnsafeBufferPointer { src in
                image.pixels.withUnsafeMutableBufferPointer {
                    tjDecompress2(handle, src.baseAddress, size, $0.baseAddress, width, 0, height, Int32(TJPF_RGB.rawValue), 0)
                }
            }
            try checkDecode(rc)
        }
    }

    /// Decodes only `region` (in the full image's coordinates) of the image at `eighths`/8 of its
    /// size into `image`: `scaleRegion(region, …)` of the scaled image, pixel for pixel what
    /// `decode(_:into:eighths:)` followed by that crop gives. See `decodeRegion`.
    public func decode(_ data: [UInt8], region: CropRegion, eighths: Int = 8, into image: inout RGBImage,
                       options: RegionDecodeOptions = .exact) throws {
        let view = try decodeRegion(data, region: region, eighths: eighths, options: options)
        image.width = view.width
        image.height = view.height
        let rowBytes = view.width * 3
        if image.pixels.count != view.height * rowBytes { image.pixels = [UInt8](repeating: 0, count: view.height * rowBytes) }
        image.pixels.withUnsafeMutableBufferPointer { out in
            for y in 0..<view.height {
                (out.baseAddress! + y * rowBytes).update(from: view.base + y * view.rowStride, count: rowBytes)
            }
        }
    }

    /// Decodes only `region` (in the full image's coordinates) of the image at `eighths`/8 of
    /// its size, into this decoder's own buffer (no allocation once it has grown): the view is
    /// valid until the next decode. The pixels are the region of a whole-image decode at that
    /// scale, byte for byte (Note [Crop margin] in jpeg_region.c), unless `options` asks for
    /// libjpeg's fast IDCT or upsampling, which change them.
    /// Errors and warnings are those of the whole-image decode (same messages; a warning still
    /// gives the image), except that nothing below the region's last row is read: damage there
    /// goes unseen. PNGs are decoded whole and cropped.
    public func decodeRegion(_ data: [UInt8], region: CropRegion, eighths: Int = 8,
                             options: RegionDecodeOptions = .exact) throws -> PixelView {
        guard !data.isEmpty else { throw ImageDecodeError("empty file (0 bytes)") }
        guard data.withUnsafeBytes({ ImageFormat(sniffing: $0) }) == .jpeg else {
            try decode(data, into: &wholeImage)
            let cropped = crop(wholeImage, region)
            let bytes = cropped.pixels.count
            reserve(&regionBuffer, &regionCapacity, bytes)
            cropped.pixels.withUnsafeBufferPointer { regionBuffer.update(from: $0.baseAddress!, count: bytes) }
            return PixelView(base: regionBuffer, width: cropped.width, height: cropped.height, rowStride: cropped.width * 3)
        }
        var width32: Int32 = 0, height32: Int32 = 0, subsampling: Int32 = 0, colorspace: Int32 = 0
        let header = data.withUnsafeBufferPointer {
            tjDecompressHeader3(handle, $0.baseAddress, UInt($0.count), &width32, &height32, &subsampling, &colorspace)
        }
        guard header == 0, width32 > 0, height32 > 0 else {
            let message = errorText()
            if let fresh = tjInitDecompress() { tjDestroy(handle); handle = fresh }  // Note [Broken handle]
            throw ImageDecodeError(header == 0 ? "corrupt or truncated JPEG (no image size in the header)"
                                               : "corrupt JPEG header: \(message)")
        }
        let (width, height) = (Int(width32), Int(height32))
        try checkPixelLimit(width: width, height: height, format: "JPEG", maxPixels: maxPixels)
        let n = max(1, min(eighths, 8))
        let (scaledWidth, scaledHeight) = ((width * n + 7) / 8, (height * n + 7) / 8)
        let scaled = scaleRegion(region, width: width, height: height, scaledWidth: scaledWidth, scaledHeight: scaledHeight)
        if regionDecoder == nil {
            guard let created = jr_create() else { throw ImageDecodeError("out of memory creating a JPEG decoder") }
            regionDecoder = created
        }
        let isCMYK = colorspace == Int32(TJCS_CMYK.rawValue) || colorspace == Int32(TJCS_YCCK.rawValue)
        let components = isCMYK ? 4 : 3
        let (w, h) = (scaled.width, scaled.height)
        // Whole scaled rows: libjpeg writes the region with a few columns around it.
        let stride = scaledWidth * components
        reserve(&regionBuffer, &regionCapacity, h * stride)
        var column: Int32 = 0
        let rc = data.withUnsafeBufferPointer {
            jr_decode_region(regionDecoder, $0.baseAddress, $0.count, Int32(n), Int32(scaled.left), Int32(scaled.top),
                             Int32(w), Int32(h), options.flags, regionBuffer, stride, &column)
        }
        // As checkDecode: a warning (JR_WARNING) still gives an image.
        guard Int(rc) != JR_ERROR else {
            throw ImageDecodeError("corrupt JPEG data: \(String(cString: jr_message(regionDecoder)))")
        }
        let first = regionBuffer + Int(column) * components
        guard isCMYK else { return PixelView(base: first, width: w, height: h, rowStride: stride) }
        // TurboJPEG and libjpeg give CMYK/YCCK only as CMYK; convert as Pillow does.
        reserve(&cmykRGB, &cmykRGBCapacity, w * h * 3)
        for y in 0..<h { cmykToRGB(first + y * stride, cmykRGB + y * w * 3, pixels: w) }
        return PixelView(base: cmykRGB, width: w, height: h, rowStride: w * 3)
    }

    private func reserve(_ buffer: inout UnsafeMutablePointer<UInt8>, _ capacity: inout Int, _ count: Int) {
        guard count > capacity else { return }
        buffer.deallocate()
        buffer = .allocate(capacity: count)
        capacity = count
    }

    private func checkDecode(_ rc: Int32) throws {
        // A warning (e.g. a slightly truncated file, padded by libjpeg) still gives an image.
        guard rc != 0, tjGetErrorCode(handle) != Int32(TJERR_WARNING.rawValue) else { return }
        throw ImageDecodeError("corrupt JPEG data: \(errorText())")
    }

    private func errorText() -> String { String(cString: tjGetErrorStr2(handle)) }
}

/// How `ImageDecoder.decodeRegion` trades pixels for time; the default is neither, which gives
/// the pixels of a whole-image decode (Note [Fast decode settings] in BatchLoader.swift).
public struct RegionDecodeOptions: Sendable, Equatable {
    /// libjpeg's fast integer IDCT (JDCT_IFAST, TurboJPEG's TJFLAG_FASTDCT).
    public var fastIDCT = false
    /// Plain chroma upsampling (do_fancy_upsampling = FALSE, TJFLAG_FASTUPSAMPLE): each chroma
    /// sample covers its 2×2 (4:2:0) or 2×1 (4:2:2) pixels instead of being interpolated.
    public var fastUpsampling = false
    public init(fastIDCT: Bool = false, fastUpsampling: Bool = false) {
        self.fastIDCT = fastIDCT; self.fastUpsampling = fastUpsampling
    }
    public static let exact = RegionDecodeOptions()

    var flags: Int32 { (fastIDCT ? Int32(JR_FAST_DCT) : 0) | (fastUpsampling ? Int32(JR_FAST_UPSAMPLE) : 0) }
}

/// Pillow reads CMYK JPEGs as "CMYK;I" (Adobe's inverted convention, JpegImagePlugin) and
/// `convert("RGB")` applies cmyk2rgb (Pillow ≥ 9.1, Convert.c): with c = 255 − raw C and
/// nk = 255 − k = raw K, R = nk − MULDIV255(c, nk), where MULDIV255(a, b) rounds a·b/255.
@inlinable
public func cmykToRGB(_ cmyk: UnsafePointer<UInt8>, _ rgb: UnsafeMutablePointer<UInt8>, pixels: Int) {
    @inline(__always) func muldiv255(_ a: Int, _ b: Int) -> Int { let t = a * b + 128; return ((t >> 8) + t) >> 8 }
    for p in 0..<pixels {
        let nk = Int(cmyk[4 * p + 3])
        for ch in 0..<3 {
            let c = 255 - Int(cmyk[4 * p + ch])
            rgb[3 * p + ch] = UInt8(clamping: nk - muldiv255(c, nk))
        }
    }
}

/// Refuses an image whose header claims more than `maxPixels` pixels (a decompression bomb, or
/// a corrupt size field), before its pixels are allocated.
func checkPixelLimit(width: Int, height: Int, format: String, maxPixels: Int) throws {
    guard width * height <= maxPixels else {
        throw ImageDecodeError("\(format) header claims \(width)×\(height) = \(width * height) pixels, more than "
                               + "--max-pixels \(maxPixels)")
    }
}

/// Writes real JPEG files (the built-in dataset, test fixtures) with libjpeg-turbo.
public final class JPEGEncoder {
    private let handle: tjhandle

    public init() {
        guard let h = tjInitCompress() else { fatalError("tjInitCompress failed") }
        handle = h
    }

    deinit { tjDestroy(handle) }

    public enum PixelKind { case rgb, gray, cmyk }

    /// Chroma subsampling of an RGB encode (gray and CMYK files have their own).
    public enum Subsampling { case s444, s422, s420, s440 }

    /// `pixels` holds width×height×(3, 1 or 4) bytes. `progressive` writes a progressive JPEG
    /// (TJFLAG_PROGRESSIVE); TurboJPEG 2.1 adds restart markers when TJ_RESTART is set in the
    /// environment (e.g. "2B": every 2 MCUs).
    public func encode(_ pixels: [UInt8], width: Int, height: Int, kind: PixelKind = .rgb, quality: Int = 90,
                       subsampling rgbSubsampling: Subsampling = .s420, progressive: Bool = false) throws -> [UInt8] {
        let chroma: TJSAMP = switch rgbSubsampling {
        case .s444: TJSAMP_444
        case .s422: TJSAMP_422
        case .s420: TJSAMP_420
        case .s440: TJSAMP_440
        }
        let (format, subsampling): (TJPF, TJSAMP) = switch kind {
        case .rgb: (TJPF_RGB, chroma)
        case .gray: (TJPF_GRAY, TJSAMP_GRAY)
        case .cmyk: (TJPF_CMYK, TJSAMP_444)
        }
        var output: UnsafeMutablePointer<UInt8>? = nil
        var size: UInt = 0
        let rc = pixels.withUnsafeBufferPointer {
            tjCompress2(handle, $0.baseAddress, Int32(width), 0, Int32(height), Int32(format.rawValue), &output, &size,
                        Int32(subsampling.rawValue), Int32(quality), progressive ? TJFLAG_PROGRESSIVE : 0)
        }
        defer { if let output { tjFree(output) } }
        guard rc == 0, let output else { throw ImageDecodeError("JPEG encoding failed: \(String(cString: tjGetErrorStr2(handle)))") }
        return Array(UnsafeBufferPointer(start: output, count: Int(size)))
    }
}
