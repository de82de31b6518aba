import ShearsJSON

/// The byte-pair-encoding model of `tokenizer.json` (`"type": "BPE"`), applied to one
/// pre-tokenized word at a time exactly as the library's `BPE::tokenize` does: characters (with
/// `continuing_subword_prefix` / `end_of_word_suffix`), byte fallback or `unk_token` for unknown
/// characters, then repeated merging of the lowest-ranked adjacent pair (leftmost first).
struct BPEModel: Sendable {
    /// Token bytes → id.
    let vocabulary: ByteStringTable
    /// Id → token bytes (empty for ids that are not in the model's vocabulary).
    let tokens: [[UInt8]]
    /// (left id << 32 | right id) → (rank << 32 | merged id).
    let merges: [UInt64: UInt64]
    let unknownID: Int32?
    let continuingSubwordPrefix: [UInt8]?
    let endOfWordSuffix: [UInt8]?
    let fuseUnknown: Bool
    let byteFallback: Bool
    let ignoreMerges: Bool
    /// The ids of `<0x00>` ... `<0xFF>` (-1 when absent), for byte fallback.
    let byteTokenIDs: [Int32]
    /// Single-character tokens for characters below U+0800 (-1 when absent): the common case
    /// of the initial split, without hashing.
    private let smallCharacterIDs: [Int32]
    /// For models without prefix/suffix: (last character of a merge's left token << 32 | first
    /// character of its right token) for every merge. Two adjacent characters that form no such
    /// pair can never end up in one token, so a long word can be cut there and its parts merged
    /// (and cached) separately with the same result; see ``tokenize(_:cache:scratch:into:)``.
    private let joinableCharacters: Set<UInt64>?

    /// Words at least this long (in bytes) are not cached, as in the library.
    static let maxCachedWordLength = 256

    /// Reads the `model` object.
    /// - Throws: ``TokenizerError``: `.unsupported` for other model types, `.malformed` for a merge
    ///   whose parts are not in the vocabulary and similar problems.
    init(_ f: JSONFields) throws(TokenizerError) {
        let type = try f.optionalString("type") ?? "BPE"
        guard type == "BPE" else { throw TokenizerError(.unsupported, "unsupported tokenizer model \(type)") }
        if let d = f.object["dropout"], let p = d.doubleValue, p > 0 {
            throw TokenizerError(.unsupported, "BPE dropout \(p) is not supported (it makes encoding random)")
        }
        let vocabObject = try f.fields("vocab").object
        var table = ByteStringTable(capacity: vocabObject.count)
        var maxID = -1
        var entries: [([UInt8], Int)] = []
        entries.reserveCapacity(vocabObject.count)
        for (key, value) in vocabObject.members {
            guard let id = value.intValue, id >= 0, id < Int(Int32.max) else {
                throw TokenizerError(.malformed, "model.vocab[\(OnigurumaRegex.quoted(key))] should be a non-negative integer id")
            }
            let bytes = Array(key.utf8)
            table.set(bytes, UInt64(id))
            entries.append((bytes, id))
            maxID = max(maxID, id)
        }
        var tokens = [[UInt8]](repeating: [], count: maxID + 1)
        for (bytes, id) in entries { tokens[id] = bytes }
        vocabulary = table
        self.tokens = tokens

        continuingSubwordPrefix = try f.optionalString("continuing_subword_prefix").map { Array($0.utf8) }
        endOfWordSuffix = try f.optionalString("end_of_word_suffix").map { Array($0.utf8) }
        fuseUnknown = try f.bool("fuse_unk", default: false)
        byteFallback = try f.bool("byte_fallback", default: false)
        ignoreMerges = try f.bool("ignore_merges", default: false)
        if let unk = try f.optionalString("unk_token") {
            // The library fails only when an unknown character is met; an id of -1 defers that.
            unknownID = table.value(for: Array(unk.utf8)).map { Int32($0) } ?? -1
        } else {
            unknownID = nil
        }

        // Merges: "a b" strings or ["a", "b"] pairs; a later duplicate pair overrides an earlier one.
        let prefixLength = continuingSubwordPrefix?.count ?? 0
        let list = try f.array("merges")
        var merges = [UInt64: UInt64](minimumCapacity: list.count)
        var joinable = Set<UInt64>()
        for (rank, m) in list.enumerated() {
            let a: [UInt8], b: [UInt8]
            if let s = m.stringValue {
                let parts = s.split(separator: " ", omittingEmptySubsequences: false)
                guard parts.count == 2 else {
                    throw TokenizerError(.malformed, "model.merges[\(rank)] \(OnigurumaRegex.quoted(s)) is not two tokens separated by one space")
                }
                a = Array(parts[0].utf8)
                b = Array(parts[1].utf8)
            } else if let pair = m.arrayValue, pair.count == 2, let x = pair[0].stringValue, let y = pair[1].stringValue {
                a = Array(x.utf8)
                b = Array(y.utf8)
            } else {
                throw TokenizerError(.malformed, "model.merges[\(rank)] should be a string or a pair of strings")
            }
            guard let ia = table.value(for: a) else {
                throw TokenizerError(.malformed, "model.merges[\(rank)]: token \(OnigurumaRegex.quoted(String(decoding: a, as: UTF8.self))) is not in the vocabulary")
            }
            guard let ib = table.value(for: b) else {
                throw TokenizerError(.malformed, "model.merges[\(rank)]: token \(OnigurumaRegex.quoted(String(decoding: b, as: UTF8.self))) is not in the vocabulary")
            }
            let joined = a + b.dropFirst(min(prefixLength, b.count))
            guard let merged = table.value(for: joined) else {
                throw TokenizerError(.malformed, "model.merges[\(rank)]: merged token \(OnigurumaRegex.quoted(String(decoding: joined, as: UTF8.self))) is not in the vocabulary")
            }
            merges[ia << 32 | ib] = UInt64(rank) << 32 | merged
            if let l = UTF8Scan.scalars(a).last, let r = UTF8Scan.scalars(b).first {
                joinable.insert(UInt64(l.value) << 32 | UInt64(r.value))
            }
        }
        self.merges = merges
        joinableCharacters = continuingSubwordPrefix == nil && endOfWordSuffix == nil ? joinable : nil

        var byteIDs = [Int32](repeating: -1, count: 256)
        let hex = Array("0123456789ABCDEF".utf8)
        for b in 0..<256 {
            let name: [UInt8] = [0x3C, 0x30, 0x78, hex[b >> 4], hex[b & 15], 0x3E]  // <0xHH>
            if let id = table.value(for: name) { byteIDs[b] = Int32(id) }
        }
        byteTokenIDs = byteIDs
        var small = [Int32](repeating: -1, count: 0x800)
        for v in 0..<0x800 {
            guard let s = Unicode.Scalar(v) else { continue }
            var utf8: [UInt8] = []
            UTF8Scan.append(s, to: &utf8)
            if let id = table.value(for: utf8) { small[v] = Int32(id) }
        }
        smallCharacterIDs = small
    }

    /// The id of a token of the model's vocabulary.
    func id(of token: [UInt8]) -> Int32? { vocabulary.value(for: token).map { Int32($0) } }

    /// Tokenizes one word, appending its ids to `out`.
    /// - Throws: ``TokenizerError`` when a character is unknown and the `unk_token` is not in the
    ///   vocabulary (the library fails the same way).
    func tokenize(_ word: UnsafeBufferPointer<UInt8>, cache: inout WordCache, scratch: inout BPEScratch,
                  into out: inout [Int32]) throws(TokenizerError) {
        if word.isEmpty { return }
        if ignoreMerges, let id = vocabulary.value(for: word) {
            out.append(Int32(id))
            return
        }
        let cacheable = word.count < Self.maxCachedWordLength
        if cacheable, cache.lookup(word, into: &out) { return }
        if word.count >= Self.segmentationThreshold, let joinable = joinableCharacters {
            // A long word (a whole text, for SentencePiece-style tokenizers without a
            // pre-tokenizer): cut it where no merge can ever join the neighbouring characters,
            // next to characters that are single-character tokens (unknown characters, with their
            // byte fallback and unk fusing, stay inside a part). Merges never cross a cut, so the
            // parts merge independently to exactly the ids of the whole word.
            var partStart = 0
            var i = 0
            var previous: (scalar: UInt32, known: Bool)? = nil
            while i < word.count {
                let (c, n) = UTF8Scan.decode(word, at: i)
                let known = isSingleCharacterToken(word, i, n)
                if let p = previous, p.known, known, !joinable.contains(UInt64(p.scalar) << 32 | UInt64(c.value)) {
                    try tokenizePart(UnsafeBufferPointer(rebasing: word[partStart..<i]), cache: &cache, scratch: &scratch, into: &out)
                    partStart = i
                }
                previous = (c.value, known)
                i += n
            }
            try tokenizePart(UnsafeBufferPointer(rebasing: word[partStart..<word.count]), cache: &cache, scratch: &scratch, into: &out)
            return
        }
        let start = out.count
        try merge(word, scratch: &scratch, into: &out)
        if cacheable { cache.insert(word, out[start...]) }
    }

    /// Words at least this long are cut into independent parts before merging.
    static let segmentationThreshold = 64

    /// Merges one part of a long word (through the cache; without the `ignore_merges` shortcut,
    /// which the library applies to whole words only).
    private func tokenizePart(_ part: UnsafeBufferPointer<UInt8>, cache: inout WordCache, scratch: inout BPEScratch,
                              into out: inout [Int32]) throws(TokenizerError) {
        let cacheable = part.count < Self.maxCachedWordLength
        if cacheable, cache.lookup(part, into: &out) { return }
        let start = out.count
        try merge(part, scratch: &scratch, into: &out)
        if cacheable { cache.insert(part, out[start...]) }
    }

    @inline(__always) private func isSingleCharacterToken(_ word: UnsafeBufferPointer<UInt8>, _ i: Int, _ n: Int) -> Bool {
        if n <= 2 {
            let v = n == 1 ? Int(word[i]) : (Int(word[i] & 0x1F) << 6 | Int(word[i + 1] & 0x3F))
            return smallCharacterIDs[v] >= 0
        }
        return vocabulary.value(for: UnsafeBufferPointer(rebasing: word[i..<(i + n)])) != nil
    }

    /// Splits `word` into its initial symbols, then merges them.
    private func merge(_ word: UnsafeBufferPointer<UInt8>, scratch: inout BPEScratch, into out: inout [Int32]) throws(TokenizerError) {
        scratch.reset()
        var pendingUnknown: (id: Int32, length: Int)? = nil
        let simple = continuingSubwordPrefix == nil && endOfWordSuffix == nil
        var i = 0
        var key: [UInt8] = []
        while i < word.count {
            let n = UTF8Scan.scalarLength(lead: word[i])
            let isFirst = i == 0
            let isLast = i + n >= word.count
            var id: Int32 = -1
            if simple {
                if n <= 2 {
                    let v = n == 1 ? Int(word[i]) : (Int(word[i] & 0x1F) << 6 | Int(word[i + 1] & 0x3F))
                    id = smallCharacterIDs[v]
                } else if let found = vocabulary.value(for: UnsafeBufferPointer(rebasing: word[i..<(i + n)])) {
                    id = Int32(found)
                }
                key = []
            } else {
                key.removeAll(keepingCapacity: true)
                if !isFirst, let p = continuingSubwordPrefix { key.append(contentsOf: p) }
                key.append(contentsOf: word[i..<(i + n)])
                if isLast, let s = endOfWordSuffix { key.append(contentsOf: s) }
                if let found = vocabulary.value(for: key) { id = Int32(found) }
            }
            if id >= 0 {
                if let u = pendingUnknown { scratch.add(u.id, length: u.length); pendingUnknown = nil }
                scratch.add(id, length: n)
            } else {
                var handled = false
                if byteFallback {
                    // Every byte of the symbol as it was looked up (with any prefix/suffix).
                    let bytes: [UInt8] = simple ? Array(word[i..<(i + n)]) : key
                    if bytes.allSatisfy({ byteTokenIDs[Int($0)] >= 0 }) {
                        for b in bytes { scratch.add(byteTokenIDs[Int(b)], length: 1) }
                        handled = true
                    }
                }
                if !handled, let unk = unknownID {
                    guard unk >= 0 else {
                        throw TokenizerError(.malformed, "the unk_token is not in the vocabulary")
                    }
                    if let u = pendingUnknown {
                        if fuseUnknown {
                            pendingUnknown = (u.id, u.length + n)
                        } else {
                            scratch.add(u.id, length: u.length)
                            pendingUnknown = (unk, n)
                        }
                    } else {
                        pendingUnknown = (unk, n)
                    }
                }
            }
            i += n
        }
        if let u = pendingUnknown { scratch.add(u.id, length: u.length) }
        scratch.mergeAll(merges)
        scratch.emit(into: &out)
    }
}

/// Reusable buffers for merging one word (the library's `Word` plus its merge queue).
struct BPEScratch {
    private var ids: [Int32] = []
    private var prev: [Int32] = []
    private var next: [Int32] = []
    private var alive: [Bool] = []
    /// A binary min-heap ordered by (rank << 32 | position), carrying the merged id.
    private var heap: [(key: UInt64, id: UInt32)] = []

    init() {}

    mutating func reset() {
        ids.removeAll(keepingCapacity: true)
        prev.removeAll(keepingCapacity: true)
        next.removeAll(keepingCapacity: true)
        alive.removeAll(keepingCapacity: true)
        heap.removeAll(keepingCapacity: true)
    }

    @inline(__always) mutating func add(_ id: Int32, length: Int) {
        let n = Int32(ids.count)
        ids.append(id)
        prev.append(n - 1)
        next.append(n + 1)
        alive.append(true)
    }

    /// Applies merges lowest rank first, and among equal ranks leftmost first, as the library's
    /// `Word::merge_all` does; a queued entry is stale when its pair no longer has that rank.
    mutating func mergeAll(_ merges: [UInt64: UInt64]) {
        let n = ids.count
        guard n > 1 else { return }
        if n > 0 { next[n - 1] = -1 }
        for p in 0..<(n - 1) {
            if let m = merges[UInt64(UInt32(bitPattern: ids[p])) << 32 | UInt64(UInt32(bitPattern: ids[p + 1]))] {
                push(m, at: p)
            }
        }
        while let top = pop() {
            let pos = Int(top.key & 0xFFFF_FFFF)
            guard alive[pos] else { continue }
            let r = Int(next[pos])
            guard r >= 0 else { continue }
            // Like the library, an entry is current when the pair now at its position merges
            // into the same id.
            guard let m = merges[pair(pos, r)], UInt32(truncatingIfNeeded: m) == top.id else { continue }
            // Merge pos with r.
            ids[pos] = Int32(bitPattern: top.id)
            alive[r] = false
            let rr = Int(next[r])
            next[pos] = Int32(rr)
            if rr >= 0 { prev[rr] = Int32(pos) }
            let l = Int(prev[pos])
            if l >= 0, let m2 = merges[pair(l, pos)] { push(m2, at: l) }
            if rr >= 0, let m3 = merges[pair(pos, rr)] { push(m3, at: pos) }
        }
    }

    @inline(__always) private func pair(_ a: Int, _ b: Int) -> UInt64 {
        UInt64(UInt32(bitPattern: ids[a])) << 32 | UInt64(UInt32(bitPattern: ids[b]))
    }

    func emit(into out: inout [Int32]) {
        for k in 0..<ids.count where alive[k] { out.append(ids[k]) }
    }

    @inline(__always) private mutating func push(_ merge: UInt64, at position: Int) {
        heap.append(((merge & 0xFFFF_FFFF_0000_0000) | UInt64(position), UInt32(truncatingIfNeeded: merge)))
        var c = heap.count - 1
        while c > 0 {
            let p = (c - 1) >> 1
            if heap[p].key <= heap[c].key { break }
            heap.swapAt(p, c)
            c = p
        }
    }

    @inline(__always) private mutating func pop() -> (key: UInt64, id: UInt32)? {
        guard let last = heap.popLast() else { return nil }
        if heap.isEmpty { return last }
        let top = heap[0]
        heap[0] = last
        var p = 0
        let n = heap.count
        while true {
            let l = 2 * p + 1
            if l >= n { break }
            var m = l
            if l + 1 < n && heap[l + 1].key < heap[l].key { m = l + 1 }
            if heap[p].key <= heap[m].key { break }
            heap.swapAt(p, m)
            p = m
        }
        return top
    }
}

/// Results of previously tokenized words (keyed by their bytes), so that each distinct word is
/// merged once. Stops growing at a fixed size, like the library's cache.
struct WordCache: Sendable {
    private var table = ByteStringTable(capacity: 4096)
    private var ids: [Int32] = []
    static let maxEntries = 200_000

    init() {}

    @inline(__always) func lookup(_ word: UnsafeBufferPointer<UInt8>, into out: inout [Int32]) -> Bool {
        guard let v = table.value(for: word) else { return false }
        let start = Int(v >> 16)
        let count = Int(v & 0xFFFF)
        out.append(contentsOf: ids[start..<(start + count)])
        return true
    }

    mutating func insert(_ word: UnsafeBufferPointer<UInt8>, _ result: ArraySlice<Int32>) {
        guard table.count < Self.maxEntries, result.count < 0xFFFF else { return }
        table.set(word, UInt64(ids.count) << 16 | UInt64(result.count))
        ids.append(contentsOf: result)
    }
}
