import CheckpointCore
import CompactFormat
import ModelArchitecture
import ShearsJSON
#if canImport(Glibc)
import Glibc
#else
#error("Shears is built and tested on Linux only")
#endif

/// The compact format's part of `inspect` (formats/compact.md); conversions are ``ConvertJob``'s.
enum CompactCommands {
    /// `inspect` of a compact file: the index only, no tensor data.
    static func inspect(_ path: String, json: Bool, tensors withTensors: Bool) throws -> String {
        let f = try CompactFile(path: path)
        let config = try f.configPath.map { (p) throws(CheckpointError) in try ModelConfiguration(path: p) }
        let logical = f.tensors.reduce(0) { $0 + $1.byteLength }
        let stored = f.tensors.reduce(0) { $0 + $1.storedLength }
        let parameters = f.tensors.reduce(0) { $0 + $1.elementCount }
        var byType: [DType: (Int, Int, Int, Int)] = [:]
        for t in f.tensors {
            let v = byType[t.dtype] ?? (0, 0, 0, 0)
            byType[t.dtype] = (v.0 + 1, v.1 + t.elementCount, v.2 + t.byteLength, v.3 + t.storedLength)
        }
        let dtypes = byType.sorted { $0.value.2 != $1.value.2 ? $0.value.2 > $1.value.2 : $0.key > $1.key }
        let ratio = logical > 0 ? Double(f.fileSize) / Double(logical) : 1
        if json {
            var o = JSONObject()
            o["path"] = .string(path)
            o["format"] = .string("compact")
            o["version"] = .string("\(f.version.major).\(f.version.minor)")
            o["files"] = .array([.object(JSONObject([("path", .string(path)), ("bytes", .int(Int64(f.fileSize))), ("tensors", .int(Int64(f.tensors.count)))]))])
            o["total_bytes"] = .int(Int64(f.fileSize))
            o["tensor_bytes"] = .int(Int64(logical))
            o["stored_bytes"] = .int(Int64(stored))
            o["compression_ratio"] = .double((ratio * 10_000).rounded() / 10_000)
            o["tensor_count"] = .int(Int64(f.tensors.count))
            o["parameter_count"] = .int(Int64(parameters))
            var d = JSONObject()
            for (k, v) in dtypes {
                d[k.rawValue] = .object(JSONObject([("tensors", .int(Int64(v.0))), ("parameters", .int(Int64(v.1))), ("bytes", .int(Int64(v.2))), ("stored_bytes", .int(Int64(v.3)))]))
            }
            o["dtypes"] = .object(d)
            o["metadata"] = f.metadata.isEmpty ? .null : .object(JSONObject(f.metadata.entries.map { ($0.key, JSONValue.string($0.value)) }))
            o["config"] = config?.summary ?? .null
            o["tensors"] = .array(f.tensors.map { t in
                .object(JSONObject([
                    ("name", .string(t.name)), ("dtype", .string(t.dtype.rawValue)), ("shape", .array(t.shape.map { .int(Int64($0)) })),
                    ("bytes", .int(Int64(t.byteLength))), ("file", .string(FileSystem.baseName(path))), ("encoding", .string(t.encoding.name)),
                    ("stored_bytes", .int(Int64(t.storedLength))), ("chunks", .int(Int64(t.chunks.count))),
                ]))
            })
            o["warnings"] = .array([])
            return JSONValue.object(o).serialized(style: .pretty) + "\n"
        }
        var out = "\(path)\n"
        func line(_ l: String, _ v: String) { out += "  " + Format.pad(l, 18) + v + "\n" }
        line("format", "compact \(f.version.major).\(f.version.minor) (zstd byte planes, chunked, CRC-32C + SHA-256)")
        line("total size", "\(Format.bytes(f.fileSize)) (\(Format.grouped(f.fileSize)) bytes)")
        line("tensor data", "\(Format.bytes(logical)) decoded, ratio \(Format.fixed(ratio, 3))")
        line("tensors", Format.grouped(f.tensors.count))
        line("parameters", "\(Format.grouped(parameters)) (\(Format.count(parameters)))")
        if !dtypes.isEmpty {
            out += "  by dtype\n"
            for (k, v) in dtypes {
                out += "    " + Format.pad(k.rawValue, 12) + Format.pad(Format.grouped(v.0), 7, right: true) + " tensors "
                    + Format.pad(Format.grouped(v.1), 16, right: true) + " params " + Format.pad(Format.bytes(v.2), 10, right: true)
                    + " → " + Format.bytes(v.3) + "\n"
            }
        }
        if !f.metadata.isEmpty {
            out += "  metadata\n"
            for (k, v) in f.metadata { out += "    \(k) = \(v)\n" }
        }
        if let c = config { line("architecture", "\(c.modelType ?? "?"), \(c.numHiddenLayers.map(String.init) ?? "?") layers, hidden \(c.hiddenSize.map(String.init) ?? "?")") }
        if withTensors {
            let w = min(72, max(4, f.tensors.map { $0.name.count }.max() ?? 4))
            out += "\n  " + Format.pad("NAME", w) + "  " + Format.pad("DTYPE", 8) + Format.pad("SHAPE", 18) + Format.pad("BYTES", 13, right: true) + Format.pad("STORED", 13, right: true) + "  ENCODING\n"
            for t in f.tensors {
                out += "  " + Format.pad(t.name, w) + "  " + Format.pad(t.dtype.rawValue, 8) + Format.pad(Format.shape(t.shape), 18)
                    + Format.pad(Format.grouped(t.byteLength), 13, right: true) + Format.pad(Format.grouped(t.storedLength), 13, right: true) + "  \(t.encoding.name)\n"
            }
        }
        return out
    }
}
