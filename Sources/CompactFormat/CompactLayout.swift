/// Fixed parts of the compact format (formats/compact.md §2, §3).
public enum CompactLayout {
    public static let magic: [UInt8] = Array("SHEARSCZ".utf8)
    public static let majorVersion: UInt16 = 1
    public static let minorVersion: UInt16 = 0
    public static let headerSize = 32
    public static let footerSize = 64
    public static let maximumIndexLength = 1 << 30
    /// The file extension.
    public static let fileExtension = "ctz"
    /// Decoded bytes per chunk written by default.
    public static let defaultChunkSize = 1 << 20

    static func header() -> [UInt8] {
        var w = ByteWriter()
        w.raw(magic)
        w.u16(majorVersion)
        w.u16(minorVersion)
        w.u32(0)
        w.raw([UInt8](repeating: 0, count: 16))
        return w.bytes
    }

    static func footer(indexOffset: Int, indexLength: Int, indexSHA256: [UInt8]) -> [UInt8] {
        var w = ByteWriter()
        w.u64(UInt64(indexOffset))
        w.u64(UInt64(indexLength))
        w.raw(indexSHA256)
        w.u16(majorVersion)
        w.u16(minorVersion)
        w.u32(0)
        w.raw(magic)
        return w.bytes
    }
}
