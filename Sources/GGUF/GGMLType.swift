/// A ggml tensor type as stored in a GGUF tensor info (`ggml_type`), with its block geometry.
///
/// Quantized types pack `blockSize` consecutive elements along ne[0] (a row) into `bytesPerBlock`
/// bytes. The table follows gguf-py's `GGML_QUANT_SIZES`. Ids retired upstream (4, 5, 31–33,
/// 36–38) are unknown here and rejected by the reader.
public struct GGMLType: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    public static let f32 = GGMLType(rawValue: 0)
    public static let f16 = GGMLType(rawValue: 1)
    public static let q4_0 = GGMLType(rawValue: 2)
    public static let q4_1 = GGMLType(rawValue: 3)
    public static let q5_0 = GGMLType(rawValue: 6)
    public static let q5_1 = GGMLType(rawValue: 7)
    public static let q8_0 = GGMLType(rawValue: 8)
    public static let q8_1 = GGMLType(rawValue: 9)
    public static let q2_K = GGMLType(rawValue: 10)
    public static let q3_K = GGMLType(rawValue: 11)
    public static let q4_K = GGMLType(rawValue: 12)
    public static let q5_K = GGMLType(rawValue: 13)
    public static let q6_K = GGMLType(rawValue: 14)
    public static let q8_K = GGMLType(rawValue: 15)
    public static let i8 = GGMLType(rawValue: 24)
    public static let i16 = GGMLType(rawValue: 25)
    public static let i32 = GGMLType(rawValue: 26)
    public static let i64 = GGMLType(rawValue: 27)
    public static let f64 = GGMLType(rawValue: 28)
    public static let bf16 = GGMLType(rawValue: 30)

    /// (name, elements per block, bytes per block) by id.
    private static let table: [UInt32: (String, Int, Int)] = [
        0: ("F32", 1, 4), 1: ("F16", 1, 2), 2: ("Q4_0", 32, 18), 3: ("Q4_1", 32, 20),
        6: ("Q5_0", 32, 22), 7: ("Q5_1", 32, 24), 8: ("Q8_0", 32, 34), 9: ("Q8_1", 32, 40),
        10: ("Q2_K", 256, 84), 11: ("Q3_K", 256, 110), 12: ("Q4_K", 256, 144), 13: ("Q5_K", 256, 176),
        14: ("Q6_K", 256, 210), 15: ("Q8_K", 256, 292),
        16: ("IQ2_XXS", 256, 66), 17: ("IQ2_XS", 256, 74), 18: ("IQ3_XXS", 256, 98), 19: ("IQ1_S", 256, 50),
        20: ("IQ4_NL", 32, 18), 21: ("IQ3_S", 256, 110), 22: ("IQ2_S", 256, 82), 23: ("IQ4_XS", 256, 136),
        24: ("I8", 1, 1), 25: ("I16", 1, 2), 26: ("I32", 1, 4), 27: ("I64", 1, 8), 28: ("F64", 1, 8),
        29: ("IQ1_M", 256, 56), 30: ("BF16", 1, 2), 34: ("TQ1_0", 256, 54), 35: ("TQ2_0", 256, 66),
        39: ("MXFP4", 32, 17), 40: ("NVFP4", 64, 36), 41: ("Q1_0", 128, 18),
    ]

    /// Whether the id is a type this reader knows the block geometry of.
    public var isKnown: Bool { GGMLType.table[rawValue] != nil }

    /// The upstream name ("Q4_K"), or "type N" for unknown ids.
    public var name: String { GGMLType.table[rawValue]?.0 ?? "type \(rawValue)" }
    public var description: String { name }

    /// Elements per block (1 for plain types). Only meaningful when ``isKnown``.
    public var blockSize: Int { GGMLType.table[rawValue]?.1 ?? 1 }
    /// Bytes per block. Only meaningful when ``isKnown``.
    public var bytesPerBlock: Int { GGMLType.table[rawValue]?.2 ?? 0 }

    /// Whether elements are packed in blocks of more than one.
    public var isQuantized: Bool { blockSize > 1 }

    /// Parses a type name, any case ("q8_0", "F16").
    public init?(name: String) {
        let u = name.uppercased()
        guard let e = GGMLType.table.first(where: { $0.value.0 == u }) else { return nil }
        self.rawValue = e.key
    }

    /// Whether ``Dequantize`` can decode this type to F32.
    public var canDequantize: Bool {
        switch self {
        case .f32, .f16, .bf16, .f64, .q4_0, .q4_1, .q5_0, .q5_1, .q8_0, .q2_K, .q3_K, .q4_K, .q5_K, .q6_K: true
        default: false
        }
    }

    /// Byte size of `elements` elements (a whole number of blocks), or nil on overflow or when
    /// `elements` is not a multiple of the block size.
    public func byteCount(elements: Int) -> Int? {
        guard isKnown, elements >= 0, elements % blockSize == 0 else { return nil }
        let (b, o) = (elements / blockSize).multipliedReportingOverflow(by: bytesPerBlock)
        return o ? nil : b
    }
}
