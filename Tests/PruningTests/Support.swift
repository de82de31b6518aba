import CheckpointCore
import ModelArchitecture
import ShearsJSON
@testable import Pruning
#if canImport(Glibc)
import Glibc
#else
#error("Shears is built and tested on Linux only")
#endif

let fixtures: String = {
    var p = #filePath
    for _ in 0..<3 { p = String(p[..<p.lastIndex(of: "/")!]) }
    return p + "/Fixtures"
}()

let repositoryRoot: String = FileSystem.directoryName(fixtures)

/// One golden model: its folder, shape, recorded gradients and goldens.json.
struct GoldenModel {
    let name: String
    let folder: String
    let checkpoint: Checkpoint
    let shape: ModelDescription
    let goldens: JSONValue
    var samples: Int { goldens["samples"]!.intValue! }

    init(_ name: String) throws {
        self.name = name
        folder = name == "tiny-llama" ? fixtures + "/safetensors/tiny-llama" : fixtures + "/pruning/" + name
        checkpoint = try Checkpoint.open(folder)
        shape = try ModelDescription(configPath: folder + "/config.json")
        goldens = try JSONValue.parse(try FileSystem.readFile(fixtures + "/pruning/\(name)/goldens.json"))
    }

    static let names = ["tiny-llama", "tiny-mha", "tiny-gqa"]

    var gradientSource: RecordedGradientSource {
        RecordedGradientSource(gradients: fixtures + "/pruning/\(name)/gradients.safetensors",
                               fisher: fixtures + "/pruning/\(name)/fisher.safetensors", samples: samples)
    }

    /// Scores of step 1 under `settings` (resolved), from the right estimator.
    func scores(_ settings: PruningSettings) throws -> UnitScores {
        let plan = PruningPlan(unpruned: shape)
        switch settings.importance {
        case .l1, .l2:
            var e = MagnitudeImportance(power: settings.importance == .l1 ? 1 : 2, checkpoint: checkpoint)
            return try e.scores(plan: plan, settings: settings, step: 1)
        case .random:
            var e = RandomImportance(seed: settings.seed)
            return try e.scores(plan: plan, settings: settings, step: 1)
        case .taylor:
            let folder = self.folder
            var e = TaylorImportance(variant: settings.taylor, source: gradientSource, batch: { _ in [] }, materialize: { _ in MaterializedModel(path: folder, store: try Checkpoint.open(folder)) })
            return try e.scores(plan: plan, settings: settings, step: 1)
        case .wandaSP, .wifv:
            let folder = self.folder
            var e = ActivationImportance(kind: settings.importance, source: RecordedActivationSource(path: fixtures + "/recovery/\(name)/activations.safetensors"),
                                         windows: { _ in [] }, materialize: { _ in MaterializedModel(path: folder, store: try Checkpoint.open(folder)) })
            return try e.scores(plan: plan, settings: settings, step: 1)
        }
    }
}

/// Settings for a golden entry's estimator name ("l1", "random", "param_mix", ...).
func settings(importance name: String, reduction: String?, gqa: String = "kv-group") -> PruningSettings {
    var s = PruningSettings()
    if let v = TaylorVariant(rawValue: name) {
        s.importance = .taylor
        s.taylor = v
    } else {
        s.importance = ImportanceKind(rawValue: name)!
    }
    s.reduction = reduction.flatMap(GroupReduction.init(rawValue:))
    s.gqa = GQAPolicy(rawValue: gqa)!
    return s
}

func range(_ v: JSONValue?) -> LayerRange { let a = v!.arrayValue!; return LayerRange(a[0].intValue!, a[1].intValue!) }

func doubles(_ v: JSONValue?) -> [Double] { v!.arrayValue!.map { $0.doubleValue! } }
func ints(_ v: JSONValue?) -> [Int] { v!.arrayValue!.map { $0.intValue! } }

/// |a − b| ≤ 1e-4·max(|b|, tiny) for each element.
func close(_ a: [Double], _ b: [Double], relative: Double = 1e-4) -> Bool {
    a.count == b.count && zip(a, b).allSatisfy { x, y in abs(x - y) <= relative * max(abs(y), 1e-12) }
}

func temporaryFolder(_ tag: String) -> String {
    let p = "/tmp/shears-pruning-tests-\(getpid())-\(tag)"
    _ = system("rm -rf '\(p)'")
    return p
}
