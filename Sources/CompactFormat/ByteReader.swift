import CheckpointCore

/// Reads little-endian fields from a byte buffer, checking every length against what remains.
/// Errors carry `code` and say which field ran out.
struct ByteReader {
    let bytes: UnsafeRawBufferPointer
    private(set) var position = 0
    let code: CheckpointError.Code

    init(_ bytes: UnsafeRawBufferPointer, code: CheckpointError.Code) {
        self.bytes = bytes
        self.code = code
    }

    var remaining: Int { bytes.count - position }
    var isAtEnd: Bool { position == bytes.count }

    private mutating func take(_ n: Int, _ what: String) throws(CheckpointError) -> UnsafeRawBufferPointer {
        guard n >= 0, n <= remaining else {
            throw CheckpointError(code, "index ends inside \(what) (needs \(n) bytes at index offset \(position), \(remaining) remain)")
        }
        defer { position += n }
        return UnsafeRawBufferPointer(rebasing: bytes[position..<(position + n)])
    }

    mutating func u8(_ what: String) throws(CheckpointError) -> UInt8 { try take(1, what)[0] }
    mutating func u16(_ what: String) throws(CheckpointError) -> UInt16 { UInt16(littleEndian: try take(2, what).loadUnaligned(as: UInt16.self)) }
    mutating func u32(_ what: String) throws(CheckpointError) -> UInt32 { UInt32(littleEndian: try take(4, what).loadUnaligned(as: UInt32.self)) }
    mutating func u64(_ what: String) throws(CheckpointError) -> UInt64 { UInt64(littleEndian: try take(8, what).loadUnaligned(as: UInt64.self)) }
    mutating func raw(_ n: Int, _ what: String) throws(CheckpointError) -> [UInt8] { Array(try take(n, what)) }

    /// A u32 count that must not exceed `limit`.
    mutating func count(_ what: String, limit: Int) throws(CheckpointError) -> Int {
        let v = try u32(what)
        guard v <= limit else { throw CheckpointError(code, "\(what) \(v) is over the limit of \(limit)") }
        return Int(v)
    }

    /// A u32-length-prefixed UTF-8 string.
    mutating func string(_ what: String) throws(CheckpointError) -> String {
        let n = try u32("length of \(what)")
        let b = try take(Int(n), what)
        guard let s = String(validating: b, as: UTF8.self) else {
            throw CheckpointError(code, "\(what) is not valid UTF-8")
        }
        return s
    }
}

/// Appends little-endian fields to a byte array.
struct ByteWriter {
    var bytes: [UInt8] = []
    mutating func u8(_ v: UInt8) { bytes.append(v) }
    mutating func u16(_ v: UInt16) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    mutating func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    mutating func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    mutating func raw(_ b: [UInt8]) { bytes.append(contentsOf: b) }
    mutating func string(_ s: String) {
        u32(UInt32(s.utf8.count))
        bytes.append(contentsOf: s.utf8)
    }
}
