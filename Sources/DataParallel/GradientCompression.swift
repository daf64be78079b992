import CHalfFloat

/// `--grad-compression`: gradients travel as 16-bit floats, half the bytes of float32
/// (Horovod's `Compression.fp16`). Each bucket is converted before the all-reduce and back
/// after it; the reduction adds pairs in float32 and rounds each partial sum to 16 bits once.
/// fp16 keeps 11 significant bits but underflows below 6e-8 and overflows above 65504;
/// bf16 keeps float32's range with 8 significant bits.
public enum GradientCompression: String, Sendable, CaseIterable, Codable {
    case none, fp16, bf16

    /// float32 → 16 bits, round to nearest even.
    public func compress(_ source: UnsafePointer<Float>, into destination: UnsafeMutablePointer<UInt16>, count: Int) {
        switch self {
        case .fp16: hf_f32_to_f16(source, destination, count)
        case .bf16: hf_f32_to_bf16(source, destination, count)
        case .none: preconditionFailure("nothing to compress")
        }
    }

    public func decompress(_ source: UnsafePointer<UInt16>, into destination: UnsafeMutablePointer<Float>, count: Int) {
        switch self {
        case .fp16: hf_f16_to_f32(source, destination, count)
        case .bf16: hf_bf16_to_f32(source, destination, count)
        case .none: preconditionFailure("nothing to decompress")
        }
    }
}
