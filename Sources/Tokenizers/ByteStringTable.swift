/// A hash table from byte strings to 64-bit values, looked up by a borrowed buffer so that the
/// hot path (vocabulary and word-cache lookups) neither allocates nor compares Swift `String`s,
/// whose equality is canonical equivalence, not byte equality, and would conflate distinct tokens
/// such as a precomposed `é` and `e` + U+0301.
struct ByteStringTable: Sendable {
    private var keys: [UInt8] = []
    /// Per entry: key offset, key length, hash, value.
    private var entries: [(offset: Int, length: Int32, hash: UInt32, value: UInt64)] = []
    /// Open-addressing slots holding entry index + 1 (0 = empty).
    private var slots: [Int32]
    private var mask: Int

    init(capacity: Int = 16) {
        var n = 16
        while n < capacity * 2 { n <<= 1 }
        slots = [Int32](repeating: 0, count: n)
        mask = n - 1
    }

    var count: Int { entries.count }
    var keyBytes: Int { keys.count }

    @inline(__always) static func hash(_ b: UnsafeBufferPointer<UInt8>) -> UInt64 {
        var h: UInt64 = 0x9E37_79B9_7F4A_7C15 ^ UInt64(b.count)
        guard let p = b.baseAddress else { return h }
        let raw = UnsafeRawPointer(p)
        var i = 0
        let n = b.count
        while i + 8 <= n {
            h = (h ^ raw.loadUnaligned(fromByteOffset: i, as: UInt64.self)) &* 0xFF51_AFD7_ED55_8CCD
            h ^= h >> 32
            i += 8
        }
        if i < n {
            var tail: UInt64 = 0
            var shift: UInt64 = 0
            while i < n { tail |= UInt64(p[i]) << shift; shift += 8; i += 1 }
            h = (h ^ tail) &* 0xC4CE_B9FE_1A85_EC53
        }
        h ^= h >> 29
        h = h &* 0x9E37_79B9_7F4A_7C15
        return h ^ (h >> 32)
    }

    /// The value stored for `key`.
    @inline(__always) func value(for key: UnsafeBufferPointer<UInt8>) -> UInt64? {
        let h = Self.hash(key)
        let h32 = UInt32(truncatingIfNeeded: h)
        var i = Int(truncatingIfNeeded: h) & mask
        return slots.withUnsafeBufferPointer { slots in
            entries.withUnsafeBufferPointer { entries in
                keys.withUnsafeBufferPointer { keys in
                    while true {
                        let s = Int(slots[i])
                        if s == 0 { return nil }
                        let e = entries[s - 1]
                        if e.hash == h32 && Int(e.length) == key.count {
                            var equal = true
                            for k in 0..<key.count where keys[e.offset + k] != key[k] { equal = false; break }
                            if equal { return e.value }
                        }
                        i = (i + 1) & mask
                    }
                }
            }
        }
    }

    func value(for key: [UInt8]) -> UInt64? { key.withUnsafeBufferPointer { value(for: $0) } }

    /// Stores `value` for `key`, replacing an earlier value for the same key.
    mutating func set(_ key: UnsafeBufferPointer<UInt8>, _ value: UInt64) {
        let h = Self.hash(key)
        let h32 = UInt32(truncatingIfNeeded: h)
        var i = Int(truncatingIfNeeded: h) & mask
        while true {
            let s = Int(slots[i])
            if s == 0 { break }
            let e = entries[s - 1]
            if e.hash == h32 && Int(e.length) == key.count
                && keys[e.offset..<(e.offset + key.count)].elementsEqual(key) {
                entries[s - 1].value = value
                return
            }
            i = (i + 1) & mask
        }
        entries.append((keys.count, Int32(key.count), h32, value))
        keys.append(contentsOf: key)
        slots[i] = Int32(entries.count)
        if entries.count * 2 > slots.count { grow() }
    }

    mutating func set(_ key: [UInt8], _ value: UInt64) { key.withUnsafeBufferPointer { set($0, value) } }

    private mutating func grow() {
        let n = slots.count * 2
        slots = [Int32](repeating: 0, count: n)
        mask = n - 1
        for (k, e) in entries.enumerated() {
            var i = Int(e.hash) & mask
            // Rehash with the stored low 32 bits; probing stays correct because lookups use the
            // same bits (value(for:) starts at the full hash & mask, which equals hash32 & mask
            // while the table has at most 2^32 slots).
            while slots[i] != 0 { i = (i + 1) & mask }
            slots[i] = Int32(k + 1)
        }
    }

    /// Every key with its value.
    func forEach(_ body: (ArraySlice<UInt8>, UInt64) -> Void) {
        for e in entries { body(keys[e.offset..<(e.offset + Int(e.length))], e.value) }
    }
}
