import Foundation

// The safetensors format (huggingface/safetensors README, "Format"): 8 bytes little-endian
// header size N, N bytes of JSON, then the byte buffer. See ../shared/formats.md.

public enum SafeTensorsDType: String, Sendable, CaseIterable {
    case bool = "BOOL", u8 = "U8", i8 = "I8", f8e5m2 = "F8_E5M2", f8e4m3 = "F8_E4M3", f8e8m0 = "F8_E8M0"
    case f8e4m3fnuz = "F8_E4M3FNUZ", f8e5m2fnuz = "F8_E5M2FNUZ"
    case i16 = "I16", u16 = "U16", f16 = "F16", bf16 = "BF16"
    case i32 = "I32", u32 = "U32", f32 = "F32", c64 = "C64", f64 = "F64", i64 = "I64", u64 = "U64"

    public var byteSize: Int {
        switch self {
        case .bool, .u8, .i8, .f8e5m2, .f8e4m3, .f8e8m0, .f8e4m3fnuz, .f8e5m2fnuz: return 1
        case .i16, .u16, .f16, .bf16: return 2
        case .i32, .u32, .f32: return 4
        case .c64, .f64, .i64, .u64: return 8
        }
    }
}

/// One named tensor: dtype, shape and its little-endian, row-major bytes.
public struct SafeTensorRecord: Sendable, Equatable {
    public var name: String
    public var dtype: SafeTensorsDType
    public var shape: [Int]
    public var data: [UInt8]

    public init(name: String, dtype: SafeTensorsDType, shape: [Int], data: [UInt8]) {
        self.name = name; self.dtype = dtype; self.shape = shape; self.data = data
    }

    public init(name: String, dtype: SafeTensorsDType = .f32, shape: [Int], floats: [Float]) {
        self.init(name: name, dtype: dtype, shape: shape,
                  data: floats.withUnsafeBytes { Array($0) })  // x86-64 and arm64 are little-endian
    }

    public init(name: String, dtype: SafeTensorsDType = .i64, shape: [Int], int64s: [Int64]) {
        self.init(name: name, dtype: dtype, shape: shape, data: int64s.withUnsafeBytes { Array($0) })
    }

    public var elementCount: Int { shape.reduce(1, *) }

    public func floats() throws -> [Float] {
        guard dtype == .f32 else { throw SafeTensorsError("\(name): expected F32, found \(dtype.rawValue)") }
        return data.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
    }

    public func int64s() throws -> [Int64] {
        guard dtype == .i64 else { throw SafeTensorsError("\(name): expected I64, found \(dtype.rawValue)") }
        return data.withUnsafeBytes { Array($0.bindMemory(to: Int64.self)) }
    }
}

public struct SafeTensorsError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Reads a safetensors file, validating everything before any tensor is touched: a file
/// from the internet must not make us read outside it or allocate absurd amounts.
public struct SafeTensorsFile: Sendable {
    public static let maxHeaderSize = 100_000_000
    public var tensors: [String: SafeTensorRecord]
    /// Tensor names in file (offset) order.
    public var names: [String]
    public var metadata: [String: String]

    public static func read(path: String) throws -> SafeTensorsFile {
        func fail(_ problem: String) -> SafeTensorsError { SafeTensorsError("\(path): \(problem)") }
        guard let handle = FileHandle(forReadingAtPath: path) else { throw fail("cannot open the file") }
        defer { try? handle.close() }
        let fileSize = Int(try handle.seekToEnd())
        try handle.seek(toOffset: 0)
        guard fileSize >= 8 else { throw fail("file is \(fileSize) bytes, too small for a safetensors header") }
        let lengthBytes = Array(try handle.read(upToCount: 8) ?? Data())
        guard lengthBytes.count == 8 else { throw fail("cannot read the header length") }
        let headerLength = lengthBytes.enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
        guard headerLength <= UInt64(maxHeaderSize) else {
            throw fail("header length \(headerLength) exceeds the \(maxHeaderSize)-byte limit")
        }
        guard headerLength <= UInt64(fileSize - 8) else {
            throw fail("header length \(headerLength) runs past the end of the \(fileSize)-byte file")
        }
        let header = try handle.read(upToCount: Int(headerLength)) ?? Data()
        guard header.count == Int(headerLength) else { throw fail("truncated header") }
        guard header.first == UInt8(ascii: "{") else { throw fail("header does not start with '{'") }
        guard let json = try? JSONSerialization.jsonObject(with: header) as? [String: Any] else {
            throw fail("header is not a valid JSON object")
        }
        let bufferSize = fileSize - 8 - Int(headerLength)
        var metadata: [String: String] = [:]
        var entries: [(name: String, dtype: SafeTensorsDType, shape: [Int], begin: Int, end: Int)] = []
        for (key, value) in json {
            if key == "__metadata__" {
                guard let map = value as? [String: Any] else { throw fail("__metadata__ is not an object") }
                for (k, v) in map {
                    guard let s = v as? String else { throw fail("__metadata__ value for '\(k)' is not a string") }
                    metadata[k] = s
                }
                continue
            }
            guard let info = value as? [String: Any] else { throw fail("entry '\(key)' is not an object") }
            guard let dtypeName = info["dtype"] as? String else { throw fail("tensor '\(key)' has no dtype") }
            guard let dtype = SafeTensorsDType(rawValue: dtypeName) else {
                throw fail("tensor '\(key)' has unknown dtype '\(dtypeName)'")
            }
            guard let shape = nonNegativeInts(info["shape"]) else { throw fail("tensor '\(key)' has a malformed shape") }
            guard let offsets = nonNegativeInts(info["data_offsets"]), offsets.count == 2 else {
                throw fail("tensor '\(key)' has malformed data_offsets")
            }
            let (begin, end) = (offsets[0], offsets[1])
            guard begin <= end, end <= bufferSize else {
                throw fail("tensor '\(key)' has data_offsets [\(begin), \(end)] outside the \(bufferSize)-byte buffer")
            }
            var bytes = dtype.byteSize
            for d in shape {
                let (product, overflow) = bytes.multipliedReportingOverflow(by: d)
                guard !overflow else { throw fail("tensor '\(key)' shape \(shape) overflows") }
                bytes = product
            }
            guard bytes == end - begin else {
                throw fail("tensor '\(key)' has data_offsets [\(begin), \(end)] but shape \(shape) × \(dtype.rawValue) needs \(bytes) bytes")
            }
            entries.append((key, dtype, shape, begin, end))
        }
        entries.sort { ($0.begin, $0.end, $0.name) < ($1.begin, $1.end, $1.name) }
        var covered = 0
        for e in entries {
            guard e.begin == covered else {
                throw fail(e.begin < covered ? "tensor '\(e.name)' overlaps the previous tensor"
                                             : "the buffer has a hole before tensor '\(e.name)' (bytes \(covered)..<\(e.begin))")
            }
            covered = e.end
        }
        guard covered == bufferSize else { throw fail("the buffer has \(bufferSize - covered) trailing bytes no tensor covers") }
        let buffer = try handle.read(upToCount: bufferSize) ?? Data()
        guard buffer.count == bufferSize else { throw fail("truncated data buffer") }
        var tensors: [String: SafeTensorRecord] = [:]
        for e in entries {
            tensors[e.name] = SafeTensorRecord(name: e.name, dtype: e.dtype, shape: e.shape,
                                               data: Array(buffer[buffer.startIndex + e.begin ..< buffer.startIndex + e.end]))
        }
        return SafeTensorsFile(tensors: tensors, names: entries.map(\.name), metadata: metadata)
    }

    static func nonNegativeInts(_ value: Any?) -> [Int]? {
        guard let array = value as? [Any] else { return nil }
        var out: [Int] = []
        for v in array {
            guard let n = v as? NSNumber, n.doubleValue == Double(n.int64Value), n.int64Value >= 0 else { return nil }
            out.append(n.intValue)
        }
        return out
    }
}

/// Writes safetensors files the way the Rust writer does (tensors sorted by descending dtype
/// alignment, then name; header padded with spaces to a multiple of 8), atomically.
public enum SafeTensorsWriter {
    public static func encode(tensors: [SafeTensorRecord], metadata: [String: String]) throws -> [UInt8] {
        let sorted = tensors.sorted { ($0.dtype.byteSize, $1.name) > ($1.dtype.byteSize, $0.name) }
        var seen = Set<String>()
        var header = "{"
        var parts: [String] = []
        if !metadata.isEmpty {
            parts.append("\"__metadata__\":{" + metadata.keys.sorted().map { "\(jsonString($0)):\(jsonString(metadata[$0]!))" }
                .joined(separator: ",") + "}")
        }
        var offset = 0
        for t in sorted {
            guard seen.insert(t.name).inserted else { throw SafeTensorsError("duplicate tensor name '\(t.name)'") }
            guard t.elementCount * t.dtype.byteSize == t.data.count else {
                throw SafeTensorsError("tensor '\(t.name)': shape \(t.shape) × \(t.dtype.rawValue) needs \(t.elementCount * t.dtype.byteSize) bytes, has \(t.data.count)")
            }
            let shape = t.shape.map(String.init).joined(separator: ",")
            parts.append("\(jsonString(t.name)):{\"dtype\":\"\(t.dtype.rawValue)\",\"shape\":[\(shape)],\"data_offsets\":[\(offset),\(offset + t.data.count)]}")
            offset += t.data.count
        }
        header += parts.joined(separator: ",") + "}"
        var headerBytes = Array(header.utf8)
        while headerBytes.count % 8 != 0 { headerBytes.append(0x20) }
        var out: [UInt8] = []
        out.reserveCapacity(8 + headerBytes.count + offset)
        let n = UInt64(headerBytes.count)
        for i in 0..<8 { out.append(UInt8(truncatingIfNeeded: n >> (8 * UInt64(i)))) }
        out += headerBytes
        for t in sorted { out += t.data }
        return out
    }

    /// Temporary file in the same directory, fsync, rename, fsync the directory: a crash leaves
    /// either the old file or the new one, never half of one.
    public static func write(tensors: [SafeTensorRecord], metadata: [String: String], to path: String) throws {
        let bytes = try encode(tensors: tensors, metadata: metadata)
        try writeAtomically(bytes, to: path)
    }
}

public func writeAtomically(_ bytes: [UInt8], to path: String) throws {
    let directory = (path as NSString).deletingLastPathComponent.isEmpty ? "." : (path as NSString).deletingLastPathComponent
    let temporary = directory + "/." + (path as NSString).lastPathComponent + ".tmp-\(getpid())"
    let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    guard fd >= 0 else { throw SafeTensorsError("\(path): cannot create \(temporary): \(String(cString: strerror(errno)))") }
    var ok = true
    // Tests kill a run while it writes; this makes "while" last long enough to hit.
    let pause = ProcessInfo.processInfo.environment["SWIFT_DP_TRAIN_TEST_PAUSE_MID_WRITE"].flatMap(Double.init)
    bytes.withUnsafeBytes { raw in
        var done = 0
        var half = pause == nil ? raw.count : raw.count / 2
        while done < raw.count {
            let n = Foundation.write(fd, raw.baseAddress! + done, min(raw.count, max(half, done + 1)) - done)
            if n <= 0 { ok = false; break }
            done += n
            if done >= half, let pause, half < raw.count {
                Thread.sleep(forTimeInterval: pause)
                half = raw.count
            }
        }
    }
    let error = String(cString: strerror(errno))
    if ok { ok = fsync(fd) == 0 }
    close(fd)
    guard ok, rename(temporary, path) == 0 else {
        unlink(temporary)
        throw SafeTensorsError("\(path): write failed (\(error))")
    }
    let dirfd = open(directory, O_RDONLY)
    if dirfd >= 0 { fsync(dirfd); close(dirfd) }
}

func jsonString(_ s: String) -> String {
    var out = "\""
    for scalar in s.unicodeScalars {
        switch scalar {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        case _ where scalar.value < 0x20: out += String(format: "\\u%04x", scalar.value)
        default: out.unicodeScalars.append(scalar)
        }
    }
    return out + "\""
}
