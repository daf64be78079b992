import CPNG

/// Decodes PNG bytes to RGB exactly as Pillow's `Image.open(f).convert("RGB")` does: 16-bit
/// samples keep their high byte except 16-bit gray, which is clipped to 255; alpha and tRNS
/// are dropped, not composited; gamma is ignored. See Note [Pillow's PNG conversion] in
/// Sources/CPNG/shim.h, which does the reading (libpng's longjmp must stay in C).
func decodePNG(_ data: [UInt8], into image: inout RGBImage, maxPixels: Int) throws {
    try data.withUnsafeBufferPointer { bytes in
        var source = cpng_source()
        source.data = bytes.baseAddress
        source.size = bytes.count
        var width: UInt32 = 0, height: UInt32 = 0
        guard cpng_read_size(&source, &width, &height) == 0 else {
            throw ImageDecodeError("corrupt PNG header: \(errorMessage(source))")
        }
        let (w, h) = (Int(width), Int(height))
        guard w > 0, h > 0 else { throw ImageDecodeError("PNG header gives an empty image (\(w)×\(h))") }
        try checkPixelLimit(width: w, height: h, format: "PNG", maxPixels: maxPixels)
        image.width = w
        image.height = h
        if image.pixels.count != w * h * 3 { image.pixels = [UInt8](repeating: 0, count: w * h * 3) }
        let rc = image.pixels.withUnsafeMutableBufferPointer { cpng_decode_rgb(&source, $0.baseAddress, width, height) }
        guard rc == 0 else { throw ImageDecodeError("corrupt PNG data: \(errorMessage(source))") }
    }
}

private func errorMessage(_ source: cpng_source) -> String {
    withUnsafeBytes(of: source.message) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
}
