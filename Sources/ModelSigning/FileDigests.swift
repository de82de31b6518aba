import CheckpointCore
import Crypto
import ShearsConcurrency

/// SHA-256 of whole files, several files at once: each worker maps the next file, tells the kernel
/// it will be read in order, and hashes it straight from the page cache. This is the one file
/// hasher of Shears (`hash` lists and signatures use it), so both read a model at the same speed.
public enum FileDigests {
    /// The SHA-256 of every file in `paths`, in the same order.
    ///
    /// - Parameters:
    ///   - paths: regular files.
    ///   - threads: how many files are hashed at the same time (at least 1).
    /// - Returns: 32-byte digests, one per path.
    /// - Throws: ``CheckpointError`` (code `io`) naming the first file that cannot be opened or mapped.
    public static func sha256(_ paths: [String], threads: Int) throws(CheckpointError) -> [[UInt8]] {
        let results = SharedSlots<Result<[UInt8], CheckpointError>?>(repeating: nil, count: paths.count)
        let next = AtomicCounter()
        parallelFor(workers: max(1, min(threads, paths.count))) { _ in
            while true {
                let i = next.increment()
                guard i < paths.count else { return }
                do throws(CheckpointError) {
                    let m = try MappedFile(path: paths[i])
                    m.advise(.sequential)
                    results[i] = .success(m.withUnsafeBytes { Array(SHA256.hash(data: $0)) })
                } catch {
                    results[i] = .failure(error)
                }
            }
        }
        var digests: [[UInt8]] = []
        digests.reserveCapacity(paths.count)
        for i in 0 ..< paths.count { digests.append(try results[i]!.get()) }
        return digests
    }

    /// Lowercase hexadecimal, as digests are written in hash lists and signature payloads.
    public static func hex(_ bytes: some Sequence<UInt8>) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        for b in bytes { out.append(digits[Int(b >> 4)]); out.append(digits[Int(b & 15)]) }
        return String(decoding: out, as: UTF8.self)
    }

    /// The bytes of a hexadecimal string (either case), or nil when it is not exactly `count` bytes of hex.
    public static func bytes(hex: String, count: Int) -> [UInt8]? {
        let u = Array(hex.utf8)
        guard u.count == 2 * count else { return nil }
        func nibble(_ c: UInt8) -> UInt8? {
            switch c {
            case UInt8(ascii: "0") ... UInt8(ascii: "9"): c - UInt8(ascii: "0")
            case UInt8(ascii: "a") ... UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A") ... UInt8(ascii: "F"): c - UInt8(ascii: "A") + 10
            default: nil
            }
        }
        var out: [UInt8] = []
        out.reserveCapacity(count)
        var i = 0
        while i < u.count {
            guard let h = nibble(u[i]), let l = nibble(u[i + 1]) else { return nil }
            out.append(h << 4 | l)
            i += 2
        }
        return out
    }
}
