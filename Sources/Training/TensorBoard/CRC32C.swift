/// CRC-32C (Castagnoli), the checksum of TFRecord framing. Table-driven, a byte at a time:
/// event files get a few records a second at most, so this is never hot.
public func crc32c<Bytes: Sequence>(_ bytes: Bytes) -> UInt32 where Bytes.Element == UInt8 {
    var crc: UInt32 = 0xFFFF_FFFF
    for byte in bytes { crc = crc32cTable[Int((crc ^ UInt32(byte)) & 0xFF)] ^ (crc >> 8) }
    return crc ^ 0xFFFF_FFFF
}

/// The CRC TFRecord stores: rotated and offset, so that a CRC over data that itself holds
/// CRCs does not degenerate (the scheme comes from LevelDB).
public func maskedCRC32C<Bytes: Sequence>(_ bytes: Bytes) -> UInt32 where Bytes.Element == UInt8 {
    let crc = crc32c(bytes)
    return ((crc >> 15) | (crc << 17)) &+ 0xA282_EAD8
}

/// Polynomial 0x1EDC6F41 in reflected (least significant bit first) form.
private let crc32cPolynomial: UInt32 = 0x82F6_3B78

private let crc32cTable: [UInt32] = (0..<256).map { byte in
    var crc = UInt32(byte)
    for _ in 0..<8 { crc = crc & 1 == 1 ? (crc >> 1) ^ crc32cPolynomial : crc >> 1 }
    return crc
}
