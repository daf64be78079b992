/// Encodes 8-bit RGB pixels (rows top to bottom) as a PNG file: IHDR, one IDAT, IEND.
/// https://www.w3.org/TR/png/
func encodePNG(width: Int, height: Int, rgb pixels: [UInt8]) -> [UInt8] {
    precondition(width > 0 && height > 0 && pixels.count == width * height * 3, "pixel buffer does not match the size")
    var header: [UInt8] = []
    header += bigEndianBytes(UInt32(width))
    header += bigEndianBytes(UInt32(height))
    header += [8, 2, 0, 0, 0]  // 8 bits per sample, truecolour (RGB), deflate, adaptive filtering, no interlace

    var file: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
    file += pngChunk("IHDR", header)
    file += pngChunk("IDAT", zlibCompress(filteredScanlines(width: width, height: height, pixels: pixels)))
    file += pngChunk("IEND", [])
    return file
}

/// Each row gets a filter-type byte and is stored as differences when that leaves smaller
/// numbers (the usual minimum-sum-of-absolute-differences heuristic): flat areas turn into
/// runs of zeros, which the compressor then folds away. Only None, Sub and Up are used.
func filteredScanlines(width: Int, height: Int, pixels: [UInt8]) -> [UInt8] {
    let stride = width * 3
    var output: [UInt8] = []
    output.reserveCapacity((stride + 1) * height)
    var candidates = [[UInt8]](repeating: [UInt8](repeating: 0, count: stride), count: 3)
    for y in 0..<height {
        let row = y * stride
        for i in 0..<stride {
            let byte = pixels[row + i]
            candidates[0][i] = byte
            candidates[1][i] = byte &- (i >= 3 ? pixels[row + i - 3] : 0)
            candidates[2][i] = byte &- (y > 0 ? pixels[row - stride + i] : 0)
        }
        // Bytes read as signed: small positive and small negative differences both count as small.
        let costs = candidates.map { $0.reduce(0) { $0 + abs(Int(Int8(bitPattern: $1))) } }
        let best = costs.indices.min { costs[$0] < costs[$1] }!
        output.append(UInt8(best))
        output += candidates[best]
    }
    return output
}

/// length, type, data, CRC-32 of type and data.
func pngChunk(_ type: String, _ data: [UInt8]) -> [UInt8] {
    let typeAndData = Array(type.utf8) + data
    return bigEndianBytes(UInt32(data.count)) + typeAndData + bigEndianBytes(crc32(typeAndData))
}

/// The CRC-32 of PNG and zlib's crc32 (polynomial 0x04C11DB7, reflected).
func crc32(_ bytes: [UInt8]) -> UInt32 {
    var crc: UInt32 = 0xFFFF_FFFF
    for byte in bytes { crc = crc32Table[Int((crc ^ UInt32(byte)) & 0xFF)] ^ (crc >> 8) }
    return crc ^ 0xFFFF_FFFF
}

private let crc32Table: [UInt32] = (0..<256).map { byte in
    var crc = UInt32(byte)
    for _ in 0..<8 { crc = crc & 1 == 1 ? (crc >> 1) ^ 0xEDB8_8320 : crc >> 1 }
    return crc
}

private func bigEndianBytes(_ value: UInt32) -> [UInt8] {
    [UInt8(value >> 24), UInt8(value >> 16 & 0xFF), UInt8(value >> 8 & 0xFF), UInt8(value & 0xFF)]
}
