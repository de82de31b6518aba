import CheckpointCore
import GGUF
import ModelArchitecture
import ShearsJSON

/// What `inspect` reports for a GGUF file: the same keys as for safetensors, plus `gguf_version`,
/// `alignment`, `data_offset` and typed metadata.
struct GGUFInspectReport {
    let file: GGUFFile
    /// The model summary, when a family reads the architecture.
    let hyperparameters: GGUFModelMetadata?
    let types: [(type: GGMLType, tensors: Int, parameters: Int, bytes: Int)]

    /// Arrays longer than this are shown as "[N type]".
    static let arrayLimit = 16

    init(path: String) throws {
        file = try GGUFFile(path: path)
        hyperparameters = try? GGUFModelMetadata(gguf: file)
        var by: [GGMLType: (Int, Int, Int)] = [:]
        for t in file.tensors {
            let v = by[t.type] ?? (0, 0, 0)
            by[t.type] = (v.0 + 1, v.1 + t.elementCount, v.2 + t.byteCount)
        }
        types = by.map { ($0.key, $0.value.0, $0.value.1, $0.value.2) }.sorted { $0.bytes != $1.bytes ? $0.bytes > $1.bytes : $0.type.rawValue < $1.type.rawValue }
    }

    var parameterCount: Int { file.tensors.reduce(0) { $0 + $1.elementCount } }
    var tensorBytes: Int { file.tensors.reduce(0) { $0 + $1.byteCount } }

    static func json(_ v: GGUFValue) -> JSONValue {
        switch v {
        case .array(let t, let items):
            if items.count > arrayLimit { return .string(v.summary(maxElements: arrayLimit)) }
            _ = t
            return .array(items.map(json))
        case .string(let s): return .string(s.string)
        case .bool(let b): return .bool(b)
        case .float32(let f): return .double(Double("\(f)") ?? Double(f))
        case .float64(let d): return .double(d)
        case .uint64(let u): return .uint(u)
        default: return .int(Int64(v.intValue ?? 0))
        }
    }

    var json: JSONValue {
        var o = JSONObject()
        o["path"] = .string(file.path)
        o["format"] = .string("gguf")
        o["gguf_version"] = .int(Int64(file.version))
        o["alignment"] = .int(Int64(file.alignment))
        o["data_offset"] = .int(Int64(file.dataStart))
        o["files"] = .array([.object(JSONObject([("path", .string(file.path)), ("bytes", .int(Int64(file.fileSize))),
                                                 ("header_bytes", .int(Int64(file.dataStart))), ("tensors", .int(Int64(file.tensors.count)))]))])
        o["total_bytes"] = .int(Int64(file.fileSize))
        o["tensor_bytes"] = .int(Int64(tensorBytes))
        o["tensor_count"] = .int(Int64(file.tensors.count))
        o["parameter_count"] = .int(Int64(parameterCount))
        var d = JSONObject()
        for t in types {
            d[t.type.name] = .object(JSONObject([("tensors", .int(Int64(t.tensors))), ("parameters", .int(Int64(t.parameters))), ("bytes", .int(Int64(t.bytes)))]))
        }
        o["dtypes"] = .object(d)
        o["metadata"] = .object(JSONObject(file.metadata.map { ($0.key, GGUFInspectReport.json($0.value)) }))
        o["metadata_types"] = .object(JSONObject(file.metadata.map { kv -> (String, JSONValue) in
            if case .array(let t, _) = kv.value { return (kv.key, .string("array[\(t.name)]")) }
            return (kv.key, .string(kv.value.type.name))
        }))
        if let hp = hyperparameters {
            var c = JSONObject()
            c["architecture"] = .string(hp.architecture)
            c["architectures"] = .array([.string(hp.family.architectureClass)])
            c["num_hidden_layers"] = .int(Int64(hp.layers))
            c["hidden_size"] = .int(Int64(hp.hiddenSize))
            c["num_attention_heads"] = .int(Int64(hp.heads))
            c["num_key_value_heads"] = .int(Int64(hp.kvHeads))
            c["head_dim"] = .int(Int64(hp.headDim))
            c["intermediate_size"] = .int(Int64(hp.intermediateSize))
            c["vocab_size"] = .int(Int64(hp.vocabSize))
            c["max_position_embeddings"] = .int(Int64(hp.contextLength))
            c["rope_theta"] = .double(hp.ropeTheta)
            c["rope_scaling"] = hp.ropeScaling.map { .object($0) } ?? .null
            c["rms_norm_eps"] = .double(hp.rmsNormEps)
            c["tie_word_embeddings"] = .bool(hp.tiedEmbeddings)
            if let l = hp.layerSizes {
                c["num_attention_heads_per_layer"] = .array(l.map { .int(Int64($0.numAttentionHeads)) })
                c["num_key_value_heads_per_layer"] = .array(l.map { .int(Int64($0.numKeyValueHeads)) })
                c["intermediate_size_per_layer"] = .array(l.map { .int(Int64($0.intermediateSize)) })
            }
            o["config"] = .object(c)
        } else {
            o["config"] = .null
        }
        o["tensors"] = .array(file.tensors.map { t in
            .object(JSONObject([
                ("name", .string(t.name)), ("dtype", .string(t.type.name)),
                ("shape", .array(t.shape.map { .int(Int64($0)) })), ("bytes", .int(Int64(t.byteCount))),
                ("file", .string(FileSystem.baseName(file.path))), ("offset", .int(Int64(t.offset))),
            ]))
        })
        o["warnings"] = .array(file.warnings.map { .string($0) })
        return .object(o)
    }

    func text(withTensors: Bool) -> String {
        var out = ""
        func line(_ label: String, _ value: String) { out += "  " + Format.pad(label, 18) + value + "\n" }
        out += "\(file.path)\n"
        line("format", "GGUF v\(file.version), alignment \(file.alignment), data at byte \(Format.grouped(file.dataStart))")
        line("total size", "\(Format.bytes(file.fileSize)) (\(Format.grouped(file.fileSize)) bytes)")
        line("tensors", Format.grouped(file.tensors.count))
        line("parameters", "\(Format.grouped(parameterCount)) (\(Format.count(parameterCount)))")
        if !types.isEmpty {
            out += "  by type\n"
            for t in types {
                out += "    " + Format.pad(t.type.name, 12) + Format.pad(Format.grouped(t.tensors), 7, right: true) + " tensors "
                    + Format.pad(Format.grouped(t.parameters), 16, right: true) + " params "
                    + Format.pad(Format.bytes(t.bytes), 10, right: true) + "\n"
            }
        }
        out += "  metadata\n"
        for (k, v) in file.metadata {
            var s = v.summary(maxElements: GGUFInspectReport.arrayLimit)
            if s.count > 100 { s = String(s.prefix(97)) + "..." }
            s = s.replacing("\n", with: "\\n")
            out += "    \(k) = \(s)\n"
        }
        if let hp = hyperparameters {
            out += "  architecture (GGUF metadata)\n"
            line("  model type", "\(hp.architecture) (\(hp.family.architectureClass))")
            line("  layers", Format.grouped(hp.layers))
            line("  hidden size", Format.grouped(hp.hiddenSize))
            if let l = hp.layerSizes {
                line("  heads", "per layer (max \(hp.heads) query, \(hp.kvHeads) key/value), head dim \(hp.headDim)")
                line("  intermediate", "per layer (max \(Format.grouped(hp.intermediateSize)))")
                out += "    per layer: " + Format.pad("layer", 6) + Format.pad("heads", 7, right: true) + Format.pad("kv", 5, right: true)
                    + Format.pad("mlp", 8, right: true) + "\n"
                for (i, s) in l.enumerated() {
                    out += "               " + Format.pad(String(i), 6) + Format.pad(String(s.numAttentionHeads), 7, right: true)
                        + Format.pad(String(s.numKeyValueHeads), 5, right: true) + Format.pad(String(s.intermediateSize), 8, right: true) + "\n"
                }
            } else {
                line("  heads", "\(hp.heads) query, \(hp.kvHeads) key/value, head dim \(hp.headDim)")
                line("  intermediate", Format.grouped(hp.intermediateSize))
            }
            line("  vocabulary", Format.grouped(hp.vocabSize))
            line("  tied embeddings", hp.tiedEmbeddings ? "yes" : "no")
            var rope = "theta \(Format.trimmed(hp.ropeTheta))"
            if let s = hp.ropeScaling { rope += ", scaling " + JSONValue.object(s).serialized() }
            line("  rope", rope)
            line("  rms norm eps", "\(hp.rmsNormEps)")
            line("  context", Format.grouped(hp.contextLength))
        }
        if withTensors {
            let nameWidth = min(72, max(4, file.tensors.map { $0.name.count }.max() ?? 4))
            out += "\n  " + Format.pad("NAME", nameWidth) + "  " + Format.pad("TYPE", 9) + Format.pad("SHAPE", 20) + Format.pad("BYTES", 14, right: true) + "\n"
            for t in file.tensors {
                out += "  " + Format.pad(t.name, nameWidth) + "  " + Format.pad(t.type.name, 9) + Format.pad(Format.shape(t.shape), 20)
                    + Format.pad(Format.grouped(t.byteCount), 14, right: true) + "\n"
            }
        }
        return out
    }
}
