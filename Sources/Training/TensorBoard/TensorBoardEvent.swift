/// The subset of tensorflow/core/util/event.proto and summary.proto that scalar logging uses:
///
///     message Event   { double wall_time = 1; int64 step = 2;
///                       oneof what { string file_version = 3; Summary summary = 5; ... } }
///     message Summary { repeated Value value = 1; }
///     message Summary.Value { string tag = 1; oneof value { float simple_value = 2; ... } }
///
/// `simple_value` is the legacy scalar form; TensorBoard still reads it (as the `scalars` plugin)
/// and it needs no plugin metadata, unlike the tensor form `tf.summary.scalar` writes today.
struct TensorBoardEvent {
    var wallTime: Double
    var step: Int64
    var fileVersion: String?
    var scalars: [(tag: String, value: Float)] = []

    /// The version string TensorBoard expects in the first record of every event file.
    static let currentFileVersion = "brain.Event:2"

    func encoded() -> [UInt8] {
        var event = ProtobufEncoder()
        event.appendDouble(1, wallTime)
        // proto3 leaves out fields at their default, so this matches TensorFlow's bytes exactly.
        if step != 0 { event.appendInt64(2, step) }
        if let fileVersion { event.appendString(3, fileVersion) }
        if !scalars.isEmpty {
            var summary = ProtobufEncoder()
            for scalar in scalars {
                var value = ProtobufEncoder()
                value.appendString(1, scalar.tag)
                value.appendFloat(2, scalar.value)
                summary.appendMessage(1, value)
            }
            event.appendMessage(5, summary)
        }
        return event.bytes
    }

    /// Reads the fields above and skips every other one (graphs, images, log messages, tensors).
    init(decoding bytes: ArraySlice<UInt8>) throws {
        wallTime = 0
        step = 0
        for field in try decodeProtobufFields(bytes) {
            switch field.number {
            case 1: wallTime = try field.double ?? Self.wrongType("wall_time")
            case 2: step = try field.int64 ?? Self.wrongType("step")
            case 3: fileVersion = try field.string ?? Self.wrongType("file_version")
            case 5: try appendScalars(fromSummary: field.bytes ?? Self.wrongType("summary"))
            default: continue
            }
        }
    }

    init(wallTime: Double, step: Int64, fileVersion: String? = nil, scalars: [(tag: String, value: Float)] = []) {
        self.wallTime = wallTime
        self.step = step
        self.fileVersion = fileVersion
        self.scalars = scalars
    }

    private mutating func appendScalars(fromSummary summary: ArraySlice<UInt8>) throws {
        for field in try decodeProtobufFields(summary) where field.number == 1 {
            var tag: String?
            var simpleValue: Float?
            for valueField in try decodeProtobufFields(field.bytes ?? Self.wrongType("summary.value")) {
                switch valueField.number {
                case 1: tag = try valueField.string ?? Self.wrongType("summary.value.tag")
                case 2: simpleValue = try valueField.float ?? Self.wrongType("summary.value.simple_value")
                default: continue
                }
            }
            if let tag, let simpleValue { scalars.append((tag, simpleValue)) }
        }
    }

    private static func wrongType<T>(_ name: String) throws -> T {
        throw ProtobufDecodingError(description: "\(name) has the wrong wire type")
    }
}
