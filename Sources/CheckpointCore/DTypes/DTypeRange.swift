/// Range checks for narrowing float conversions: which finite values would become infinite.
public enum DTypeRange {
    /// The index of the first finite element of `source` that `dtype` cannot represent (it would
    /// round to infinity), or nil when every finite element fits. Only F16, BF16 and F32 targets
    /// (and wider) are checked; other targets return nil.
    public static func firstOverflow(_ source: UnsafeBufferPointer<Float>, as dtype: DType) -> Int? {
        switch dtype {
        case .f16:
            // Float16's largest finite value is 65504; values from 65520 up round to infinity.
            for i in 0..<source.count where abs(source[i]) >= 65520 && source[i].isFinite { return i }
        case .bf16:
            for i in 0..<source.count where source[i].isFinite {
                if Minifloat.floatToBF16(source[i]) & 0x7FFF == 0x7F80 { return i }
            }
        default:
            break
        }
        return nil
    }
}
