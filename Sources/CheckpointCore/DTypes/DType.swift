/// Every element type a safetensors file can declare, named as in the file (`"BF16"`, `"F8_E4M3"`).
///
/// Cases are declared in the reference implementation's order ("increasing alignment"), which the
/// writer uses to order tensors: ``writerRank``.
public enum DType: String, Sendable, CaseIterable, Hashable, Comparable {
    case bool = "BOOL"
    case f4 = "F4"
    case f6E2M3 = "F6_E2M3"
    case f6E3M2 = "F6_E3M2"
    case u8 = "U8"
    case i8 = "I8"
    case f8E5M2 = "F8_E5M2"
    case f8E4M3 = "F8_E4M3"
    case f8E8M0 = "F8_E8M0"
    case f8E4M3FNUZ = "F8_E4M3FNUZ"
    case f8E5M2FNUZ = "F8_E5M2FNUZ"
    case i16 = "I16"
    case u16 = "U16"
    case f16 = "F16"
    case bf16 = "BF16"
    case i32 = "I32"
    case u32 = "U32"
    case f32 = "F32"
    case c64 = "C64"
    case f64 = "F64"
    case i64 = "I64"
    case u64 = "U64"

    /// Size of one element in bits (4 and 6 for the sub-byte MX types).
    public var bitSize: Int {
        switch self {
        case .f4: 4
        case .f6E2M3, .f6E3M2: 6
        case .bool, .u8, .i8, .f8E5M2, .f8E4M3, .f8E8M0, .f8E4M3FNUZ, .f8E5M2FNUZ: 8
        case .i16, .u16, .f16, .bf16: 16
        case .i32, .u32, .f32: 32
        case .c64, .f64, .i64, .u64: 64
        }
    }

    /// Size of one element in bytes, or nil for sub-byte types.
    public var byteSize: Int? { bitSize % 8 == 0 ? bitSize / 8 : nil }

    /// Position in the declaration order; the writer sorts by this, descending.
    public var writerRank: Int { DType.allCases.firstIndex(of: self)! }

    public static func < (a: DType, b: DType) -> Bool { a.writerRank < b.writerRank }

    /// Whether the type is a floating-point format (including fp8/fp6/fp4 and complex).
    public var isFloatingPoint: Bool {
        switch self {
        case .bool, .u8, .i8, .i16, .u16, .i32, .u32, .i64, .u64: false
        default: true
        }
    }

    /// Whether the bulk conversions to `Float` are defined for this type.
    public var convertsToFloat32: Bool {
        switch self {
        case .f6E2M3, .f6E3M2, .c64: false
        default: true
        }
    }

    /// Whether the bulk conversions from `Float` are defined for this type.
    public var convertsFromFloat32: Bool {
        switch self {
        case .f4, .f6E2M3, .f6E3M2, .c64: false
        default: true
        }
    }

    /// Parses a dtype name, also accepting the lower-case and PyTorch spellings users type
    /// ("bf16", "bfloat16", "float16", "fp32").
    public init?(userName: String) {
        if let d = DType(rawValue: userName) { self = d; return }
        let aliases: [String: DType] = [
            "bfloat16": .bf16, "float16": .f16, "half": .f16, "fp16": .f16, "float32": .f32, "float": .f32,
            "fp32": .f32, "float64": .f64, "double": .f64, "fp64": .f64, "int8": .i8, "uint8": .u8,
            "int16": .i16, "uint16": .u16, "int32": .i32, "uint32": .u32, "int64": .i64, "uint64": .u64,
            "float8_e4m3fn": .f8E4M3, "float8_e5m2": .f8E5M2, "fp8": .f8E4M3, "e4m3": .f8E4M3, "e5m2": .f8E5M2,
        ]
        if let d = aliases[userName.lowercased()] ?? DType(rawValue: userName.uppercased()) { self = d } else { return nil }
    }
}

extension DType {
    /// PyTorch's name of a floating-point dtype (`bfloat16`), as `config.json`'s `dtype` /
    /// `torch_dtype` spells it; other types by their lower-case name.
    public var torchName: String {
        switch self {
        case .bf16: "bfloat16"
        case .f16: "float16"
        case .f32: "float32"
        case .f64: "float64"
        case .f8E4M3: "float8_e4m3fn"
        case .f8E5M2: "float8_e5m2"
        default: rawValue.lowercased()
        }
    }
}
