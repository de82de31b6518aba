import CheckpointCore
import CKernels
#if canImport(Glibc)
import Glibc
#else
#error("Shears is built and tested on Linux only")
#endif

/// Encodes and decodes one chunk (formats/compact.md §5, §6). One codec per thread: it owns the
/// zstd contexts and the scratch buffers.
final class ChunkCodec {
    private let compressor: Zstd.Compressor
    private let planeCompressor: Zstd.Compressor
    private let decompressor = Zstd.Decompressor()
    private var planes: [UInt8] = []
    private var scratch: [UInt8] = []
    /// A plane or chunk is stored compressed only when that saves at least this fraction.
    static let minimumSaving = 0.05

    init(level: Int32) {
        compressor = Zstd.Compressor(level: level)
        planeCompressor = Zstd.Compressor(level: level, entropyOnly: true)
    }

    /// Order-0 entropy of a byte stream as a fraction of 8 bits, estimated on every 8th byte: a
    /// cheap bound on what zstd's Huffman stage can reach, used to skip compressing planes that
    /// cannot shrink enough (the sign+mantissa planes of weights, which are close to random).
    static func entropyRatio(_ bytes: UnsafeRawBufferPointer) -> Double {
        let stride = bytes.count >= 4096 ? 8 : 1
        let samples = (bytes.count + stride - 1) / stride
        guard samples > 0, let base = bytes.baseAddress else { return 1 }
        var counts = [Int32](repeating: 0, count: 256)
        counts.withUnsafeMutableBufferPointer { c in
            let p = base.assumingMemoryBound(to: UInt8.self)
            var i = 0
            while i < bytes.count { c[Int(p[i])] &+= 1; i &+= stride }
        }
        let n = Double(samples)
        var h = 0.0
        for c in counts where c > 0 {
            let q = Double(c) / n
            h -= q * log2(q)
        }
        return h / 8
    }

    static func crc(_ bytes: UnsafeRawBufferPointer) -> UInt32 {
        bytes.isEmpty ? shears_crc32c(0, nil, 0) : shears_crc32c(0, bytes.baseAddress, bytes.count)
    }

    /// Encodes `chunk`; returns the payload and the chunk record.
    func encode(_ chunk: UnsafeRawBufferPointer, encoding: CompactEncoding, width: Int) -> (payload: [UInt8], record: CompactChunk) {
        let crc = ChunkCodec.crc(chunk)
        switch encoding {
        case .raw:
            return (Array(chunk), CompactChunk(crc: crc, parts: []))
        case .zstd:
            let bound = Zstd.compressBound(chunk.count)
            if scratch.count < bound { scratch = [UInt8](repeating: 0, count: bound) }
            let n = scratch.withUnsafeMutableBytes { compressor.compress(chunk, into: $0) }!
            return (Array(scratch[0..<n]), CompactChunk(crc: crc, parts: [CompactPart(compressed: true, storedLength: n)]))
        case .bytePlanes:
            let count = chunk.count / width
            if planes.count < chunk.count { planes = [UInt8](repeating: 0, count: chunk.count) }
            let bound = Zstd.compressBound(count)
            if scratch.count < bound { scratch = [UInt8](repeating: 0, count: bound) }
            planes.withUnsafeMutableBytes { BytePlanes.split(chunk.baseAddress!, $0.baseAddress!, count: count, width: width) }
            var payload: [UInt8] = []
            payload.reserveCapacity(chunk.count)
            var parts: [CompactPart] = []
            for k in 0..<width {
                let plane = planes[(k * count)..<((k + 1) * count)]
                let hopeless = plane.withUnsafeBytes { ChunkCodec.entropyRatio($0) } > 1 - ChunkCodec.minimumSaving
                let n = hopeless ? count : plane.withUnsafeBytes { p in scratch.withUnsafeMutableBytes { planeCompressor.compress(p, into: $0) } }!
                if !hopeless && Double(n) <= Double(count) * (1 - ChunkCodec.minimumSaving) {
                    payload.append(contentsOf: scratch[0..<n])
                    parts.append(CompactPart(compressed: true, storedLength: n))
                } else {
                    payload.append(contentsOf: plane)
                    parts.append(CompactPart(compressed: false, storedLength: count))
                }
            }
            return (payload, CompactChunk(crc: crc, parts: parts))
        }
    }

    /// Decodes chunk `index` of `tensor` from `payload` into `out` (exactly the chunk's decoded size)
    /// and checks its CRC.
    func decode(_ payload: UnsafeRawBufferPointer, chunk: CompactChunk, index: Int, of tensor: CompactTensor,
                into out: UnsafeMutableRawBufferPointer) throws(CheckpointError) {
        func corrupt(_ why: String) -> CheckpointError {
            CheckpointError(.corruptData, "chunk \(index): \(why)", tensor: tensor.name)
        }
        switch tensor.encoding {
        case .raw:
            if let b = payload.baseAddress, out.count > 0 { out.baseAddress!.copyMemory(from: b, byteCount: out.count) }
        case .zstd:
            if let why = decompressor.decompress(payload, into: out) { throw corrupt(why) }
        case .bytePlanes:
            let width = tensor.elementWidth
            let count = out.count / width
            if planes.count < out.count { planes = [UInt8](repeating: 0, count: out.count) }
            var offset = 0
            let failure: String? = planes.withUnsafeMutableBytes { planeBuffer in
                var sources: [UnsafeRawPointer] = []
                for (k, part) in chunk.parts.enumerated() {
                    let src = UnsafeRawBufferPointer(rebasing: payload[offset..<(offset + part.storedLength)])
                    let dst = UnsafeMutableRawBufferPointer(rebasing: planeBuffer[(k * count)..<((k + 1) * count)])
                    offset += part.storedLength
                    if part.compressed {
                        if let why = decompressor.decompress(src, into: dst) { return "plane \(k): \(why)" }
                        sources.append(UnsafeRawPointer(dst.baseAddress!))
                    } else {
                        sources.append(src.baseAddress ?? UnsafeRawPointer(dst.baseAddress!))
                    }
                }
                if count > 0 { BytePlanes.join(sources, out.baseAddress!, count: count, width: width) }
                return nil
            }
            if let failure { throw corrupt(failure) }
        }
        let crc = ChunkCodec.crc(UnsafeRawBufferPointer(out))
        guard crc == chunk.crc else {
            throw corrupt("checksum mismatch (CRC-32C \(hex(crc)), index says \(hex(chunk.crc)))")
        }
    }
}

func hex(_ v: UInt32) -> String {
    let s = String(v, radix: 16)
    return String(repeating: "0", count: 8 - s.count) + s
}
