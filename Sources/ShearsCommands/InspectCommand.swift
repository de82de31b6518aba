import ArgumentParser
import CheckpointCore
import ShearsPipeline
import CompactFormat
import GGUF
import ModelArchitecture
import ShearsJSON

/// `shears inspect PATH`: what a checkpoint holds, from its headers alone.
public struct InspectCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Show what a checkpoint holds: files, sizes, tensors, dtypes, metadata and architecture.",
        discussion: """
            PATH is a .safetensors file, a model.safetensors.index.json, a model folder (with \
            config.json), a .gguf file, or a .ctz compact file. Only headers are read, so inspecting a multi-gigabyte \
            checkpoint takes milliseconds and touches no tensor data. Every file is fully validated.

            For GGUF: version, alignment, metadata (long arrays such as the tokenizer vocabulary \
            are summarized, e.g. "[49152 strings]"), tensors with their GGUF types, and the \
            architecture read from the llama-family keys.

            Exit status: 0 on success, 2 when an input is malformed or missing.
            """)

    @Argument(help: "A .safetensors file, an index .json, a model folder, a .gguf or a .ctz file.", completion: .file())
    var path: String

    @Flag(name: .long, help: "List every tensor (name, dtype, shape, bytes).")
    var tensors = false

    @Flag(name: .long, help: "Print one JSON object instead of tables.")
    var json = false

    public init() {}

    public func run() throws {
        if FileSystem.isFile(path), path.hasSuffix("." + CompactLayout.fileExtension) || CompactFile.looksLikeCompact(path) {
            do {
                StandardOutput.write(try CompactCommands.inspect(path, json: json, tensors: tensors))
            } catch {
                throw ShearsCommands.report(error)
            }
            return
        }
        if path.hasSuffix(".gguf") || ModelSource.isGGUF(path) {
            try emit { try GGUFInspectReport(path: path) }
        } else {
            try emit { try InspectReport(path: path) }
        }
    }

    /// Prints a report as text or JSON, and its warnings on stderr.
    private func emit(_ make: () throws -> any InspectOutput) throws {
        let report: any InspectOutput
        do { report = try make() } catch { throw ShearsCommands.report(error) }
        if json {
            StandardOutput.write(report.json.serialized(style: .pretty) + "\n")
        } else {
            StandardOutput.write(report.text(withTensors: tensors))
        }
        for w in report.warnings { StandardError.print("shears: warning: \(w)") }
    }
}

/// What `inspect` prints for one kind of file.
protocol InspectOutput {
    var json: JSONValue { get }
    func text(withTensors: Bool) -> String
    var warnings: [String] { get }
}

extension GGUFInspectReport: InspectOutput {
    var warnings: [String] { file.warnings }
}

extension InspectReport: InspectOutput {
    var warnings: [String] { checkpoint.warnings + (configProblem.map { [$0] } ?? []) }
}

/// Everything `inspect` reports, computed from the headers.
struct InspectReport {
    let checkpoint: Checkpoint
    let config: ModelConfiguration?
    /// Why `config.json` does not fit the tensors (issue 21: sizes from files are not trusted), as
    /// `eval` and `prune` would refuse it; inspect still shows what the file says.
    let configProblem: String?
    let dtypes: [(dtype: DType, tensors: Int, parameters: Int, bytes: Int)]

    init(path: String) throws {
        checkpoint = try Checkpoint.open(path)
        config = try checkpoint.configPath.map { (p) throws(CheckpointError) in try ModelConfiguration(path: p) }
        var problem: String? = nil
        if let config, let family = try? ModelFamilies.family(of: config) {
            do { try config.checkSizes(against: checkpoint.entries.map(\.info), naming: family.tensors, path: checkpoint.configPath) } catch {
                problem = "\(error) (eval, prune and conversion to GGUF refuse this model; verify fails its config check)"
            }
        }
        configProblem = problem
        var by: [DType: (Int, Int, Int)] = [:]
        for e in checkpoint.entries {
            let v = by[e.info.dtype] ?? (0, 0, 0)
            by[e.info.dtype] = (v.0 + 1, v.1 + e.info.elementCount, v.2 + e.info.byteCount)
        }
        dtypes = by.map { ($0.key, $0.value.0, $0.value.1, $0.value.2) }.sorted { $0.bytes != $1.bytes ? $0.bytes > $1.bytes : $0.dtype > $1.dtype }
    }

    private func relative(_ p: String) -> String {
        let folder = checkpoint.folder
        if folder != ".", p.hasPrefix(folder + "/") { return String(p.dropFirst(folder.count + 1)) }
        return p
    }

    var json: JSONValue {
        var o = JSONObject()
        o["path"] = .string(checkpoint.path)
        o["format"] = .string(checkpoint.format.rawValue)
        o["files"] = .array(checkpoint.files.map { f in
            .object(JSONObject([("path", .string(f.path)), ("bytes", .int(Int64(f.fileSize))),
                                ("header_bytes", .int(Int64(f.header.headerLength))), ("tensors", .int(Int64(f.tensors.count)))]))
        })
        if let i = checkpoint.indexPath { o["index"] = .string(i) }
        o["total_bytes"] = .int(Int64(checkpoint.fileBytes))
        o["tensor_bytes"] = .int(Int64(checkpoint.tensorBytes))
        o["tensor_count"] = .int(Int64(checkpoint.tensorCount))
        o["parameter_count"] = .int(Int64(checkpoint.parameterCount))
        var d = JSONObject()
        for t in dtypes {
            d[t.dtype.rawValue] = .object(JSONObject([("tensors", .int(Int64(t.tensors))), ("parameters", .int(Int64(t.parameters))), ("bytes", .int(Int64(t.bytes)))]))
        }
        o["dtypes"] = .object(d)
        if let m = checkpoint.metadata {
            o["metadata"] = .object(JSONObject(m.entries.map { ($0.key, JSONValue.string($0.value)) }))
        } else {
            o["metadata"] = .null
        }
        o["config"] = config?.summary ?? .null
        o["tensors"] = .array(checkpoint.entries.map { e in
            .object(JSONObject([
                ("name", .string(e.info.name)), ("dtype", .string(e.info.dtype.rawValue)),
                ("shape", .array(e.info.shape.map { .int(Int64($0)) })), ("bytes", .int(Int64(e.info.byteCount))),
                ("file", .string(relative(checkpoint.files[e.fileIndex].path))),
            ]))
        })
        o["warnings"] = .array(warnings.map { .string($0) })
        return .object(o)
    }

    func text(withTensors: Bool) -> String {
        var out = ""
        func line(_ label: String, _ value: String) { out += "  " + Format.pad(label, 18) + value + "\n" }
        let c = checkpoint
        let formatName = switch c.format {
        case .safetensors: "safetensors"
        case .shardedSafetensors: "safetensors, sharded"
        case .safetensorsSet: "safetensors, several files without an index"
        }
        out += "\(c.path)\n"
        line("format", formatName)
        if let i = c.indexPath { line("index", relative(i)) }
        if c.files.count == 1 {
            line("file", relative(c.files[0].path))
        } else {
            line("files", "\(c.files.count)")
            for f in c.files { out += "    " + Format.pad(relative(f.path), 40) + " " + Format.pad(Format.bytes(f.fileSize), 10, right: true) + "  \(f.tensors.count) tensors\n" }
        }
        line("total size", "\(Format.bytes(c.fileBytes)) (\(Format.grouped(c.fileBytes)) bytes)")
        line("tensors", Format.grouped(c.tensorCount))
        line("parameters", "\(Format.grouped(c.parameterCount)) (\(Format.count(c.parameterCount)))")
        if !dtypes.isEmpty {
            out += "  by dtype\n"
            for t in dtypes {
                out += "    " + Format.pad(t.dtype.rawValue, 12) + Format.pad(Format.grouped(t.tensors), 7, right: true) + " tensors "
                    + Format.pad(Format.grouped(t.parameters), 16, right: true) + " params "
                    + Format.pad(Format.bytes(t.bytes), 10, right: true) + "\n"
            }
        }
        if let m = c.metadata, !m.isEmpty {
            out += "  metadata\n"
            for (k, v) in m { out += "    \(k) = \(v)\n" }
        }
        if let cfg = config {
            out += "  architecture (config.json)\n"
            func opt(_ i: Int?) -> String { i.map(Format.grouped) ?? "?" }
            var type = cfg.modelType ?? "?"
            if !cfg.architectures.isEmpty { type += " (" + cfg.architectures.joined(separator: ", ") + ")" }
            line("  model type", type)
            line("  layers", opt(cfg.numHiddenLayers))
            line("  hidden size", opt(cfg.hiddenSize))
            line("  heads", "\(opt(cfg.numAttentionHeads)) query, \(opt(cfg.numKeyValueHeads)) key/value, head dim \(opt(cfg.headDim))")
            line("  intermediate", opt(cfg.intermediateSize))
            line("  vocabulary", opt(cfg.vocabSize))
            line("  tied embeddings", cfg.tieWordEmbeddings ? "yes" : "no")
            var rope = cfg.ropeTheta.map { "theta \(Format.trimmed($0))" } ?? "?"
            if let s = cfg.ropeScaling { rope += ", scaling " + JSONValue.object(s).serialized() }
            line("  rope", rope)
            if let e = cfg.rmsNormEps { line("  rms norm eps", "\(e)") }
            if let p = cfg.maxPositionEmbeddings { line("  context", Format.grouped(p)) }
            if let d = cfg.torchDtype { line("  dtype", d) }
        }
        if withTensors {
            let nameWidth = min(72, max(4, c.entries.map { $0.info.name.count }.max() ?? 4))
            out += "\n  " + Format.pad("NAME", nameWidth) + "  " + Format.pad("DTYPE", 11) + Format.pad("SHAPE", 20) + Format.pad("BYTES", 14, right: true)
            if c.files.count > 1 { out += "  FILE" }
            out += "\n"
            for e in c.entries {
                out += "  " + Format.pad(e.info.name, nameWidth) + "  " + Format.pad(e.info.dtype.rawValue, 11) + Format.pad(Format.shape(e.info.shape), 20)
                    + Format.pad(Format.grouped(e.info.byteCount), 14, right: true)
                if c.files.count > 1 { out += "  " + relative(c.files[e.fileIndex].path) }
                out += "\n"
            }
        }
        return out
    }
}

extension Format {
    /// 10000.0 → "10000", 0.5 → "0.5".
    static func trimmed(_ d: Double) -> String {
        d == d.rounded() && abs(d) < 1e15 ? String(Int(d)) : "\(d)"
    }
}
