/// A small zlib (RFC 1950) / deflate (RFC 1951) compressor for the PNG writer: greedy LZ77 with
/// one hash candidate per position and the fixed Huffman code of block type 1. Plots are mostly
/// flat colour, which this shrinks 20–50×; a general-purpose deflate would gain little more here.
func zlibCompress(_ data: [UInt8]) -> [UInt8] {
    var output: [UInt8] = [0x78, 0x01]  // deflate, 32 KiB window, no dictionary; (0x7801 % 31 == 0)
    output += deflateFixedHuffman(data)
    let checksum = adler32(data)
    output += [UInt8(checksum >> 24), UInt8(checksum >> 16 & 0xFF), UInt8(checksum >> 8 & 0xFF), UInt8(checksum & 0xFF)]
    return output
}

func adler32(_ data: [UInt8]) -> UInt32 {
    var a: UInt32 = 1, b: UInt32 = 0
    // 5552 bytes is the longest stretch whose sums cannot overflow 32 bits before the modulo.
    var start = 0
    while start < data.count {
        let end = min(start + 5552, data.count)
        for byte in data[start..<end] {
            a += UInt32(byte)
            b += a
        }
        a %= 65521
        b %= 65521
        start = end
    }
    return b << 16 | a
}

/// One final block with the fixed Huffman code.
func deflateFixedHuffman(_ data: [UInt8]) -> [UInt8] {
    var bits = DeflateBitWriter()
    bits.write(1, count: 1)  // BFINAL
    bits.write(1, count: 2)  // BTYPE = 01, fixed Huffman
    let windowSize = 32_768, minMatch = 3, maxMatch = 258
    var head = [Int](repeating: -1, count: 1 << 15)
    // The compressor's hot loop: it visits every byte of the image once or twice.
    data.withUnsafeBufferPointer { bytes in
        func hash(_ i: Int) -> Int { (Int(bytes[i]) << 10 ^ Int(bytes[i + 1]) << 5 ^ Int(bytes[i + 2])) & 0x7FFF }
        var i = 0
        while i < bytes.count {
            var matchLength = 0, matchDistance = 0
            if i + minMatch <= bytes.count {
                let h = hash(i)
                let candidate = head[h]
                head[h] = i
                if candidate >= 0, i - candidate <= windowSize {
                    let limit = min(maxMatch, bytes.count - i)
                    var length = 0
                    while length < limit, bytes[candidate + length] == bytes[i + length] { length += 1 }
                    if length >= minMatch { matchLength = length; matchDistance = i - candidate }
                }
            }
            if matchLength > 0 {
                bits.writeLength(matchLength)
                bits.writeDistance(matchDistance)
                // Positions inside the match become candidates too, so runs keep matching at distance 1.
                var j = i + 1
                while j < i + matchLength, j + minMatch <= bytes.count { head[hash(j)] = j; j += 1 }
                i += matchLength
            } else {
                bits.writeLiteral(Int(bytes[i]))
                i += 1
            }
        }
    }
    bits.writeLiteral(256)  // end of block
    return bits.finish()
}

/// Deflate packs bits from the least significant end of each byte; Huffman codes go in
/// most significant bit first, extra bits least significant first.
private struct DeflateBitWriter {
    private(set) var bytes: [UInt8] = []
    private var buffer: UInt64 = 0
    private var count = 0

    mutating func write(_ value: Int, count bitCount: Int) {
        buffer |= UInt64(value) << UInt64(count)
        count += bitCount
        while count >= 8 {
            bytes.append(UInt8(buffer & 0xFF))
            buffer >>= 8
            count -= 8
        }
    }

    mutating func writeCode(_ code: Int, length: Int) {
        var reversed = 0
        for bit in 0..<length where code & (1 << bit) != 0 { reversed |= 1 << (length - 1 - bit) }
        write(reversed, count: length)
    }

    /// Literal/length symbols 0–287 in the fixed code (RFC 1951 section 3.2.6).
    mutating func writeLiteral(_ symbol: Int) {
        switch symbol {
        case 0...143: writeCode(0x30 + symbol, length: 8)
        case 144...255: writeCode(0x190 + symbol - 144, length: 9)
        case 256...279: writeCode(symbol - 256, length: 7)
        default: writeCode(0xC0 + symbol - 280, length: 8)
        }
    }

    mutating func writeLength(_ length: Int) {
        let code = deflateLengthBases.lastIndex { $0 <= length }!
        writeLiteral(257 + code)
        write(length - deflateLengthBases[code], count: deflateLengthExtraBits[code])
    }

    mutating func writeDistance(_ distance: Int) {
        let code = deflateDistanceBases.lastIndex { $0 <= distance }!
        writeCode(code, length: 5)
        write(distance - deflateDistanceBases[code], count: deflateDistanceExtraBits[code])
    }

    mutating func finish() -> [UInt8] {
        if count > 0 { bytes.append(UInt8(buffer & 0xFF)) }
        buffer = 0
        count = 0
        return bytes
    }
}

// Length 258 has its own code (285, no extra bits) although 227 + 5 extra bits could reach it.
let deflateLengthBases = [3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115,
                          131, 163, 195, 227, 258]
let deflateLengthExtraBits = [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0]
let deflateDistanceBases = [1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537,
                            2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577]
let deflateDistanceExtraBits = [0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12,
                                13, 13]
