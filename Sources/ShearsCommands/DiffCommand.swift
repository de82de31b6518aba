import ArgumentParser
import CheckpointCore
import ShearsPipeline
import ModelArchitecture
import Pruning
import ShearsJSON

/// `shears diff A B`: structural and numeric differences between two checkpoints.
public struct DiffCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "diff",
        abstract: "Compare two checkpoints: tensors added, removed or reshaped, dtype, metadata and config changes, and numeric differences.",
        discussion: """
            A and B may be in any format Shears reads (safetensors file, index or folder; .ctz). \
            Tensors present in both with the same shape are compared after conversion to F32, one \
            tensor at a time: max absolute and relative difference, mean squared error, NMSE \
            (‖A−B‖² / ‖B‖²), cosine similarity, the count of elements beyond tolerance \
            (|a − b| > atol + rtol·|b|, NaN equal to NaN), and whether the stored bytes are identical.

            A and B are equal when they hold the same tensor names and shapes and every tensor is \
            within tolerance; dtype, metadata and config differences are reported, and count only with \
            --strict. Exit status: 0 equal, 1 different, 2 when an input is malformed or missing.
            """)

    @Argument(help: "First checkpoint.", completion: .file()) var a: String
    @Argument(help: "Second checkpoint (the reference for relative measures).", completion: .file()) var b: String
    @Option(help: "Absolute tolerance.") var atol: Double = 0
    @Option(help: "Relative tolerance.") var rtol: Double = 0
    @Flag(help: "Print only the summary, not every tensor.") var summary = false
    @Flag(help: "Count dtype, metadata and config differences as differences.") var strict = false
    @Flag(help: "Print one JSON object.") var json = false
    @Option(help: "A pruning-manifest.json: A is the source, B the pruned model; each B tensor is compared with A's tensor sliced by the manifest, so a correct pruning shows as identical.", completion: .file())
    var manifest: String?

    public init() {}

    struct Stats {
        var name: String
        var dtypeA: String, dtypeB: String
        var shape: [Int]
        var identicalBytes: Bool
        var maxAbs = 0.0, maxRel = 0.0, mse = 0.0, nmse = 0.0, cosine = 1.0
        var beyond = 0
        var count = 0
        var json: JSONValue {
            func num(_ d: Double) -> JSONValue { d.isFinite ? .double(d) : .string("\(d)") }
            return .object(JSONObject([
                ("name", .string(name)), ("dtype_a", .string(dtypeA)), ("dtype_b", .string(dtypeB)),
                ("shape", .array(shape.map { .int(Int64($0)) })), ("identical_bytes", .bool(identicalBytes)),
                ("max_abs_diff", num(maxAbs)), ("max_rel_diff", num(maxRel)), ("mse", num(mse)), ("nmse", num(nmse)),
                ("cosine", num(cosine)), ("beyond_tolerance", .int(Int64(beyond))), ("elements", .int(Int64(count))),
                ("equal", .bool(beyond == 0)),
            ]))
        }
    }

    static func compare(_ x: [Float], _ y: [Float], atol: Double, rtol: Double) -> (maxAbs: Double, maxRel: Double, mse: Double, nmse: Double, cosine: Double, beyond: Int) {
        var maxAbs = 0.0, maxRel = 0.0, sq = 0.0, ref = 0.0, dot = 0.0, nx = 0.0, beyond = 0
        for i in 0..<x.count {
            let a = Double(x[i]), b = Double(y[i])
            if a.isNaN || b.isNaN {
                if !(a.isNaN && b.isNaN) { beyond += 1; maxAbs = .infinity }
                continue
            }
            if a == b { dot += a * b; nx += a * a; ref += b * b; continue }  // also equal infinities
            let d = abs(a - b)
            if d > atol + rtol * abs(b) { beyond += 1 }
            maxAbs = max(maxAbs, d)
            maxRel = max(maxRel, d / max(abs(b), Double.leastNonzeroMagnitude))
            sq += d * d
            dot += a * b
            nx += a * a
            ref += b * b
        }
        let n = Double(max(x.count, 1))
        let cosine = nx > 0 && ref > 0 ? dot / (nx.squareRoot() * ref.squareRoot()) : (nx == ref ? 1 : 0)
        return (maxAbs, maxRel, sq / n, ref > 0 ? sq / ref : (sq == 0 ? 0 : .infinity), cosine, beyond)
    }

    public func run() throws {
        let sa: any TensorStore, sb: any TensorStore
        do {
            sa = try ModelSource.openStore(a)
            sb = try ModelSource.openStore(b)
        } catch { throw report(error) }
        // A's tensors as B should hold them: A itself, or A sliced by the manifest's plan.
        struct Expected {
            var name: String
            var dtype: DType
            var shape: [Int]
            var bytes: ((UnsafeRawBufferPointer) throws -> Bool) throws -> Bool
        }
        var expectedA: [Expected] = []
        do {
            if let manifest {
                let m = try JSONValue.parse(FileSystem.readFile(manifest, limit: 1 << 30))
                guard let configPath = sa.configPath else { throw CheckpointError(.invalidConfig, "A has no config.json to read the manifest against", path: a) }
                let plan = try PruningPlan(manifest: m, shape: ModelDescription(configPath: configPath, store: sa))
                for info in sa.tensorInfos {
                    guard let slice = Surgery.slice(info.name, shape: info.shape, plan: plan) else { continue }
                    expectedA.append(Expected(name: slice.outputName, dtype: info.dtype, shape: slice.outputShape) { body in
                        let sliced = try sa.withTensorBytes(info.name) { raw in try Surgery.sliceBytes(raw, slice, dtype: info.dtype) }
                        return try sliced.withUnsafeBytes { try body($0) }
                    })
                }
            } else {
                expectedA = sa.tensorInfos.map { info in
                    Expected(name: info.name, dtype: info.dtype, shape: info.shape) { body in try sa.withTensorBytes(info.name) { try body($0) } }
                }
            }
        } catch { throw report(error) }
        let namesA = Set(expectedA.map { UTF8Key($0.name) }), namesB = Set(sb.tensorInfos.map { UTF8Key($0.name) })
        let onlyA = expectedA.map(\.name).filter { !namesB.contains(UTF8Key($0)) }
        let onlyB = sb.tensorInfos.map(\.name).filter { !namesA.contains(UTF8Key($0)) }
        var shapeChanges: [(String, [Int], [Int])] = []
        var dtypeChanges: [(String, String, String)] = []
        var records: [Stats] = []
        do {
            for ia in expectedA {
                guard let ib = sb.tensorInfo(named: ia.name) else { continue }
                if ia.dtype != ib.dtype { dtypeChanges.append((ia.name, ia.dtype.rawValue, ib.dtype.rawValue)) }
                guard ia.shape == ib.shape else { shapeChanges.append((ia.name, ia.shape, ib.shape)); continue }
                var s = Stats(name: ia.name, dtypeA: ia.dtype.rawValue, dtypeB: ib.dtype.rawValue, shape: ia.shape, identicalBytes: false)
                if ia.dtype == ib.dtype {
                    s.identicalBytes = try ia.bytes { ra in try sb.withTensorBytes(ib.name) { rb in ra.elementsEqual(rb) } }
                }
                s.count = ib.elementCount
                if !s.identicalBytes {
                    guard ia.dtype.convertsToFloat32 && ib.dtype.convertsToFloat32 else {
                        s.beyond = s.count
                        s.maxAbs = .infinity
                        records.append(s)
                        continue
                    }
                    var fa = [Float](repeating: 0, count: ib.elementCount)
                    _ = try ia.bytes { raw in
                        try fa.withUnsafeMutableBufferPointer { try DTypeConversion.decode(raw, as: ia.dtype, into: $0) }
                        return true
                    }
                    let r = DiffCommand.compare(fa, try sb.floats(ib.name), atol: atol, rtol: rtol)
                    (s.maxAbs, s.maxRel, s.mse, s.nmse, s.cosine, s.beyond) = r
                }
                records.append(s)
            }
        } catch { throw report(error) }
        let metadataA = sa.metadataMap ?? Metadata(), metadataB = sb.metadataMap ?? Metadata()
        var metadataChanges: [String] = []
        for (k, v) in metadataA where metadataB[k] != v { metadataChanges.append(metadataB[k] == nil ? "\(k) only in A" : "\(k): \(v) → \(metadataB[k]!)") }
        for (k, _) in metadataB where metadataA[k] == nil { metadataChanges.append("\(k) only in B") }
        var configChanges: [String] = []
        let ca = (try? sa.configPath.map { try ModelConfiguration(path: $0) }) ?? nil
        let cb = (try? sb.configPath.map { try ModelConfiguration(path: $0) }) ?? nil
        if manifest != nil {
            // The pruned config differs by design.
        } else if let ca, let cb {
            let ja = ca.summary.objectValue!, jb = cb.summary.objectValue!
            for (k, v) in ja.members where jb[k] != v { configChanges.append("\(k): \(v.serialized()) → \(jb[k]?.serialized() ?? "absent")") }
        } else if (ca == nil) != (cb == nil) {
            configChanges.append(ca == nil ? "config.json only in B" : "config.json only in A")
        }
        let valuesDiffer = records.contains { $0.beyond > 0 }
        let equal = onlyA.isEmpty && onlyB.isEmpty && shapeChanges.isEmpty && !valuesDiffer
            && (!strict || (dtypeChanges.isEmpty && metadataChanges.isEmpty && configChanges.isEmpty))
        if json {
            var o = JSONObject()
            o["equal"] = .bool(equal)
            o["a"] = .string(a)
            o["b"] = .string(b)
            o["atol"] = .double(atol)
            o["rtol"] = .double(rtol)
            o["only_in_a"] = .array(onlyA.map { .string($0) })
            o["only_in_b"] = .array(onlyB.map { .string($0) })
            o["shape_changes"] = .array(shapeChanges.map { .object(JSONObject([("name", .string($0.0)), ("shape_a", .array($0.1.map { .int(Int64($0)) })), ("shape_b", .array($0.2.map { .int(Int64($0)) }))])) })
            o["dtype_changes"] = .array(dtypeChanges.map { .object(JSONObject([("name", .string($0.0)), ("dtype_a", .string($0.1)), ("dtype_b", .string($0.2))])) })
            o["metadata_changes"] = .array(metadataChanges.map { .string($0) })
            o["config_changes"] = .array(configChanges.map { .string($0) })
            o["tensors_compared"] = .int(Int64(records.count))
            o["tensors_different"] = .int(Int64(records.filter { $0.beyond > 0 }.count))
            o["tensors"] = .array(summary ? [] : records.map(\.json))
            StandardOutput.write(JSONValue.object(o).serialized(style: .pretty) + "\n")
        } else {
            var out = ""
            for n in onlyA { out += "only in A   \(n)\n" }
            for n in onlyB { out += "only in B   \(n)\n" }
            for c in shapeChanges { out += "shape       \(c.0): \(Format.shape(c.1)) → \(Format.shape(c.2))\n" }
            for c in dtypeChanges { out += "dtype       \(c.0): \(c.1) → \(c.2)\n" }
            for c in metadataChanges { out += "metadata    \(c)\n" }
            for c in configChanges { out += "config      \(c)\n" }
            if !summary {
                for r in records where r.beyond > 0 || r.maxAbs > 0 {
                    out += (r.beyond > 0 ? "DIFFERENT   " : "within tol  ") + r.name
                        + "  max|Δ| \(Format.sci(r.maxAbs))  max rel \(Format.sci(r.maxRel))  nmse \(Format.sci(r.nmse))  cos \(Format.fixed(r.cosine, 6))  beyond \(r.beyond)/\(r.count)\n"
                }
            }
            let identical = records.filter(\.identicalBytes).count
            out += "\(records.count) tensors compared: \(identical) byte-identical, \(records.filter { !$0.identicalBytes && $0.beyond == 0 }.count) within tolerance, \(records.filter { $0.beyond > 0 }.count) different"
            out += equal ? "; equal\n" : "; NOT equal\n"
            StandardOutput.write(out)
        }
        if !equal { throw ExitCode(1) }
    }
}

extension Format {
    /// Short scientific notation: 1.23e-05.
    static func sci(_ d: Double) -> String {
        if d == 0 { return "0" }
        if !d.isFinite { return "\(d)" }
        var e = 0
        var m = abs(d)
        while m >= 10 { m /= 10; e += 1 }
        while m < 1 { m *= 10; e -= 1 }
        return (d < 0 ? "-" : "") + fixed(m, 2) + "e" + (e < 0 ? "-" : "+") + (abs(e) < 10 ? "0" : "") + String(abs(e))
    }
}
