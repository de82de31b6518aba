#if canImport(Glibc)
import Glibc
#else
#error("Shears is built and tested on Linux only")
#endif
import CheckpointCore
import ShearsConcurrency

/// How much memory the engine may use for what it allocates itself (F32 layers, gradients,
/// activations, logits, buffers kept for reuse): the mapped checkpoint's pages are the kernel's to
/// evict and are not counted.
///
/// The limit decides three things (``LlamaModel``): whether the embedding and LM head are kept
/// whole in F32 (only when each is at most ``wholeTableBytes``; otherwise the head is applied in
/// blocks of vocabulary rows read from the mapped tensor, and the embedding is gathered per token),
/// how large a block of logits may be, and how many freed buffers ``BufferPool`` keeps. A pass whose
/// minimum need (one decoder layer and its gradients, the hidden states it keeps) exceeds the limit
/// is refused before it starts (``LlamaModel/checkMemory(rows:backward:fisher:)``).
public struct MemoryBudget: Sendable, Equatable {
    /// The limit in bytes.
    public var bytes: Int
    /// Overrides ``wholeTableBytes`` (tests of the blocked head use 0).
    public var wholeTableLimit: Int?
    /// Bytes of F32 per decoded block of a table read in blocks (64 MiB).
    public var tableBlockBytes = 64 << 20

    public init(bytes: Int) { self.bytes = max(0, bytes) }

    /// Half of the memory available now (`MemAvailable`), at least 1 GiB; 8 GiB when
    /// /proc/meminfo cannot be read.
    public static var fractionOfAvailable: MemoryBudget {
        guard let kib = procValue("/proc/meminfo", "MemAvailable:") else { return MemoryBudget(bytes: 8 << 30) }
        return MemoryBudget(bytes: max(1 << 30, kib.multipliedReportingOverflow(by: 1024 / 2).partialValue))
    }

    private static let lock = Lock()
    nonisolated(unsafe) private static var processLimit: MemoryBudget?

    /// The budget models opened from now on get: set by `--memory-limit`, otherwise
    /// ``fractionOfAvailable`` (read once).
    public static var current: MemoryBudget {
        get { lock.withLock { if processLimit == nil { processLimit = fractionOfAvailable }; return processLimit! } }
        set { lock.withLock { processLimit = newValue } }
    }

    /// An F32 embedding or head is kept whole only up to this size: 512 MiB or an eighth of the
    /// limit, whichever is smaller (SmolLM2's 113 MB tables are kept; Llama-3-8B's 2.1 GB are not).
    public var wholeTableBytes: Int { wholeTableLimit ?? min(512 << 20, bytes / 8) }

    /// Bytes one block of logits may take: 64 MiB (at most an eighth of the limit) with a whole
    /// head; with a blocked head, where every block of rows reads the head again, up to a
    /// sixteenth of the limit when that is more.
    func logitBytes(blockedHead: Bool) -> Int {
        let base = min(64 << 20, bytes / 8)
        return blockedHead ? max(base, bytes / 16) : base
    }

    /// Bytes of F32 per decoded block of a table: ``tableBlockBytes``, at most a sixteenth of the limit.
    var blockBytes: Int { max(1, min(tableBlockBytes, bytes / 16)) }

    /// The process's anonymous resident memory now (RssAnon of /proc/self/status), in bytes.
    public static var residentAnonymous: Int? { procValue("/proc/self/status", "RssAnon:").map { $0 * 1024 } }

    /// The first number after `key` in `path` (kB values of /proc files).
    static func procValue(_ path: String, _ key: String) -> Int? {
        guard let f = fopen(path, "r") else { return nil }
        defer { fclose(f) }
        var line = [CChar](repeating: 0, count: 512)
        while fgets(&line, Int32(line.count), f) != nil {
            let s = String(decoding: line.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            guard s.hasPrefix(key) else { continue }
            return Int(s.dropFirst(key.count).split(whereSeparator: { $0 == " " || $0 == "\t" }).first ?? "")
        }
        return nil
    }
}
