import CheckpointCore
import Crypto
import Dispatch
import ShearsConcurrency
import ShearsJSON

/// Streams a compact file (formats/compact.md): tensors are encoded and written as they are
/// appended, chunk batches in parallel, with memory bounded by one batch of chunks; the index and
/// footer are written by ``finish()``, which renames the temporary file into place.
public final class CompactWriter {
    public struct Options: Sendable {
        /// zstd level for compressed chunks and planes.
        public var level: Int32 = 3
        /// Decoded bytes per chunk (a positive multiple of 64).
        public var chunkSize = CompactLayout.defaultChunkSize
        /// Encoding threads.
        public var threads = min(2, availableCores())
        /// fsync before the final rename (see `AtomicFile.durable`).
        public var durable = true
        public init(level: Int32 = 3, chunkSize: Int = CompactLayout.defaultChunkSize, threads: Int = min(2, availableCores()), durable: Bool = true) {
            self.durable = durable
            self.level = level
            self.chunkSize = chunkSize
            self.threads = max(1, threads)
        }
    }

    public let path: String
    public let options: Options
    private let file: AtomicFile
    private var metadata: Metadata
    private var sourceHeader: [UInt8]
    private var records: [CompactTensor] = []
    private var names = Set<UTF8Key>()
    private var position: Int
    private let codecs: [ChunkCodec]

    public init(path: String, metadata: Metadata = Metadata(), sourceHeader: [UInt8] = [], options: Options = Options()) throws(CheckpointError) {
        guard options.chunkSize > 0, options.chunkSize % 64 == 0, options.chunkSize <= CompactIndex.maximumChunkSize else {
            throw CheckpointError(.invalidArgument, "chunk size \(options.chunkSize) is not a positive multiple of 64 up to \(CompactIndex.maximumChunkSize)")
        }
        self.path = path
        self.options = options
        self.metadata = metadata
        self.sourceHeader = sourceHeader
        file = try AtomicFile(path: path, durable: options.durable)
        codecs = (0..<options.threads).map { _ in ChunkCodec(level: options.level) }
        try file.write(CompactLayout.header())
        position = CompactLayout.headerSize
    }

    /// The candidate encoding for a dtype before measuring.
    static func candidate(for dtype: DType) -> (CompactEncoding, Int) {
        switch dtype {
        case .f16, .bf16, .f32, .f64: (.bytePlanes, dtype.byteSize!)
        default: (.zstd, 0)
        }
    }

    /// Encodes and writes one tensor.
    public func append(name: String, dtype: DType, shape: [Int], bytes: UnsafeRawBufferPointer) throws(CheckpointError) {
        guard name != "__metadata__" else { throw CheckpointError(.reservedTensorName, "the name __metadata__ is reserved", tensor: name) }
        guard !names.contains(UTF8Key(name)) else {
            throw CheckpointError(.duplicateTensorName, "two tensors have this name", tensor: name)
        }
        let length = try TensorSpec(name: name, dtype: dtype, shape: shape).byteCount()
        guard length == bytes.count else {
            throw CheckpointError(.shapeMismatch, "got \(bytes.count) bytes for shape \(shape) of \(dtype.rawValue) (\(length) expected)", tensor: name)
        }
        names.insert(UTF8Key(name))
        // Payloads start 64-aligned.
        let aligned = (position + 63) / 64 * 64
        if aligned > position { try file.write([UInt8](repeating: 0, count: aligned - position)) }
        position = aligned
        // The tensor's SHA-256 runs on its own thread while the chunks are encoded.
        let digest = SharedSlots<[UInt8]>(repeating: [], count: 1)
        let hashing = DispatchGroup()
        nonisolated(unsafe) let hashed = bytes
        DispatchQueue.global().async(group: hashing) { digest[0] = Array(SHA256.hash(data: hashed)) }
        defer { hashing.wait() }  // never return (or throw) while the hash still reads `bytes`
        let chunkSize = length == 0 ? 0 : options.chunkSize
        let chunkCount = length == 0 ? 0 : (length + chunkSize - 1) / chunkSize
        var (encoding, width) = CompactWriter.candidate(for: dtype)
        var chunks: [CompactChunk] = []
        chunks.reserveCapacity(chunkCount)
        var stored = 0
        var next = 0
        var pending: [[UInt8]] = []
        // Try the candidate on a sample; keep raw when it saves less than 5%.
        if chunkCount > 0 {
            let sample = min(4, chunkCount)
            let encoded = encodeBatch(bytes, chunks: 0..<sample, chunkSize: chunkSize, encoding: encoding, width: width)
            let sampleStored = encoded.reduce(0) { $0 + $1.payload.count }
            let sampleDecoded = min(length, sample * chunkSize)
            if Double(sampleStored) > Double(sampleDecoded) * (1 - ChunkCodec.minimumSaving) {
                encoding = .raw
                width = 0
            } else {
                for e in encoded { chunks.append(e.record); pending.append(e.payload) }
                next = sample
            }
        }
        for p in pending { try file.write(p); stored += p.count }
        if encoding == .raw {
            // Raw: the bytes as they are, with a CRC per chunk.
            for i in 0..<chunkCount {
                let chunk = UnsafeRawBufferPointer(rebasing: bytes[(i * chunkSize)..<min((i + 1) * chunkSize, length)])
                chunks.append(CompactChunk(crc: ChunkCodec.crc(chunk), parts: []))
            }
            try file.write(bytes)
            stored = length
        } else {
            let batch = 8 * options.threads
            while next < chunkCount {
                let range = next..<min(next + batch, chunkCount)
                for e in encodeBatch(bytes, chunks: range, chunkSize: chunkSize, encoding: encoding, width: width) {
                    chunks.append(e.record)
                    try file.write(e.payload)
                    stored += e.payload.count
                }
                next = range.upperBound
            }
        }
        hashing.wait()
        records.append(CompactTensor(name: name, dtype: dtype, shape: shape, byteLength: length, encoding: encoding, elementWidth: width,
                                     chunkSize: chunkSize, sha256: digest[0], dataOffset: position, storedLength: stored, chunks: chunks))
        position += stored
    }

    private func encodeBatch(_ bytes: UnsafeRawBufferPointer, chunks range: Range<Int>, chunkSize: Int, encoding: CompactEncoding,
                             width: Int) -> [(payload: [UInt8], record: CompactChunk)] {
        let results = SharedSlots<(payload: [UInt8], record: CompactChunk)?>(repeating: nil, count: range.count)
        let length = bytes.count
        nonisolated(unsafe) let source = bytes
        let codecs = UnsafeSendable(codecs)
        let workers = min(codecs.value.count, range.count)
        parallelFor(workers: workers) { w in
            var i = range.lowerBound + w
            while i < range.upperBound {
                let chunk = UnsafeRawBufferPointer(rebasing: source[(i * chunkSize)..<min((i + 1) * chunkSize, length)])
                results[i - range.lowerBound] = codecs.value[w].encode(chunk, encoding: encoding, width: width)
                i += workers
            }
        }
        return results.values.map { $0! }
    }

    /// Writes the index and footer and renames the file into place.
    public func finish() throws(CheckpointError) {
        let index = CompactIndex(metadata: metadata, sourceHeader: sourceHeader, tensors: records).serialized()
        guard index.count <= CompactLayout.maximumIndexLength else {
            throw CheckpointError(.invalidArgument, "the index would be \(index.count) bytes, over the format's limit")
        }
        let indexOffset = position
        try file.write(index)
        try file.write(CompactLayout.footer(indexOffset: indexOffset, indexLength: index.count, indexSHA256: Array(SHA256.hash(data: index))))
        try file.commit()
    }

    /// Tensors written so far.
    public var tensors: [CompactTensor] { records }
}
