import CheckpointCore
import ShearsJSON

/// How a tensor's chunks are stored (formats/compact.md §5).
public enum CompactEncoding: UInt8, Sendable {
    case raw = 0
    case bytePlanes = 1
    case zstd = 2

    public var name: String {
        switch self {
        case .raw: "raw"
        case .bytePlanes: "planes"
        case .zstd: "zstd"
        }
    }
}

/// One stored piece of a chunk: a whole chunk (zstd) or one byte plane.
public struct CompactPart: Sendable, Equatable {
    /// 0 raw, 1 zstd.
    public var compressed: Bool
    public var storedLength: Int
}

/// A chunk: its checksum and, for compressed encodings, its stored parts.
public struct CompactChunk: Sendable, Equatable {
    public var crc: UInt32
    /// Empty for raw tensors; one part for zstd; W parts (planes) for byte planes.
    public var parts: [CompactPart]
    public var storedLength: Int { parts.reduce(0) { $0 + $1.storedLength } }
}

/// A tensor record of the index (§4).
public struct CompactTensor: Sendable {
    public var name: String
    public var dtype: DType
    public var shape: [Int]
    public var byteLength: Int
    public var encoding: CompactEncoding
    public var elementWidth: Int
    public var chunkSize: Int
    public var sha256: [UInt8]
    public var dataOffset: Int
    public var storedLength: Int
    public var chunks: [CompactChunk]

    /// Decoded byte range of chunk `i`.
    public func decodedRange(ofChunk i: Int) -> Range<Int> {
        (i * chunkSize)..<min((i + 1) * chunkSize, byteLength)
    }

    public var info: TensorInfo { TensorInfo(name: name, dtype: dtype, shape: shape, dataOffsets: 0..<byteLength) }
    public var elementCount: Int { shape.reduce(1, *) }
}

/// The index: metadata, optional source safetensors header, tensor records.
public struct CompactIndex: Sendable {
    public static let magic: [UInt8] = Array("CZIX".utf8)
    public static let maximumTensors = 10_000_000
    public static let maximumMetadata = 1_000_000
    public static let maximumRank = 64
    public static let maximumChunkSize = 64 << 20

    public var metadata: Metadata
    public var sourceHeader: [UInt8]
    public var tensors: [CompactTensor]

    /// Serializes the index (§4).
    public func serialized() -> [UInt8] {
        var w = ByteWriter()
        w.raw(CompactIndex.magic)
        w.u32(UInt32(tensors.count))
        w.u32(UInt32(metadata.count))
        for (k, v) in metadata { w.string(k); w.string(v) }
        w.u32(UInt32(sourceHeader.count))
        w.raw(sourceHeader)
        for t in tensors {
            w.string(t.name)
            w.string(t.dtype.rawValue)
            w.u32(UInt32(t.shape.count))
            for d in t.shape { w.u64(UInt64(d)) }
            w.u64(UInt64(t.byteLength))
            w.u8(t.encoding.rawValue)
            w.u8(UInt8(t.elementWidth))
            w.u16(0)
            w.u32(UInt32(t.chunkSize))
            w.raw(t.sha256)
            w.u64(UInt64(t.dataOffset))
            w.u64(UInt64(t.storedLength))
            w.u32(UInt32(t.chunks.count))
            for c in t.chunks {
                w.u32(c.crc)
                switch t.encoding {
                case .raw: break
                case .zstd: w.u32(UInt32(c.parts[0].storedLength))
                case .bytePlanes:
                    for p in c.parts { w.u8(p.compressed ? 1 : 0); w.u32(UInt32(p.storedLength)) }
                }
            }
        }
        return w.bytes
    }

    /// Parses and checks an index (§4). `dataEnd` is I, the index offset: each payload starts where
    /// the previous one ends rounded up to a multiple of 64 (the first at 64), and I is where the
    /// last one ends (32 when there are no tensors).
    public static func parse(_ bytes: UnsafeRawBufferPointer, dataEnd: Int) throws(CheckpointError) -> CompactIndex {
        var r = ByteReader(bytes, code: .invalidIndex)
        guard try r.raw(4, "index magic") == magic else { throw CheckpointError(.invalidIndex, "index does not start with CZIX") }
        let tensorCount = try r.count("tensor count", limit: maximumTensors)
        let metadataCount = try r.count("metadata count", limit: maximumMetadata)
        var entries: [(key: String, value: String)] = []
        var keys = Set<UTF8Key>()
        for _ in 0..<metadataCount {
            let k = try r.string("metadata key")
            let v = try r.string("metadata value")
            guard keys.insert(UTF8Key(k)).inserted else { throw CheckpointError(.invalidIndex, "metadata key '\(k)' appears twice") }
            entries.append((k, v))
        }
        let metadata = Metadata(entries)
        let headerLength = try r.count("source header length", limit: SafetensorsHeader.maximumHeaderLength)
        let sourceHeader = try r.raw(headerLength, "source header")
        var tensors: [CompactTensor] = []
        tensors.reserveCapacity(min(tensorCount, r.remaining / 64))
        var names = Set<UTF8Key>()
        var expectedOffset = 64  // the first multiple of 64 after the 32-byte header
        for _ in 0..<tensorCount {
            let name = try r.string("tensor name")
            func fail(_ m: String) -> CheckpointError { CheckpointError(.invalidIndex, m, tensor: name) }
            guard name != "__metadata__" else { throw CheckpointError(.reservedTensorName, "the name __metadata__ is reserved", tensor: name) }
            guard names.insert(UTF8Key(name)).inserted else { throw CheckpointError(.duplicateTensorName, "two tensors have this name", tensor: name) }
            let dtypeName = try r.string("dtype")
            guard let dtype = DType(rawValue: dtypeName) else { throw fail("unknown dtype \"\(dtypeName)\"") }
            let rank = try r.count("rank", limit: maximumRank)
            var shape: [Int] = []
            for _ in 0..<rank {
                let d = try r.u64("dimension")
                guard d <= UInt64(Int.max) else { throw CheckpointError(.validationOverflow, "dimension \(d) is too large", tensor: name) }
                shape.append(Int(d))
            }
            let byteLength64 = try r.u64("byte length")
            let expected = try TensorSpec(name: name, dtype: dtype, shape: shape).byteCount()
            guard byteLength64 == UInt64(expected) else {
                throw CheckpointError(.tensorInvalidInfo, "byte length \(byteLength64) does not match shape \(shape) of \(dtype.rawValue) (\(expected) bytes)", tensor: name)
            }
            let byteLength = expected
            guard let encoding = CompactEncoding(rawValue: try r.u8("encoding")) else { throw fail("unknown encoding") }
            let width = Int(try r.u8("element width"))
            guard try r.u16("reserved") == 0 else { throw fail("reserved field is not zero") }
            if encoding == .bytePlanes {
                guard [.f16, .bf16, .f32, .f64].contains(dtype), width == dtype.byteSize else {
                    throw fail("byte planes need F16, BF16, F32 or F64 with the dtype's width, not \(dtype.rawValue) with width \(width)")
                }
            } else {
                guard width == 0 else { throw fail("element width \(width) given for encoding \(encoding.name)") }
            }
            let chunkSize = Int(try r.u32("chunk size"))
            if byteLength == 0 {
                guard chunkSize == 0 else { throw fail("chunk size \(chunkSize) for an empty tensor") }
            } else {
                guard chunkSize > 0, chunkSize <= maximumChunkSize, chunkSize % 64 == 0 else {
                    throw fail("chunk size \(chunkSize) is not a positive multiple of 64 up to \(maximumChunkSize)")
                }
            }
            let sha = try r.raw(32, "SHA-256")
            let dataOffset64 = try r.u64("data offset")
            let stored64 = try r.u64("stored length")
            let chunkCount = Int(try r.u32("chunk count"))
            let expectedChunks = chunkSize == 0 ? 0 : (byteLength + chunkSize - 1) / chunkSize
            guard chunkCount == expectedChunks else { throw fail("\(chunkCount) chunks listed, \(expectedChunks) expected for \(byteLength) bytes in chunks of \(chunkSize)") }
            var chunks: [CompactChunk] = []
            chunks.reserveCapacity(min(chunkCount, r.remaining / 4))
            var sum = 0
            for i in 0..<chunkCount {
                let decoded = min(chunkSize, byteLength - i * chunkSize)
                let crc = try r.u32("chunk checksum")
                var parts: [CompactPart] = []
                func part(_ compressed: Bool, _ length: UInt32, decoded: Int) throws(CheckpointError) -> CompactPart {
                    let limit = Zstd.compressBound(decoded)
                    guard length > 0 || decoded == 0, Int(length) <= (compressed ? limit : decoded), compressed || Int(length) == decoded else {
                        throw CheckpointError(.invalidIndex, "chunk \(i): stored length \(length) is impossible for \(decoded) decoded bytes", tensor: name)
                    }
                    return CompactPart(compressed: compressed, storedLength: Int(length))
                }
                switch encoding {
                case .raw:
                    sum += decoded
                case .zstd:
                    parts.append(try part(true, try r.u32("chunk length"), decoded: decoded))
                case .bytePlanes:
                    guard decoded % width == 0 else { throw fail("chunk \(i) is not a whole number of elements") }
                    for _ in 0..<width {
                        let mode = try r.u8("plane mode")
                        guard mode <= 1 else { throw fail("chunk \(i): unknown plane mode \(mode)") }
                        parts.append(try part(mode == 1, try r.u32("plane length"), decoded: decoded / width))
                    }
                }
                sum += parts.reduce(0) { $0 + $1.storedLength }
                chunks.append(CompactChunk(crc: crc, parts: parts))
            }
            guard stored64 == UInt64(sum) else { throw fail("stored length \(stored64) is not the sum of its chunks (\(sum))") }
            guard dataOffset64 == UInt64(expectedOffset) else {
                throw fail("data offset \(dataOffset64) is not \(expectedOffset), where the previous tensor's data ends, rounded up to a multiple of 64")
            }
            let (end, o) = dataOffset64.addingReportingOverflow(UInt64(sum))
            guard !o, end <= UInt64(dataEnd) else { throw fail("data [\(dataOffset64), \(dataOffset64 &+ UInt64(sum))) runs past the data region, which ends at \(dataEnd)") }
            let dataOffset = Int(dataOffset64)
            expectedOffset = (dataOffset + sum + 63) / 64 * 64
            tensors.append(CompactTensor(name: name, dtype: dtype, shape: shape, byteLength: byteLength, encoding: encoding, elementWidth: width,
                                         chunkSize: chunkSize, sha256: sha, dataOffset: dataOffset, storedLength: sum, chunks: chunks))
        }
        guard r.isAtEnd else { throw CheckpointError(.invalidIndex, "\(r.remaining) bytes follow the last tensor record") }
        let lastEnd = tensors.last.map { $0.dataOffset + $0.storedLength } ?? 32
        guard dataEnd == lastEnd else {
            throw CheckpointError(.invalidIndex, "the index starts at \(dataEnd), but the last tensor's data ends at \(lastEnd): \(dataEnd - lastEnd) bytes are not accounted for")
        }
        return CompactIndex(metadata: metadata, sourceHeader: sourceHeader, tensors: tensors)
    }
}
