import CheckpointCore

/// The parsed and validated non-data part of a GGUF file. ``parse(_:)`` holds every structural
/// check; ``GGUFFile`` maps the file and calls it.
public struct GGUFHeader: Sendable {
    public var version: UInt32
    public var metadata: [(key: String, value: GGUFValue)]
    public var tensors: [GGUFTensorInfo]
    public var alignment: Int
    public var dataStart: Int
    public var warnings: [String]

    /// Validates `file` (the whole file's bytes) as GGUF.
    /// - Throws: ``CheckpointError`` with the code of the first rule the file breaks.
    public static func parse(_ file: UnsafeRawBufferPointer) throws(CheckpointError) -> GGUFHeader {
        var r = ByteReader(file)
        // 1. Magic, then version (a byte-swapped version means a big-endian file).
        guard file.count >= 4 else {
            throw CheckpointError(.ggufInvalidMagic, "file is \(file.count) bytes, too small to hold the GGUF magic")
        }
        let magic = try r.u32("magic")
        guard magic == GGUFFile.magic else {
            let shown = (0..<4).map { file[$0] }.map { $0 >= 0x20 && $0 < 0x7F ? String(UnicodeScalar($0)) : "\\x" + String($0, radix: 16) }.joined()
            throw CheckpointError(.ggufInvalidMagic, "not a GGUF file: magic is \"\(shown)\", expected \"GGUF\"")
        }
        let version = try r.u32("version")
        if version != 0 && version & 0xFFFF == 0 {
            throw CheckpointError(.ggufUnsupportedVersion, "version field reads \(version): this is a big-endian GGUF file, which is not supported (convert it with gguf_convert_endian.py)")
        }
        guard version == 2 || version == 3 else {
            let why = version == 1 ? "GGUF v1 is no longer supported" : version == 0 ? "version 0 is invalid" : "version \(version) is newer than the supported versions 2 and 3"
            throw CheckpointError(.ggufUnsupportedVersion, why)
        }
        // 2. Counts, bounded by what the remaining bytes could hold.
        let tensorCount64 = try r.u64("tensor count")
        let kvCount64 = try r.u64("metadata key/value count")
        guard kvCount64 <= UInt64(r.remaining / 13) else {  // key length (8) + type (4) + 1-byte value
            throw CheckpointError(.ggufTruncated, "metadata count \(kvCount64) cannot fit in the \(r.remaining) bytes that follow the header")
        }
        guard tensorCount64 <= UInt64(r.remaining / 24) else {  // name length, n_dims, type, offset
            throw CheckpointError(.ggufTruncated, "tensor count \(tensorCount64) cannot fit in the \(r.remaining) bytes that follow the header")
        }
        // 3. Metadata.
        var metadata: [(key: String, value: GGUFValue)] = []
        metadata.reserveCapacity(Int(kvCount64))
        var seenKeys = Set<String>()
        for i in 0..<Int(kvCount64) {
            let keyBytes = try r.stringBytes("key of metadata entry \(i)")
            guard let key = String(validating: keyBytes, as: UTF8.self) else {
                throw CheckpointError(.ggufInvalidString, "key of metadata entry \(i) is not valid UTF-8")
            }
            guard !key.isEmpty else { throw CheckpointError(.ggufInvalidString, "key of metadata entry \(i) is empty") }
            guard seenKeys.insert(key).inserted else {
                throw CheckpointError(.ggufDuplicateKey, "metadata key '\(key)' appears twice")
            }
            let typeRaw = try r.u32("type of '\(key)'")
            guard let type = GGUFValueType(rawValue: typeRaw) else {
                throw CheckpointError(.ggufInvalidValueType, "metadata '\(key)' has value type \(typeRaw), which is not a GGUF type (0-12)")
            }
            let value = try r.value(type, key: key, depth: 0)
            metadata.append((key, value))
        }
        // 4. Alignment.
        var alignment = GGUFFile.defaultAlignment
        if let a = metadata.first(where: { $0.key == "general.alignment" })?.value {
            guard case .uint32(let v) = a else {
                throw CheckpointError(.ggufInvalidAlignment, "general.alignment is \(a.type.name), not uint32")
            }
            guard v > 0, v & (v - 1) == 0, v <= 1 << 20 else {
                throw CheckpointError(.ggufInvalidAlignment, "general.alignment is \(v); it must be a power of two no larger than 1 MiB")
            }
            alignment = Int(v)
        }
        // 5. Tensor infos.
        var tensors: [GGUFTensorInfo] = []
        tensors.reserveCapacity(Int(tensorCount64))
        var seenNames = Set<String>()
        var expectedOffset = 0
        for i in 0..<Int(tensorCount64) {
            let nameBytes = try r.stringBytes("name of tensor \(i)")
            guard let name = String(validating: nameBytes, as: UTF8.self) else {
                throw CheckpointError(.ggufInvalidString, "name of tensor \(i) is not valid UTF-8")
            }
            guard nameBytes.count < GGUFFile.maximumNameLength else {
                throw CheckpointError(.ggufInvalidTensorInfo, "name is \(nameBytes.count) bytes; names must be shorter than \(GGUFFile.maximumNameLength)", tensor: name)
            }
            guard seenNames.insert(name).inserted else {
                throw CheckpointError(.duplicateTensorName, "two tensors have this name", tensor: name)
            }
            let nDims = try r.u32("dimension count", tensor: name)
            guard nDims <= UInt32(GGUFFile.maximumDimensions) else {
                throw CheckpointError(.ggufInvalidTensorInfo, "\(nDims) dimensions; at most \(GGUFFile.maximumDimensions) are allowed", tensor: name)
            }
            var dims: [Int] = []
            var elements: Int64 = 1
            for d in 0..<Int(nDims) {
                let ne = try r.u64("dimension \(d)", tensor: name)
                guard ne <= UInt64(Int64.max) else {
                    throw CheckpointError(.ggufInvalidTensorInfo, "dimension \(d) is \(Int64(bitPattern: ne)); dimensions must be non-negative", tensor: name)
                }
                let (p, o) = elements.multipliedReportingOverflow(by: Int64(ne))
                guard !o else {
                    throw CheckpointError(.validationOverflow, "dimensions \(dims + [Int(ne)]) overflow the element count", tensor: name)
                }
                elements = p
                dims.append(Int(ne))
            }
            let typeRaw = try r.u32("type", tensor: name)
            let type = GGMLType(rawValue: typeRaw)
            guard type.isKnown else {
                throw CheckpointError(.ggufUnknownType, "ggml type \(typeRaw) is not a known tensor type", tensor: name)
            }
            let rowLength = dims.first ?? 1
            guard rowLength % type.blockSize == 0 else {
                throw CheckpointError(.ggufInvalidBlockShape, "row length ne[0] = \(rowLength) is not a multiple of \(type.name)'s block size \(type.blockSize)", tensor: name)
            }
            guard let bytes = type.byteCount(elements: Int(elements)) else {
                throw CheckpointError(.validationOverflow, "\(elements) elements of \(type.name) overflow the byte count", tensor: name)
            }
            let offset64 = try r.u64("offset", tensor: name)
            guard offset64 == UInt64(expectedOffset) else {
                let why = offset64 % UInt64(alignment) != 0
                    ? "data offset \(offset64) is not a multiple of the alignment \(alignment)"
                    : "data offset \(offset64) is not where the previous tensor's padded data ends (\(expectedOffset)); tensors must be laid out in order without gaps"
                throw CheckpointError(.invalidOffset, why, tensor: name)
            }
            tensors.append(GGUFTensorInfo(name: name, dimensions: dims, type: type, offset: expectedOffset, byteCount: bytes))
            let (end, o1) = expectedOffset.addingReportingOverflow(bytes)
            let padded = end.addingReportingOverflow(alignment - 1)
            guard !o1, !padded.overflow else {
                throw CheckpointError(.validationOverflow, "data offset \(expectedOffset) + \(bytes) bytes overflows", tensor: name)
            }
            expectedOffset = padded.partialValue / alignment * alignment
        }
        // 6. Data section: aligned start, every tensor inside the file.
        let (dataStart, o2) = r.position.addingReportingOverflow((alignment - r.position % alignment) % alignment)
        guard !o2 else { throw CheckpointError(.validationOverflow, "data section start overflows") }
        var warnings: [String] = []
        if let last = tensors.last {
            let end = dataStart + last.offset + last.byteCount  // offsets are bounded by the checks above
            guard end <= file.count else {
                throw CheckpointError(.ggufTruncated, "file is truncated: tensor data ends at byte \(end) but the file has \(file.count) bytes", tensor: last.name)
            }
            if file.count - end >= alignment {
                warnings.append("\(file.count - end) bytes after the last tensor's data are not covered by any tensor")
            }
        } else if dataStart > file.count && file.count != r.position {
            throw CheckpointError(.ggufTruncated, "file ends inside the padding before the data section")
        }
        return GGUFHeader(version: version, metadata: metadata, tensors: tensors, alignment: alignment,
                          dataStart: tensors.isEmpty ? min(dataStart, file.count) : dataStart, warnings: warnings)
    }
}

/// A bounds-checked little-endian cursor over the file's bytes.
struct ByteReader {
    let bytes: UnsafeRawBufferPointer
    var position = 0
    init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    var remaining: Int { bytes.count - position }

    private func short(_ what: String, _ need: Int, tensor: String?) -> CheckpointError {
        CheckpointError(.ggufTruncated, "file ends inside \(what) at byte \(position): \(need) bytes needed, \(remaining) left", tensor: tensor)
    }

    mutating func load<T: FixedWidthInteger>(_ type: T.Type, _ what: String, tensor: String? = nil) throws(CheckpointError) -> T {
        let n = MemoryLayout<T>.size
        guard remaining >= n else { throw short(what, n, tensor: tensor) }
        let v = T(littleEndian: bytes.loadUnaligned(fromByteOffset: position, as: T.self))
        position += n
        return v
    }

    mutating func u32(_ what: String, tensor: String? = nil) throws(CheckpointError) -> UInt32 { try load(UInt32.self, what, tensor: tensor) }
    mutating func u64(_ what: String, tensor: String? = nil) throws(CheckpointError) -> UInt64 { try load(UInt64.self, what, tensor: tensor) }

    /// A GGUF string's bytes: u64 length (bounded by the remaining bytes), then the bytes.
    mutating func stringBytes(_ what: String) throws(CheckpointError) -> [UInt8] {
        let n = try u64("length of \(what)")
        guard n <= UInt64(remaining) else {
            throw CheckpointError(.ggufInvalidString, "\(what): string length \(n) runs past the end of the file (\(remaining) bytes left)")
        }
        let out = Array(UnsafeRawBufferPointer(rebasing: bytes[position..<(position + Int(n))]))
        position += Int(n)
        return out
    }

    mutating func value(_ type: GGUFValueType, key: String, depth: Int) throws(CheckpointError) -> GGUFValue {
        let what = "value of '\(key)'"
        switch type {
        case .uint8: return .uint8(try load(UInt8.self, what))
        case .int8: return .int8(try load(Int8.self, what))
        case .uint16: return .uint16(try load(UInt16.self, what))
        case .int16: return .int16(try load(Int16.self, what))
        case .uint32: return .uint32(try load(UInt32.self, what))
        case .int32: return .int32(try load(Int32.self, what))
        case .uint64: return .uint64(try load(UInt64.self, what))
        case .int64: return .int64(try load(Int64.self, what))
        case .float32: return .float32(Float(bitPattern: try load(UInt32.self, what)))
        case .float64: return .float64(Double(bitPattern: try load(UInt64.self, what)))
        case .bool:
            let b = try load(UInt8.self, what)
            guard b <= 1 else {
                throw CheckpointError(.ggufInvalidValueType, "metadata '\(key)' is a bool with byte value \(b); only 0 and 1 are valid")
            }
            return .bool(b == 1)
        case .string:
            return .string(GGUFString(bytes: try stringBytes(what)))
        case .array:
            guard depth < GGUFFile.maximumArrayDepth else {
                throw CheckpointError(.ggufInvalidValueType, "metadata '\(key)' nests arrays deeper than \(GGUFFile.maximumArrayDepth) levels")
            }
            let elementRaw = try u32("array element type of '\(key)'")
            guard let elementType = GGUFValueType(rawValue: elementRaw) else {
                throw CheckpointError(.ggufInvalidValueType, "metadata '\(key)' is an array of type \(elementRaw), which is not a GGUF type (0-12)")
            }
            let count = try u64("array length of '\(key)'")
            guard count <= UInt64(remaining / elementType.minimumSize) else {
                throw CheckpointError(.ggufTruncated, "metadata '\(key)': array of \(count) \(elementType.name) values cannot fit in the \(remaining) bytes left")
            }
            var items: [GGUFValue] = []
            items.reserveCapacity(Int(count))
            for _ in 0..<Int(count) { items.append(try value(elementType, key: key, depth: depth + 1)) }
            return .array(elementType, items)
        }
    }
}
