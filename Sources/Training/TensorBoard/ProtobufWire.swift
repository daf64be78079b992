/// Just enough of the protobuf wire format for TensorBoard's Event and Summary messages.
/// https://protobuf.dev/programming-guides/encoding/

/// Builds one message. Fields are written in the order they are added; protobuf allows any order,
/// but callers add them by field number, as protoc would, so byte-level diffs stay readable.
struct ProtobufEncoder {
    private(set) var bytes: [UInt8] = []

    enum WireType: UInt64 { case varint = 0, fixed64 = 1, lengthDelimited = 2, fixed32 = 5 }

    mutating func appendVarint(_ value: UInt64) {
        var value = value
        while value >= 0x80 {
            bytes.append(UInt8(value & 0x7F) | 0x80)
            value >>= 7
        }
        bytes.append(UInt8(value))
    }

    mutating func appendTag(_ field: Int, _ type: WireType) {
        appendVarint(UInt64(field) << 3 | type.rawValue)
    }

    /// int64 fields: negative values take ten bytes (two's complement), as protoc writes them.
    mutating func appendInt64(_ field: Int, _ value: Int64) {
        appendTag(field, .varint)
        appendVarint(UInt64(bitPattern: value))
    }

    mutating func appendDouble(_ field: Int, _ value: Double) {
        appendTag(field, .fixed64)
        appendLittleEndian(value.bitPattern)
    }

    mutating func appendFloat(_ field: Int, _ value: Float) {
        appendTag(field, .fixed32)
        appendLittleEndian(value.bitPattern)
    }

    mutating func appendBytes(_ field: Int, _ value: [UInt8]) {
        appendTag(field, .lengthDelimited)
        appendVarint(UInt64(value.count))
        bytes.append(contentsOf: value)
    }

    mutating func appendString(_ field: Int, _ value: String) { appendBytes(field, Array(value.utf8)) }

    mutating func appendMessage(_ field: Int, _ message: ProtobufEncoder) { appendBytes(field, message.bytes) }

    private mutating func appendLittleEndian<T: FixedWidthInteger>(_ value: T) {
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }
}

/// One field as it appears on the wire; what it means depends on the message's schema.
struct ProtobufField {
    enum Value {
        case varint(UInt64)
        case fixed64(UInt64)
        case fixed32(UInt32)
        case lengthDelimited(ArraySlice<UInt8>)
    }

    let number: Int
    let value: Value

    var double: Double? { if case .fixed64(let bits) = value { Double(bitPattern: bits) } else { nil } }
    var float: Float? { if case .fixed32(let bits) = value { Float(bitPattern: bits) } else { nil } }
    var int64: Int64? { if case .varint(let raw) = value { Int64(bitPattern: raw) } else { nil } }
    var bytes: ArraySlice<UInt8>? { if case .lengthDelimited(let bytes) = value { bytes } else { nil } }
    var string: String? { bytes.flatMap { String(validating: $0, as: UTF8.self) } }
}

struct ProtobufDecodingError: Error, CustomStringConvertible {
    let description: String
}

/// Splits a message into its fields, in wire order (repeated fields appear once per element).
func decodeProtobufFields(_ message: ArraySlice<UInt8>) throws -> [ProtobufField] {
    var fields: [ProtobufField] = []
    var index = message.startIndex

    func readVarint() throws -> UInt64 {
        var value: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            guard index < message.endIndex else { throw ProtobufDecodingError(description: "truncated varint") }
            guard shift < 64 else { throw ProtobufDecodingError(description: "varint longer than 10 bytes") }
            let byte = message[index]
            index += 1
            value |= UInt64(byte & 0x7F) << shift
            if byte < 0x80 { return value }
            shift += 7
        }
    }

    func readLittleEndian(_ count: Int) throws -> UInt64 {
        guard message.endIndex - index >= count else {
            throw ProtobufDecodingError(description: "truncated \(count * 8)-bit field")
        }
        var value: UInt64 = 0
        for i in 0..<count { value |= UInt64(message[index + i]) << (8 * UInt64(i)) }
        index += count
        return value
    }

    while index < message.endIndex {
        let key = try readVarint()
        let number = Int(truncatingIfNeeded: key >> 3)
        guard number > 0 else { throw ProtobufDecodingError(description: "field number 0") }
        switch key & 7 {
        case 0: fields.append(ProtobufField(number: number, value: .varint(try readVarint())))
        case 1: fields.append(ProtobufField(number: number, value: .fixed64(try readLittleEndian(8))))
        case 5: fields.append(ProtobufField(number: number, value: .fixed32(UInt32(try readLittleEndian(4)))))
        case 2:
            let length = try readVarint()
            guard length <= UInt64(message.endIndex - index) else {
                throw ProtobufDecodingError(description: "field \(number) claims \(length) bytes, \(message.endIndex - index) left")
            }
            let end = index + Int(length)
            fields.append(ProtobufField(number: number, value: .lengthDelimited(message[index..<end])))
            index = end
        case let type:
            throw ProtobufDecodingError(description: "field \(number) has unsupported wire type \(type)")
        }
    }
    return fields
}
