import CheckpointCore

/// Decoding of GGUF tensor data to `Float`, element for element equal to the Python `gguf`
/// package's `dequantize` (the same float32 operations in the same order, never fused).
///
/// Entry point: ``decode(_:type:into:)``, which checks the byte count against the element count
/// before any kernel runs. Kernels work block by block on raw pointers; block layouts are
/// documented in `formats/gguf.md` and at each kernel (`Dequantize+Legacy.swift`, `Dequantize+KQuants.swift`).
public enum Dequantize {
    /// Decodes `source` (whole blocks of `type`) into `destination`.
    /// - Throws: `unsupportedQuantization` naming the type when there is no decoder;
    ///   `shapeMismatch` when the byte count is not that of `destination.count` elements.
    public static func decode(_ source: UnsafeRawBufferPointer, type: GGMLType,
                              into destination: UnsafeMutableBufferPointer<Float>) throws(CheckpointError) {
        let n = destination.count
        guard type.canDequantize || plainDType(type) != nil else {
            throw CheckpointError(.unsupportedQuantization, "cannot decode tensors of ggml type \(type.name) (id \(type.rawValue)); supported: F32, F16, BF16, F64, I8-I64, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K")
        }
        guard let bytes = type.byteCount(elements: n), bytes == source.count else {
            throw CheckpointError(.shapeMismatch, "\(source.count) bytes of \(type.name) do not hold \(n) elements")
        }
        guard n > 0, let s = source.baseAddress, let d = destination.baseAddress else { return }
        let blocks = n / type.blockSize
        switch type {
        case .f16: F16Table.decode(s, d, n)
        case .q4_0: q4_0(s, d, blocks)
        case .q4_1: q4_1(s, d, blocks)
        case .q5_0: q5_0(s, d, blocks)
        case .q5_1: q5_1(s, d, blocks)
        case .q8_0: q8_0(s, d, blocks)
        case .q2_K: q2_K(s, d, blocks)
        case .q3_K: q3_K(s, d, blocks)
        case .q4_K: q4_K(s, d, blocks)
        case .q5_K: q5_K(s, d, blocks)
        case .q6_K: q6_K(s, d, blocks)
        default:
            try DTypeConversion.decode(source, as: plainDType(type)!, into: destination)
        }
    }

    /// The safetensors dtype with the same encoding as a plain (unquantized) ggml type.
    public static func plainDType(_ type: GGMLType) -> DType? {
        switch type {
        case .f32: .f32
        case .f16: .f16
        case .bf16: .bf16
        case .f64: .f64
        case .i8: .i8
        case .i16: .i16
        case .i32: .i32
        case .i64: .i64
        default: nil
        }
    }
}

/// F16 → F32 by table (256 KiB): `Float(Float16)` is a software call on baseline x86-64.
enum F16Table {
    static let values: [Float] = (0...0xFFFF).map { Float(Float16(bitPattern: UInt16($0))) }

    @inline(__always) static func load(_ s: UnsafeRawPointer, _ offset: Int, _ t: UnsafePointer<Float>) -> Float {
        t[Int(UInt16(littleEndian: s.loadUnaligned(fromByteOffset: offset, as: UInt16.self)))]
    }

    static func decode(_ s: UnsafeRawPointer, _ d: UnsafeMutablePointer<Float>, _ n: Int) {
        values.withUnsafeBufferPointer { tb in
            let t = tb.baseAddress!
            for i in 0..<n { d[i] = load(s, 2 &* i, t) }
        }
    }

    /// Calls `body` with the table's base pointer.
    @inline(__always) static func with<R>(_ body: (UnsafePointer<Float>) -> R) -> R {
        values.withUnsafeBufferPointer { body($0.baseAddress!) }
    }
}
