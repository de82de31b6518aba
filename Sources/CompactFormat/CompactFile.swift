import CheckpointCore
import Crypto
import ShearsConcurrency
import ShearsJSON

/// A compact file (formats/compact.md), memory-mapped; opening reads the header, footer and index
/// only. Tensors decode chunk by chunk (in parallel), each chunk checked against its CRC-32C.
public final class CompactFile: @unchecked Sendable {  // immutable after init; codecs are per call
    public let path: String
    public let mapping: MappedFile
    public let index: CompactIndex
    public let indexOffset: Int
    public let indexLength: Int
    public let version: (major: UInt16, minor: UInt16)
    private let byName: [UTF8Key: Int]

    public init(path: String) throws(CheckpointError) {
        self.path = path
        let m = try MappedFile(path: path)
        mapping = m
        do {
            (index, indexOffset, indexLength, version) = try m.withUnsafeBytes { (raw) throws(CheckpointError) in try CompactFile.parse(raw) }
        } catch {
            throw error.inFile(path)
        }
        var map: [UTF8Key: Int] = [:]
        for (i, t) in index.tensors.enumerated() { map[UTF8Key(t.name)] = i }
        byName = map
    }

    /// Whether `bytes` start with the compact magic.
    public static func looksLikeCompact(_ path: String) -> Bool {
        guard let m = try? MappedFile(path: path), m.count >= 8 else { return false }
        return m.bytes(in: 0..<8) == CompactLayout.magic
    }

    static func parse(_ raw: UnsafeRawBufferPointer) throws(CheckpointError) -> (CompactIndex, Int, Int, (major: UInt16, minor: UInt16)) {
        let size = raw.count
        guard size >= CompactLayout.headerSize + CompactLayout.footerSize else {
            throw CheckpointError(.invalidFormat, "file is \(size) bytes, too small for a compact file (at least 96)")
        }
        guard Array(raw[0..<8]) == CompactLayout.magic else {
            throw CheckpointError(.invalidFormat, "not a compact file: the header magic is not SHEARSCZ")
        }
        let footer = UnsafeRawBufferPointer(rebasing: raw[(size - 64)..<size])
        guard Array(footer[56..<64]) == CompactLayout.magic else {
            throw CheckpointError(.invalidFormat, "the footer magic is missing: the file is truncated or not a complete compact file")
        }
        let major = UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: 8, as: UInt16.self))
        let minor = UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: 10, as: UInt16.self))
        let flags = UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 12, as: UInt32.self))
        guard major == CompactLayout.majorVersion else {
            throw CheckpointError(.invalidFormat, "format version \(major).\(minor) is not readable by this version of Shears (reads 1.x)")
        }
        guard footer.loadUnaligned(fromByteOffset: 48, as: UInt16.self) == major.littleEndian,
              footer.loadUnaligned(fromByteOffset: 50, as: UInt16.self) == minor.littleEndian else {
            throw CheckpointError(.invalidFormat, "header and footer versions differ")
        }
        guard flags == 0 else { throw CheckpointError(.invalidFormat, "unknown header flags \(flags)") }
        let i64 = UInt64(littleEndian: footer.loadUnaligned(fromByteOffset: 0, as: UInt64.self))
        let l64 = UInt64(littleEndian: footer.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
        guard l64 <= UInt64(CompactLayout.maximumIndexLength) else {
            throw CheckpointError(.invalidFormat, "index length \(l64) is over the limit of \(CompactLayout.maximumIndexLength)")
        }
        let (end, o) = i64.addingReportingOverflow(l64)
        guard i64 >= UInt64(CompactLayout.headerSize), !o, end == UInt64(size - CompactLayout.footerSize) else {
            throw CheckpointError(.invalidFormat, "the footer places the index at [\(i64), \(i64 &+ l64)), which is not the span between the data and the footer (ending at \(size - 64))")
        }
        let indexBytes = UnsafeRawBufferPointer(rebasing: raw[Int(i64)..<Int(end)])
        guard Array(SHA256.hash(data: indexBytes)) == Array(footer[16..<48]) else {
            throw CheckpointError(.corruptData, "the index does not match its SHA-256 in the footer")
        }
        let index = try CompactIndex.parse(indexBytes, dataEnd: Int(i64))
        return (index, Int(i64), Int(l64), (major: major, minor: minor))
    }

    public var tensors: [CompactTensor] { index.tensors }
    public var metadata: Metadata { index.metadata }
    public var fileSize: Int { mapping.count }

    public func tensor(named name: String) throws(CheckpointError) -> CompactTensor {
        guard let i = byName[UTF8Key(name)] else {
            throw CheckpointError(.tensorNotFound, "no tensor named '\(name)'", path: path, tensor: name)
        }
        return index.tensors[i]
    }

    /// Where chunk payloads start, per chunk.
    private func chunkOffsets(_ t: CompactTensor) -> [Int] {
        var offsets: [Int] = []
        offsets.reserveCapacity(t.chunks.count)
        var o = t.dataOffset
        for (i, c) in t.chunks.enumerated() {
            offsets.append(o)
            o += t.encoding == .raw ? t.decodedRange(ofChunk: i).count : c.storedLength
        }
        return offsets
    }

    /// Decodes the tensor's bytes `range` (default: all) into `out`, whose size must be the range's.
    public func read(_ t: CompactTensor, range: Range<Int>? = nil, into out: UnsafeMutableRawBufferPointer,
                     threads: Int = min(2, availableCores())) throws(CheckpointError) {
        let r = range ?? 0..<t.byteLength
        guard r.lowerBound >= 0, r.upperBound <= t.byteLength, out.count == r.count else {
            throw CheckpointError(.invalidArgument, "byte range \(r) is outside the tensor's \(t.byteLength) bytes", path: path, tensor: t.name)
        }
        guard !r.isEmpty else { return }
        let first = r.lowerBound / t.chunkSize
        let last = (r.upperBound - 1) / t.chunkSize
        let offsets = chunkOffsets(t)
        let failures = SharedSlots<CheckpointError?>(repeating: nil, count: last - first + 1)
        let workers = max(1, min(threads, last - first + 1))
        nonisolated(unsafe) let destination = out
        let file = self
        let codecs = UnsafeSendable((0..<workers).map { _ in ChunkCodec(level: 1) })
        parallelFor(workers: workers) { w in
            var scratch: [UInt8] = []
            var i = first + w
            while i <= last {
                let decoded = t.decodedRange(ofChunk: i)
                let stored = t.encoding == .raw ? decoded.count : t.chunks[i].storedLength
                let want = max(decoded.lowerBound, r.lowerBound)..<min(decoded.upperBound, r.upperBound)
                let whole = want == decoded
                if !whole && scratch.count < decoded.count { scratch = [UInt8](repeating: 0, count: decoded.count) }
                let result: Result<Void, CheckpointError> = file.mapping.withUnsafeBytes(in: offsets[i]..<(offsets[i] + stored)) { payload in
                    Result { () throws(CheckpointError) in
                        if whole {
                            let dst = UnsafeMutableRawBufferPointer(rebasing: destination[(decoded.lowerBound - r.lowerBound)..<(decoded.upperBound - r.lowerBound)])
                            try codecs.value[w].decode(payload, chunk: t.chunks[i], index: i, of: t, into: dst)
                        } else {
                            let inner: Result<Void, CheckpointError> = scratch.withUnsafeMutableBytes { s in
                                Result { () throws(CheckpointError) in
                                    let dst = UnsafeMutableRawBufferPointer(rebasing: s[0..<decoded.count])
                                    try codecs.value[w].decode(payload, chunk: t.chunks[i], index: i, of: t, into: dst)
                                    let part = UnsafeRawBufferPointer(rebasing: s[(want.lowerBound - decoded.lowerBound)..<(want.upperBound - decoded.lowerBound)])
                                    UnsafeMutableRawBufferPointer(rebasing: destination[(want.lowerBound - r.lowerBound)..<(want.upperBound - r.lowerBound)]).copyMemory(from: part)
                                }
                            }
                            try inner.get()
                        }
                    }
                }
                if case .failure(let e) = result { failures[i - first] = e; return }
                i += workers
            }
        }
        if let e = failures.values.compactMap({ $0 }).first { throw e.inFile(path) }
    }

    /// The tensor's decoded bytes (or a byte range of them).
    public func bytes(named name: String, range: Range<Int>? = nil) throws(CheckpointError) -> [UInt8] {
        let t = try tensor(named: name)
        let n = (range ?? 0..<t.byteLength).count
        var out = [UInt8](repeating: 0, count: n)
        let r: Result<Void, CheckpointError> = out.withUnsafeMutableBytes { o in Result { () throws(CheckpointError) in try read(t, range: range, into: o) } }
        try r.get()
        return out
    }

    /// The tensor's elements as `Float`.
    public func floats(named name: String) throws(CheckpointError) -> [Float] {
        let t = try tensor(named: name)
        let raw = try bytes(named: name)
        var out = [Float](repeating: 0, count: t.elementCount)
        let r: Result<Void, CheckpointError> = raw.withUnsafeBytes { b in out.withUnsafeMutableBufferPointer { o in
            Result { () throws(CheckpointError) in try DTypeConversion.decode(b, as: t.dtype, into: o) }
        } }
        do { try r.get() } catch { throw CheckpointError(error.code, error.message, path: path, tensor: name) }
        return out
    }

    /// Decodes every tensor and checks its SHA-256 and the padding between payloads.
    /// - Returns: the problems found (empty when the file is intact).
    public func verify(threads: Int = min(2, availableCores())) -> [CheckpointError] {
        var problems: [CheckpointError] = []
        var previousEnd = CompactLayout.headerSize
        for t in index.tensors {
            let padding = mapping.bytes(in: previousEnd..<t.dataOffset)
            if padding.contains(where: { $0 != 0 }) {
                problems.append(CheckpointError(.corruptData, "padding before the tensor's data is not zero", path: path, tensor: t.name))
            }
            previousEnd = t.dataOffset + t.storedLength
            var buffer = [UInt8](repeating: 0, count: t.byteLength)
            let r: Result<Void, CheckpointError> = buffer.withUnsafeMutableBytes { o in Result { () throws(CheckpointError) in try read(t, into: o, threads: threads) } }
            if case .failure(let e) = r { problems.append(e); continue }
            if Array(SHA256.hash(data: buffer)) != t.sha256 {
                problems.append(CheckpointError(.corruptData, "decoded bytes do not match the tensor's SHA-256", path: path, tensor: t.name))
            }
        }
        return problems
    }
}
