import CheckpointCore
import ModelArchitecture
import Pruning
import ShearsJSON

/// `verify --source SRC --manifest M`: the pruned checkpoint is exactly the source with the
/// manifest's structures removed, bit for bit in the stored dtype, and nothing else touched.
enum ManifestCheck {
    struct Outcome {
        var problems: [String]
        var tensorsChecked: Int
        var sourceFilesMatch: Bool
    }

    static func run(pruned: any TensorStore, sourcePath: String, manifestPath: String, threads: Int) throws -> Outcome {
        let manifest: JSONValue
        do { manifest = try JSONValue.parse(FileSystem.readFile(manifestPath, limit: 1 << 30)) } catch let e as JSONError {
            throw CheckpointError(.invalidArgument, "manifest is not valid JSON: \(e.message)", path: manifestPath)
        }
        let source = try Checkpoint.open(sourcePath)
        guard let configPath = source.configPath else {
            throw CheckpointError(.invalidConfig, "the source has no config.json", path: sourcePath)
        }
        let shape = try ModelShape(configuration: ModelConfiguration(path: configPath))
        let plan: PruningPlan
        do { plan = try PruningPlan(manifest: manifest, shape: shape) } catch { throw error.inFile(manifestPath) }
        var problems: [String] = []
        // The manifest names the source it was made from.
        var filesMatch = true
        if let files = manifest["source"]?["files"]?.objectValue {
            for (name, digest) in files.members {
                // Names are plain files of the source folder; never follow one elsewhere.
                guard !name.isEmpty, !name.contains("/"), name != ".", name != ".." else {
                    problems.append("the manifest names source file \"\(name)\", which is not a file of the source folder"); filesMatch = false; continue
                }
                let path = FileSystem.join(source.folder, name)
                guard FileSystem.isFile(path) else { problems.append("source file \(name) named by the manifest is missing"); filesMatch = false; continue }
                let m = try MappedFile(path: path)
                let actual = m.withUnsafeBytes { TensorHashes.hex(SHA256Digest.of($0)) }
                if actual != digest.stringValue { problems.append("source file \(name) is not the one the manifest was made from (SHA-256 differs)"); filesMatch = false }
            }
        }
        // Every output tensor is the sliced source tensor; nothing else is present.
        let dtypeSetting = manifest["settings"]?["dtype"]?.stringValue.flatMap { DType(userName: $0) }
        var expected = Set<UTF8Key>()
        var checked = 0
        for e in source.entries {
            guard let slice = Surgery.slice(e.info.name, shape: e.info.shape, plan: plan) else { continue }
            expected.insert(UTF8Key(slice.outputName))
            guard let out = pruned.tensorInfo(named: slice.outputName) else {
                problems.append("\(slice.outputName) (from \(e.info.name)) is missing"); continue
            }
            var dtype = e.info.dtype
            if let d = dtypeSetting, dtype.isFloatingPoint, dtype.convertsToFloat32 { dtype = d }
            guard out.shape == slice.outputShape, out.dtype == dtype else {
                problems.append("\(slice.outputName) is \(out.dtype.rawValue) \(out.shape), the manifest implies \(dtype.rawValue) \(slice.outputShape)"); continue
            }
            var want = try source.tensor(named: e.info.name).withUnsafeBytes { (raw) throws(CheckpointError) in try Surgery.sliceBytes(raw, slice, dtype: e.info.dtype) }
            if dtype != e.info.dtype {
                var converted = [UInt8](repeating: 0, count: out.byteCount)
                try want.withUnsafeBytes { s in try converted.withUnsafeMutableBytes { try DTypeConversion.convert(s, from: e.info.dtype, to: dtype, into: $0) } }
                want = converted
            }
            let same = try pruned.withTensorBytes(slice.outputName) { $0.elementsEqual(want) }
            if !same { problems.append("\(slice.outputName) is not the source's \(e.info.name) with the manifest's rows and columns removed") }
            checked += 1
        }
        for info in pruned.tensorInfos where !expected.contains(UTF8Key(info.name)) {
            problems.append("\(info.name) is not accounted for by the manifest")
        }
        let parameters = pruned.tensorInfos.reduce(0) { $0 + $1.elementCount }
        if let recorded = manifest["result"]?["parameters"]?.intValue, recorded != parameters {
            problems.append("the checkpoint has \(parameters) parameters, the manifest records \(recorded)")
        }
        if let recorded = manifest["source"]?["parameters"]?.intValue, recorded != source.parameterCount {
            problems.append("the source has \(source.parameterCount) parameters, the manifest records \(recorded)")
        }
        return Outcome(problems: problems, tensorsChecked: checked, sourceFilesMatch: filesMatch)
    }
}

import Crypto
enum SHA256Digest {
    static func of(_ bytes: UnsafeRawBufferPointer) -> SHA256.Digest { SHA256.hash(data: bytes) }
}
