import CheckpointCore
import Crypto
import ModelArchitecture
import Pruning
import ShearsJSON

/// `verify --source SRC --manifest M` as a library call: the pruned checkpoint is exactly the source with the
/// manifest's structures removed, bit for bit in the stored dtype, and nothing else touched.
public enum ManifestVerification {
    public struct Outcome {
        public var problems: [String]
        public var tensorsChecked: Int
        public var sourceFilesMatch: Bool
        /// Tensors recovery recomputed (shape-checked only) and the method, when the manifest has one.
        public var recoveredTensors = 0
        public var recoveryMethod: String? = nil
        /// Tensors training changed (shape-checked only), and the training methods in order, when
        /// the manifest has `training` records (a `finetune` output).
        public var trainedTensors = 0
        public var trainingMethods: [String] = []
    }

    /// Checks `pruned` against the source at `sourcePath` (any model ``ModelSource`` opens) and the
    /// manifest: every problem found, in words naming the tensor or file.
    public static func run(pruned: any TensorStore, sourcePath: String, manifestPath: String, threads: Int) throws -> Outcome {
        let manifest: JSONValue
        do { manifest = try JSONValue.parse(FileSystem.readFile(manifestPath, limit: 1 << 30)) } catch let e as JSONError {
            throw CheckpointError(.invalidArgument, "manifest is not valid JSON: \(e.message)", path: manifestPath)
        }
        let model = try ModelSource.open(sourcePath)
        let source = model.store, shape = model.description
        let sourceFolder = source.modelFolder ?? FileSystem.directoryName(sourcePath)
        let plan: PruningPlan
        do { plan = try PruningPlan(manifest: manifest, shape: shape) } catch { throw error.inFile(manifestPath) }
        var problems: [String] = []
        // Fused tensors (Phi-3) are compared block by block: the pruned file read as the blocks
        // of the output's widths.
        var pruned = pruned
        if !FusedTensorView.fusedGroups(shape.tensors).isEmpty {
            var out = shape
            out.hiddenSize = plan.keptHidden.count
            out.layers = plan.outputWidths
            do { pruned = try FusedTensorView.unfused(pruned, model: out) } catch {
                return Outcome(problems: ["the pruned checkpoint's fused tensors do not have the manifest's widths: \(error.message)"],
                               tensorsChecked: 0, sourceFilesMatch: true)
            }
        }
        // The manifest names the source it was made from.
        var filesMatch = true
        if let files = manifest["source"]?["files"]?.objectValue {
            for (name, digest) in files.members {
                // Names are plain files of the source folder; never follow one elsewhere.
                guard !name.isEmpty, !name.contains("/"), name != ".", name != ".." else {
                    problems.append("the manifest names source file \"\(name)\", which is not a file of the source folder"); filesMatch = false; continue
                }
                let path = FileSystem.join(sourceFolder, name)
                guard FileSystem.isFile(path) else { problems.append("source file \(name) named by the manifest is missing"); filesMatch = false; continue }
                let m = try MappedFile(path: path)
                let actual = m.withUnsafeBytes { ModelSource.hex(SHA256.hash(data: $0)) }
                if actual != digest.stringValue { problems.append("source file \(name) is not the one the manifest was made from (SHA-256 differs)"); filesMatch = false }
            }
        }
        // Every output tensor is the sliced source tensor; nothing else is present.
        let dtypeSetting = manifest["settings"]?["dtype"]?.stringValue.flatMap { DType(userName: $0) }
        var expected = Set<UTF8Key>()
        var checked = 0
        // Recovery (formats/recovery.md §5): refit tensors are checked for shape, dtype and finite
        // values only; added biases must be zero unless recovery computed them.
        let recovery = manifest["recovery"]?.objectValue
        let method = recovery?["method"]?.stringValue
        let recoveryChanged = Set((recovery?["changed_tensors"]?.arrayValue ?? []).compactMap(\.stringValue))
        let added = Set((recovery?["added_tensors"]?.arrayValue ?? []).compactMap(\.stringValue))
        // Training (formats/manifest.md "training"): tensors a finetune run changed are checked
        // like recovery's, and counted apart.
        var trainingMethods: [String] = []
        var trained = Set<String>()
        switch manifest["training"] {
        case nil, .null?: break
        case .array(let records)?:
            for (i, r) in records.enumerated() {
                guard let names = r["changed_tensors"]?.arrayValue, let m = r["method"]?.stringValue else {
                    throw CheckpointError(.invalidArgument, "training record \(i) has no \"method\" and \"changed_tensors\" list", path: manifestPath)
                }
                trainingMethods.append(m)
                for n in names {
                    guard let s = n.stringValue else { throw CheckpointError(.invalidArgument, "training record \(i) lists a changed tensor that is not a string", path: manifestPath) }
                    trained.insert(s)
                }
            }
        case let v?:
            throw CheckpointError(.invalidArgument, "the manifest's \"training\" is \(v.typeName), not an array of records", path: manifestPath)
        }
        let changed = recoveryChanged.union(trained)
        var recoveredCount = 0, trainedCount = 0
        func checkRecovered(_ name: String, dtype: DType, shape: [Int], mustBeZero: Bool) throws {
            expected.insert(UTF8Key(name))
            let by = trained.contains(name) ? "training" : "recovery"
            guard let out = pruned.tensorInfo(named: name) else { problems.append("\(name) (changed by \(by)) is missing"); return }
            guard out.shape == shape, out.dtype == dtype else {
                problems.append("\(name) is \(out.dtype.rawValue) \(out.shape), the manifest implies \(dtype.rawValue) \(shape)"); return
            }
            let f = try pruned.floats(name)
            if mustBeZero {
                if !f.allSatisfy({ $0 == 0 }) { problems.append("\(name) was added as an all-zero bias but holds non-zero values") }
            } else {
                if !f.allSatisfy(\.isFinite) { problems.append("\(name) (changed by \(by)) holds NaN or infinity") }
                if trained.contains(name) { trainedCount += 1 } else { recoveredCount += 1 }
            }
        }
        for info in source.tensorInfos {
            guard let slice = Surgery.slice(info.name, shape: info.shape, plan: plan) else { continue }
            var dt = info.dtype
            if let d = dtypeSetting, dt.isFloatingPoint, dt.convertsToFloat32 { dt = d }
            if slice.outputName.hasSuffix(".weight") {
                let bias = String(slice.outputName.dropLast("weight".count)) + "bias"
                if added.contains(bias) { try checkRecovered(bias, dtype: dt, shape: [slice.outputShape[0]], mustBeZero: !changed.contains(bias)) }
            }
            if changed.contains(slice.outputName) {
                try checkRecovered(slice.outputName, dtype: dt, shape: slice.outputShape, mustBeZero: false)
                continue
            }
            expected.insert(UTF8Key(slice.outputName))
            guard let out = pruned.tensorInfo(named: slice.outputName) else {
                problems.append("\(slice.outputName) (from \(info.name)) is missing"); continue
            }
            var dtype = info.dtype
            if let d = dtypeSetting, dtype.isFloatingPoint, dtype.convertsToFloat32 { dtype = d }
            guard out.shape == slice.outputShape, out.dtype == dtype else {
                problems.append("\(slice.outputName) is \(out.dtype.rawValue) \(out.shape), the manifest implies \(dtype.rawValue) \(slice.outputShape)"); continue
            }
            var want = try source.checked(info.name) { try source.withTensorBytes(info.name) { raw in try Surgery.sliceBytes(raw, slice, dtype: info.dtype) } }
            if dtype != info.dtype {
                var converted = [UInt8](repeating: 0, count: out.byteCount)
                try want.withUnsafeBytes { s in try converted.withUnsafeMutableBytes { try DTypeConversion.convert(s, from: info.dtype, to: dtype, into: $0) } }
                want = converted
            }
            let same = try pruned.withTensorBytes(slice.outputName) { $0.elementsEqual(want) }
            if !same { problems.append("\(slice.outputName) is not the source's \(info.name) with the manifest's rows and columns removed") }
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
        for name in changed.union(added) where !expected.contains(UTF8Key(name)) {
            problems.append("the manifest's \(trained.contains(name) ? "training record" : "recovery") names \(name), which the pruned model does not produce")
        }
        return Outcome(problems: problems, tensorsChecked: checked, sourceFilesMatch: filesMatch,
                       recoveredTensors: recoveredCount, recoveryMethod: method,
                       trainedTensors: trainedCount, trainingMethods: trainingMethods)
    }
}
