import ShearsJSON

/// The parsed and validated header of one safetensors file.
///
/// ``parse(_:)`` applies the reference (Rust) reader's checks in its order, with errors of the same
/// meaning, then the checks it misses. See `formats/safetensors.md`.
public struct SafetensorsHeader: Sendable {
    /// The reference reader's cap on the header length.
    public static let maximumHeaderLength = 100_000_000

    /// N, the header's byte length (including padding).
    public var headerLength: Int
    /// `__metadata__`, or nil when the header has none.
    public var metadata: Metadata?
    /// Tensors in data order (by offset), which is the order their bytes appear in the file.
    public var tensors: [TensorInfo]
    /// Things that are legal but worth knowing (unaligned data, unknown fields).
    public var warnings: [String]

    /// Where the data section starts in the file: 8 + N.
    public var dataStart: Int { 8 + headerLength }
    /// Total bytes of tensor data.
    public var dataLength: Int { tensors.last?.dataOffsets.upperBound ?? 0 }

    /// Validates `file` (the whole file's bytes) as safetensors and returns its header.
    /// - Throws: ``CheckpointError`` with the code of the first rule the file breaks.
    public static func parse(_ file: UnsafeRawBufferPointer) throws(CheckpointError) -> SafetensorsHeader {
        try parse(file, fileSize: file.count)
    }

    /// Validates a header given its bytes (`bytes` holds at least the length prefix and the header;
    /// it may be the whole file) and the size of the file it belongs to.
    public static func parse(_ bytes: UnsafeRawBufferPointer, fileSize: Int) throws(CheckpointError) -> SafetensorsHeader {
        let file = bytes
        // 1. Room for the length prefix.
        guard fileSize >= 8, file.count >= 8 else {
            throw CheckpointError(.headerTooSmall, "file is \(fileSize) bytes, too small to hold the 8-byte header length")
        }
        // 2. Header length cap, before looking at the file length.
        let n64 = UInt64(littleEndian: file.loadUnaligned(as: UInt64.self))
        guard n64 <= UInt64(maximumHeaderLength) else {
            throw CheckpointError(.headerTooLarge, "header length \(n64) is over the limit of \(maximumHeaderLength) bytes")
        }
        let n = Int(n64)
        // 3. The header must fit in the file.
        guard 8 + n <= fileSize, 8 + n <= file.count else {
            throw CheckpointError(.invalidHeaderLength, "header length \(n) runs past the end of the \(fileSize)-byte file")
        }
        let headerBytes = UnsafeRawBufferPointer(rebasing: file[8..<(8 + n)])
        // 4. UTF-8.
        var utf8 = Unicode.UTF8.ForwardParser()
        var it = headerBytes.makeIterator()
        var position = 0
        decoding: while true {
            switch utf8.parseScalar(from: &it) {
            case .valid(let s): position += s.count
            case .emptyInput: break decoding
            case .error(let length):
                throw CheckpointError(.invalidHeaderUTF8, "header is not valid UTF-8 (bad byte at header offset \(position), length \(length))")
            }
        }
        // 5. JSON into metadata + tensor entries.
        let json: JSONValue
        do {
            json = try JSONValue.parse(headerBytes)
        } catch {
            if error.kind == .duplicateKey {
                throw CheckpointError(.duplicateTensorName, "header lists a name twice: \(error.message.replacing("invalid JSON: duplicate key ", with: ""))")
            }
            throw CheckpointError(.invalidHeaderDeserialization, "header is not valid JSON: \(error.message)")
        }
        guard let root = json.objectValue else {
            throw CheckpointError(.invalidHeaderDeserialization, "header JSON is \(json.typeName == "array" ? "an" : "a") \(json.typeName), not an object")
        }
        var metadata: Metadata? = nil
        var entries: [(name: String, dtype: DType, shape: [UInt64], begin: UInt64, end: UInt64)] = []
        entries.reserveCapacity(root.count)
        var unknownFields = Set<String>()
        for (name, value) in root.members {
            if name == "__metadata__" {
                if value.isNull { continue }
                guard let m = value.objectValue else {
                    throw CheckpointError(.invalidHeaderDeserialization, "__metadata__ is \(value.typeName == "array" ? "an" : "a") \(value.typeName), not a map of strings")
                }
                if m["data_offsets"] != nil && m["dtype"] != nil {
                    throw CheckpointError(.reservedTensorName, "a tensor is named __metadata__, which is reserved for the metadata map", tensor: "__metadata__")
                }
                var md = Metadata()
                for (k, v) in m.members {
                    guard let s = v.stringValue else {
                        throw CheckpointError(.invalidHeaderDeserialization, "__metadata__ value for '\(k)' is \(v.typeName == "integer" ? "an" : "a") \(v.typeName); metadata values must be strings")
                    }
                    md[k] = s
                }
                metadata = md
                continue
            }
            guard let t = value.objectValue else {
                throw CheckpointError(.invalidHeaderDeserialization, "entry is \(value.typeName == "array" ? "an" : "a") \(value.typeName), not an object with dtype, shape and data_offsets", tensor: name)
            }
            guard let dtypeValue = t["dtype"] else { throw missing("dtype", name) }
            guard let dtypeName = dtypeValue.stringValue else {
                throw CheckpointError(.invalidHeaderDeserialization, "dtype is \(dtypeValue.typeName == "integer" ? "an" : "a") \(dtypeValue.typeName), not a string", tensor: name)
            }
            guard let dtype = DType(rawValue: dtypeName) else {
                throw CheckpointError(.invalidHeaderDeserialization, "unknown dtype \"\(dtypeName)\"", tensor: name)
            }
            guard let shapeValue = t["shape"] else { throw missing("shape", name) }
            guard let shapeArray = shapeValue.arrayValue else {
                throw CheckpointError(.invalidHeaderDeserialization, "shape is \(shapeValue.typeName == "integer" ? "an" : "a") \(shapeValue.typeName), not an array", tensor: name)
            }
            var shape: [UInt64] = []
            shape.reserveCapacity(shapeArray.count)
            for d in shapeArray {
                guard let u = d.uint64Value else {
                    throw CheckpointError(.invalidHeaderDeserialization, "shape holds \(describe(d)); dimensions must be non-negative integers", tensor: name)
                }
                shape.append(u)
            }
            guard let offsetsValue = t["data_offsets"] else { throw missing("data_offsets", name) }
            guard let offsets = offsetsValue.arrayValue, offsets.count == 2 else {
                throw CheckpointError(.invalidHeaderDeserialization, "data_offsets must be an array of two integers [BEGIN, END]", tensor: name)
            }
            guard let begin = offsets[0].uint64Value, let end = offsets[1].uint64Value else {
                throw CheckpointError(.invalidHeaderDeserialization, "data_offsets holds \(describe(offsets[0].uint64Value == nil ? offsets[0] : offsets[1])); offsets must be non-negative integers", tensor: name)
            }
            for k in t.keys where k != "dtype" && k != "shape" && k != "data_offsets" { unknownFields.insert(k) }
            entries.append((name, dtype, shape, begin, end))
        }
        // 6. Sorted by offsets: contiguous from 0, sizes matching shape × dtype.
        entries.sort { a, b in
            if a.begin != b.begin { return a.begin < b.begin }
            if a.end != b.end { return a.end < b.end }
            return a.name.utf8.lexicographicallyPrecedes(b.name.utf8)
        }
        var expectedBegin: UInt64 = 0
        var tensors: [TensorInfo] = []
        tensors.reserveCapacity(entries.count)
        for e in entries {
            guard e.begin == expectedBegin, e.end >= e.begin else {
                let why = e.end < e.begin ? "data_offsets [\(e.begin), \(e.end)] end before they begin"
                    : e.begin < expectedBegin ? "data_offsets [\(e.begin), \(e.end)] overlap the previous tensor, which ends at \(expectedBegin)"
                    : "data_offsets [\(e.begin), \(e.end)] leave a gap: the previous tensor ends at \(expectedBegin)"
                throw CheckpointError(.invalidOffset, why, tensor: e.name)
            }
            expectedBegin = e.end
            var elements: UInt64 = 1
            for d in e.shape {
                let (p, o) = elements.multipliedReportingOverflow(by: d)
                guard !o else {
                    throw CheckpointError(.validationOverflow, "shape \(e.shape) overflows the element count", tensor: e.name)
                }
                elements = p
            }
            let (bits, o) = elements.multipliedReportingOverflow(by: UInt64(e.dtype.bitSize))
            guard !o else {
                throw CheckpointError(.validationOverflow, "shape \(e.shape) of \(e.dtype.rawValue) overflows the byte count", tensor: e.name)
            }
            guard bits % 8 == 0 else {
                throw CheckpointError(.misalignedSlice, "\(elements) elements of \(e.dtype.rawValue) are not a whole number of bytes", tensor: e.name)
            }
            guard e.end - e.begin == bits / 8 else {
                throw CheckpointError(.tensorInvalidInfo, "data_offsets [\(e.begin), \(e.end)] hold \(e.end - e.begin) bytes but shape \(e.shape) of \(e.dtype.rawValue) needs \(bits / 8)", tensor: e.name)
            }
            // Every dimension is now bounded by the byte count (or the shape has a 0), but a
            // 0-element tensor may still declare a dimension beyond Int.
            guard e.shape.allSatisfy({ $0 <= UInt64(Int.max) }) else {
                throw CheckpointError(.validationOverflow, "shape \(e.shape) has a dimension beyond the 63-bit range", tensor: e.name)
            }
            // Offsets beyond Int cannot be inside a file; step 7 rejects them.
            tensors.append(TensorInfo(name: e.name, dtype: e.dtype, shape: e.shape.map { Int($0) },
                                      dataOffsets: Int(clamping: e.begin)..<Int(clamping: e.end)))
        }
        // 7. The data must cover exactly the rest of the file.
        let (withHeader, o1) = expectedBegin.addingReportingOverflow(UInt64(8 + n))
        guard !o1, withHeader == UInt64(fileSize) else {
            let rest = fileSize - 8 - n
            throw CheckpointError(.metadataIncompleteBuffer,
                                  UInt64(rest) > expectedBegin
                                    ? "\(UInt64(rest) - expectedBegin) bytes after the last tensor's data are not covered by any tensor (the data section is \(rest) bytes, the tensors cover \(expectedBegin))"
                                    : "file is truncated: the tensors need \(expectedBegin) bytes of data but only \(rest) follow the header")
        }
        var warnings: [String] = []
        if n % 8 != 0 {
            warnings.append("header length \(n) is not a multiple of 8, so tensor data is not 8-byte aligned")
        }
        if !unknownFields.isEmpty {
            warnings.append("tensor entries have fields outside the format, ignored: \(unknownFields.sorted().joined(separator: ", "))")
        }
        return SafetensorsHeader(headerLength: n, metadata: metadata, tensors: tensors, warnings: warnings)
    }

    private static func missing(_ field: String, _ name: String) -> CheckpointError {
        CheckpointError(.invalidHeaderDeserialization, "entry has no \(field) field", tensor: name)
    }

    private static func describe(_ v: JSONValue) -> String {
        switch v {
        case .int(let i): "\(i)"
        case .double(let d): "\(d)"
        case .string(let s): "the string \"\(s)\""
        default: v.typeName == "array" || v.typeName == "object" ? "an \(v.typeName)" : "a \(v.typeName)"
        }
    }
}
