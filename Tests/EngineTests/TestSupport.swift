import CheckpointCore
import Engine

enum Fixture {
    /// The repository's Fixtures folder.
    static let root: String = {
        var p = #filePath
        for _ in 0..<3 { p = String(p[..<p.lastIndex(of: "/")!]) }
        return p + "/Fixtures"
    }()

    static func engine(_ name: String) -> String { root + "/engine/" + name }
}

/// Reads golden tensors written by Tools/engine/make_goldens.py.
struct Golden {
    let checkpoint: Checkpoint

    init(_ path: String) throws { checkpoint = try Checkpoint.open(path) }

    func has(_ name: String) -> Bool { checkpoint.info(named: name) != nil }

    func floats(_ name: String) throws -> [Float] { try checkpoint.tensor(named: name).floats() }

    func doubles(_ name: String) throws -> [Double] {
        let v = try checkpoint.tensor(named: name)
        if v.dtype == .f64 {
            return v.withUnsafeBytes { raw in (0..<v.elementCount).map { Double(bitPattern: UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 8, as: UInt64.self))) } }
        }
        return try v.floats().map(Double.init)
    }

    func ints(_ name: String) throws -> [Int] {
        let v = try checkpoint.tensor(named: name)
        return v.withUnsafeBytes { raw in
            switch v.dtype {
            case .i32: return (0..<v.elementCount).map { Int(Int32(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 4, as: Int32.self))) }
            default: return (0..<v.elementCount).map { Int(Int64(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 8, as: Int64.self))) }
            }
        }
    }

    func shape(_ name: String) -> [Int] { checkpoint.info(named: name)?.shape ?? [] }
}

/// ‖a − b‖ / ‖b‖ in Double.
func relativeError(_ a: [Float], _ b: [Float]) -> Double {
    precondition(a.count == b.count, "relativeError: \(a.count) vs \(b.count) values")
    var d = 0.0, n = 0.0
    for i in 0..<a.count {
        let x = Double(a[i]), y = Double(b[i])
        d += (x - y) * (x - y)
        n += y * y
    }
    return n == 0 ? d.squareRoot() : (d / n).squareRoot()
}

func relativeError(_ a: [Double], _ b: [Double]) -> Double {
    precondition(a.count == b.count)
    var d = 0.0, n = 0.0
    for i in 0..<a.count { d += (a[i] - b[i]) * (a[i] - b[i]); n += b[i] * b[i] }
    return n == 0 ? d.squareRoot() : (d / n).squareRoot()
}
