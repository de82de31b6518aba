import CheckpointCore

/// Encoding `Float` data into GGUF tensor types, for the writer.
public enum Quantize {
    /// Encodes `source` as `type` (F32, F16, BF16 or Q8_0) into `destination`.
    /// Q8_0 follows ggml's reference `quantize_row_q8_0_ref` bit for bit: d = max|x| / 127,
    /// q = round-half-away(x · (1/d)), d stored as F16.
    /// - Throws: `unsupportedQuantization` for other types; `shapeMismatch` for wrong sizes.
    public static func encode(_ source: UnsafeBufferPointer<Float>, as type: GGMLType,
                              into destination: UnsafeMutableRawBufferPointer) throws(CheckpointError) {
        let n = source.count
        guard let bytes = type.byteCount(elements: n), bytes == destination.count else {
            throw CheckpointError(.shapeMismatch, "\(destination.count) bytes of \(type.name) do not hold \(n) elements")
        }
        switch type {
        case .f32: try DTypeConversion.encode(source, as: .f32, into: destination)
        case .f16: try DTypeConversion.encode(source, as: .f16, into: destination)
        case .bf16: try DTypeConversion.encode(source, as: .bf16, into: destination)
        case .q8_0:
            guard n > 0, let s = source.baseAddress, let d = destination.baseAddress else { return }
            for b in 0..<(n / 32) {
                let x = s + b * 32
                let o = d + b * 34
                var amax: Float = 0
                for j in 0..<32 { amax = max(amax, abs(x[j])) }
                let scale = amax / 127
                let inv: Float = scale != 0 ? 1 / scale : 0
                o.storeBytes(of: Float16(scale).bitPattern.littleEndian, toByteOffset: 0, as: UInt16.self)
                for j in 0..<32 {
                    let q = (x[j] * inv).rounded(.toNearestOrAwayFromZero)
                    o.storeBytes(of: Int8(q), toByteOffset: 2 + j, as: Int8.self)
                }
            }
        default:
            throw CheckpointError(.unsupportedQuantization, "cannot encode ggml type \(type.name); the writer supports F32, F16, BF16 and Q8_0")
        }
    }

    /// Encodes `values` as `type` into a new byte array.
    public static func encode(_ values: [Float], as type: GGMLType) throws(CheckpointError) -> [UInt8] {
        guard let size = type.byteCount(elements: values.count) else {
            throw CheckpointError(.shapeMismatch, "\(values.count) elements are not whole blocks of \(type.name)")
        }
        var out = [UInt8](repeating: 0, count: size)
        let r: Result<Void, CheckpointError> = values.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBytes { dst in Result { () throws(CheckpointError) in try encode(src, as: type, into: dst) } }
        }
        try r.get()
        return out
    }
}
