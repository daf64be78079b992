import Foundation

/// A PNG reader written for the tests, separately from the writer: chunks with their CRCs,
/// the zlib stream inflated (stored and fixed-Huffman blocks, what our writer produces), and
/// the scanline filters undone.
struct DecodedPNG {
    var width = 0
    var height = 0
    var chunkTypes: [String] = []
    /// The inflated IDAT data: a filter byte and width × 3 bytes per row.
    var scanlines: [UInt8] = []
    var pixels: [UInt8] = []

    init(_ file: [UInt8]) throws {
        guard file.starts(with: [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) else { throw TestDecodeError("no PNG signature") }
        var offset = 8
        var idat: [UInt8] = []
        while offset < file.count {
            guard offset + 12 <= file.count else { throw TestDecodeError("truncated chunk at \(offset)") }
            let length = Int(bigEndian32(file, offset))
            let type = String(decoding: file[offset + 4..<offset + 8], as: UTF8.self)
            guard offset + 12 + length <= file.count else { throw TestDecodeError("truncated \(type)") }
            let data = Array(file[offset + 8..<offset + 8 + length])
            guard testCRC32(Array(file[offset + 4..<offset + 8 + length])) == bigEndian32(file, offset + 8 + length) else {
                throw TestDecodeError("bad CRC in \(type) at \(offset)")
            }
            chunkTypes.append(type)
            switch type {
            case "IHDR":
                width = Int(bigEndian32(data, 0))
                height = Int(bigEndian32(data, 4))
                guard Array(data[8...]) == [8, 2, 0, 0, 0] else { throw TestDecodeError("not 8-bit RGB: \(Array(data[8...]))") }
            case "IDAT": idat += data
            default: break
            }
            offset += 12 + length
        }
        guard idat.count >= 6, idat[0] & 0x0F == 8, (Int(idat[0]) << 8 | Int(idat[1])) % 31 == 0 else {
            throw TestDecodeError("bad zlib header")
        }
        scanlines = try inflate(Array(idat[2..<idat.count - 4]))
        let adler = bigEndian32(idat, idat.count - 4)
        guard adler == testAdler32(scanlines) else { throw TestDecodeError("bad Adler-32") }
        pixels = try unfilter()
    }

    private func unfilter() throws -> [UInt8] {
        let stride = width * 3
        guard scanlines.count == (stride + 1) * height else { throw TestDecodeError("wrong scanline bytes") }
        var out = [UInt8](repeating: 0, count: stride * height)
        for y in 0..<height {
            let filter = scanlines[y * (stride + 1)]
            for i in 0..<stride {
                let raw = scanlines[y * (stride + 1) + 1 + i]
                let a = i >= 3 ? Int(out[y * stride + i - 3]) : 0
                let b = y > 0 ? Int(out[(y - 1) * stride + i]) : 0
                let c = i >= 3 && y > 0 ? Int(out[(y - 1) * stride + i - 3]) : 0
                let predictor: Int
                switch filter {
                case 0: predictor = 0
                case 1: predictor = a
                case 2: predictor = b
                case 3: predictor = (a + b) / 2
                case 4:
                    let p = a + b - c, pa = abs(p - a), pb = abs(p - b), pc = abs(p - c)
                    predictor = pa <= pb && pa <= pc ? a : pb <= pc ? b : c
                default: throw TestDecodeError("filter type \(filter)")
                }
                out[y * stride + i] = raw &+ UInt8(predictor & 0xFF)
            }
        }
        return out
    }
}

struct TestDecodeError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

private func bigEndian32(_ bytes: [UInt8], _ offset: Int) -> UInt32 {
    (0..<4).reduce(0) { $0 << 8 | UInt32(bytes[offset + $1]) }
}

func testCRC32(_ bytes: [UInt8]) -> UInt32 {
    var crc: UInt32 = 0xFFFF_FFFF
    for byte in bytes {
        crc ^= UInt32(byte)
        for _ in 0..<8 { crc = crc & 1 == 1 ? (crc >> 1) ^ 0xEDB8_8320 : crc >> 1 }
    }
    return ~crc
}

private func testAdler32(_ bytes: [UInt8]) -> UInt32 {
    var a: UInt32 = 1, b: UInt32 = 0
    for byte in bytes { a = (a + UInt32(byte)) % 65521; b = (b + a) % 65521 }
    return b << 16 | a
}

/// RFC 1951 blocks of type 0 (stored) and 1 (fixed Huffman); type 2 is refused.
private func inflate(_ input: [UInt8]) throws -> [UInt8] {
    var out: [UInt8] = []
    var bitPosition = 0
    func bit() throws -> Int {
        guard bitPosition / 8 < input.count else { throw TestDecodeError("deflate stream ends early") }
        defer { bitPosition += 1 }
        return Int(input[bitPosition / 8] >> UInt8(bitPosition % 8)) & 1
    }
    func bits(_ count: Int) throws -> Int {  // least significant bit first
        var value = 0
        for i in 0..<count { value |= try bit() << i }
        return value
    }
    func huffman(_ count: Int, startingWith code: Int = 0) throws -> Int {  // most significant bit first
        var code = code
        for _ in 0..<count { code = code << 1 | (try bit()) }
        return code
    }
    let lengthBase = [3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258]
    let lengthExtra = [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0]
    let distanceBase = [1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073,
                        4097, 6145, 8193, 12289, 16385, 24577]
    var final = false
    while !final {
        final = try bits(1) == 1
        switch try bits(2) {
        case 0:
            bitPosition = (bitPosition + 7) / 8 * 8
            let length = try bits(16), complement = try bits(16)
            guard length == ~complement & 0xFFFF else { throw TestDecodeError("stored block length check") }
            for _ in 0..<length { out.append(UInt8(try bits(8))) }
        case 1:
            while true {
                var symbol: Int
                let seven = try huffman(7)
                if seven <= 0b0010111 {
                    symbol = 256 + seven
                } else {
                    let eight = try huffman(1, startingWith: seven)
                    if (0x30...0xBF).contains(eight) { symbol = eight - 0x30 }
                    else if (0xC0...0xC7).contains(eight) { symbol = 280 + eight - 0xC0 }
                    else { symbol = 144 + (try huffman(1, startingWith: eight)) - 0x190 }
                }
                if symbol < 256 { out.append(UInt8(symbol)); continue }
                if symbol == 256 { break }
                let lengthCode = symbol - 257
                guard lengthCode < 29 else { throw TestDecodeError("bad length symbol \(symbol)") }
                let length = lengthBase[lengthCode] + (try bits(lengthExtra[lengthCode]))
                let distanceCode = try huffman(5)
                guard distanceCode < 30 else { throw TestDecodeError("bad distance code") }
                let distance = distanceBase[distanceCode] + (try bits(max(0, distanceCode / 2 - 1)))
                guard distance <= out.count else { throw TestDecodeError("distance \(distance) before the start") }
                for _ in 0..<length { out.append(out[out.count - distance]) }
            }
        default:
            throw TestDecodeError("block type other than stored or fixed Huffman")
        }
    }
    return out
}
