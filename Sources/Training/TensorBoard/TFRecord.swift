/// TFRecord framing, the container of TensorBoard event files. Each record is
///
///     uint64 length, little-endian
///     uint32 masked CRC-32C of those 8 length bytes
///     length bytes of data (one serialized Event)
///     uint32 masked CRC-32C of the data
///
/// The length has its own CRC so a reader never trusts a corrupted length to skip ahead.

func tfRecordFrame(_ data: [UInt8]) -> [UInt8] {
    var record: [UInt8] = []
    record.reserveCapacity(data.count + 16)
    let length = littleEndianBytes(UInt64(data.count))
    record += length
    record += littleEndianBytes(maskedCRC32C(length))
    record += data
    record += littleEndianBytes(maskedCRC32C(data))
    return record
}

/// Why a file is not a valid sequence of records, and where: the index of the record (0-based)
/// and the byte offset at which it starts.
struct TFRecordFramingError: Error {
    enum Problem: CustomStringConvertible {
        case truncatedHeader(available: Int)
        case badLengthCRC
        case truncatedData(length: UInt64, available: Int)
        case badDataCRC

        var description: String {
            switch self {
            case .truncatedHeader(let available):
                "truncated record: \(available) of the 12 header bytes"
            case .badLengthCRC:
                "bad length CRC (corrupted length field)"
            case .truncatedData(let length, let available):
                "truncated record: header announces \(length) data bytes + 4 CRC bytes, \(available) left in the file"
            case .badDataCRC:
                "bad data CRC (corrupted record data)"
            }
        }
    }

    let recordIndex: Int
    let offset: Int
    let problem: Problem
}

/// One record's data, and where its frame starts in the file.
struct TFRecord {
    let offset: Int
    let data: ArraySlice<UInt8>
}

/// Splits a whole file into records, checking both CRCs of every record.
func splitTFRecords(_ bytes: [UInt8]) throws(TFRecordFramingError) -> [TFRecord] {
    var records: [TFRecord] = []
    var offset = 0
    while offset < bytes.count {
        func fail(_ problem: TFRecordFramingError.Problem) -> TFRecordFramingError {
            TFRecordFramingError(recordIndex: records.count, offset: offset, problem: problem)
        }
        let available = bytes.count - offset
        guard available >= 12 else { throw fail(.truncatedHeader(available: available)) }
        let lengthBytes = bytes[offset..<offset + 8]
        guard maskedCRC32C(lengthBytes) == readLittleEndianUInt32(bytes, at: offset + 8) else { throw fail(.badLengthCRC) }
        let length = readLittleEndianUInt64(bytes, at: offset)
        // Compare before converting: a (CRC-valid) absurd length must not overflow Int.
        guard length <= UInt64(available - 12), Int(length) + 4 <= available - 12 else {
            throw fail(.truncatedData(length: length, available: available - 12))
        }
        let dataStart = offset + 12
        let data = bytes[dataStart..<dataStart + Int(length)]
        guard maskedCRC32C(data) == readLittleEndianUInt32(bytes, at: dataStart + Int(length)) else { throw fail(.badDataCRC) }
        records.append(TFRecord(offset: offset, data: data))
        offset = dataStart + Int(length) + 4
    }
    return records
}

private func littleEndianBytes<T: FixedWidthInteger>(_ value: T) -> [UInt8] {
    withUnsafeBytes(of: value.littleEndian) { Array($0) }
}

private func readLittleEndianUInt64(_ bytes: [UInt8], at offset: Int) -> UInt64 {
    (0..<8).reduce(0) { $0 | UInt64(bytes[offset + $1]) << (8 * UInt64($1)) }
}

private func readLittleEndianUInt32(_ bytes: [UInt8], at offset: Int) -> UInt32 {
    (0..<4).reduce(0) { $0 | UInt32(bytes[offset + $1]) << (8 * UInt32($1)) }
}
