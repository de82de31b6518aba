#if canImport(Glibc)
import Glibc
#else
#error("Shears is built and tested on Linux only")
#endif
import CheckpointCore
import ModelArchitecture
import ShearsJSON
import Testing
@testable import Pruning

/// Activation statistics, wanda-sp / wifv scores and selections, adaptive allocation and the
/// recovery refits against the PyTorch reference (Tools/recovery/reference.py,
/// formats/recovery.md), computed here from the activations the reference recorded.
@Suite(.serialized) struct RecoveryGoldenTests {
    static let models = ["tiny-mha", "tiny-gqa"]

    struct Golden {
        let name: String
        let folder: String
        let weights: Checkpoint
        let shape: ModelDescription
        let goldens: JSONValue
        let reference: Checkpoint
        let statistics: ActivationStatistics

        init(_ name: String) throws {
            self.name = name
            folder = fixtures + "/pruning/" + name
            weights = try Checkpoint.open(folder)
            shape = try ModelDescription(configPath: folder + "/config.json")
            goldens = try JSONValue.parse(try FileSystem.readFile(fixtures + "/recovery/\(name)/goldens.json"))
            reference = try Checkpoint.open(fixtures + "/recovery/\(name)/statistics.safetensors")
            let stream = try RecordedActivationSource(path: fixtures + "/recovery/\(name)/activations.safetensors").stream(model: folder, windows: [])
            statistics = try ActivationStatistics.collect(stream) { _ in [.attention: true, .mlp: true, .attentionIn: false, .mlpIn: false] }
        }

        func settings(_ v: JSONValue) throws -> PruningSettings {
            var s = PruningSettings()
            s.strategy = PruningStrategy(rawValue: v["strategy"]!.stringValue!)!
            s.importance = ImportanceKind(rawValue: v["importance"]!.stringValue!)!
            s.gqa = GQAPolicy(rawValue: v["gqa"]!.stringValue!)!
            if let r = v["ratio"]?.doubleValue { s.ratio = r }
            if s.strategy == .block {
                s.attentionLayers = range(v["attention_layers"])
                s.mlpLayers = range(v["mlp_layers"])
            }
            s.allocation = Allocation(rawValue: v["allocation"]!.stringValue!)!
            s.roundTo = v["round_to"]?.intValue
            s.removeLayers = v["remove_layers"]?.intValue
            return try s.resolved(for: shape)
        }

        func plan(_ caseName: String) throws -> (PruningPlan, PruningSettings) {
            let c = try #require(goldens["cases"]!.arrayValue!.first { $0["name"]?.stringValue == caseName })
            let s = try settings(c["settings"]!)
            let scores = try ActivationImportance.unitScores(kind: s.importance, statistics: statistics, weights: weights,
                                                             plan: PruningPlan(unpruned: shape), settings: s)
            return (try Selection.apply(scores, to: PruningPlan(unpruned: shape), settings: s, step: 1), s)
        }

        /// One pruned projection of a recovery golden computed on the original model's statistics.
        struct RefitCase {
            let name: String, method: RecoveryMethod, damping: Double?, file: Checkpoint
            let layer: Int, site: ActivationSite, proj: String, kept: [Int], width: Int, weightName: String, weight: [Double]
        }

        /// Every pruned `o_proj` / `down_proj` of every "original statistics" recovery golden.
        func refitCases(_ body: (RefitCase) throws -> Void) throws {
            for r in goldens["recovery"]!.arrayValue! where r["statistics"]!.stringValue! == "original" {
                let (plan, _) = try plan(r["case"]!.stringValue!)
                let method = RecoveryMethod(rawValue: r["method"]!.stringValue!)!
                let file = try Checkpoint.open(fixtures + "/recovery/\(name)/" + r["file"]!.stringValue!)
                let d = shape.headDim
                for l in 0..<shape.layerCount {
                    for (site, proj, kept, width) in [(ActivationSite.attention, "o_proj", plan.layers[l].keptHeads.flatMap { ($0 * d)..<(($0 + 1) * d) }, shape.attentionHeads * d),
                                                      (.mlp, "down_proj", plan.layers[l].keptChannels, shape.intermediateSize)] where kept.count < width {
                        let wName = site == .attention ? shape.name(.output, layer: l) : shape.name(.down, layer: l)
                        try body(RefitCase(name: r["name"]!.stringValue!, method: method, damping: r["damping"]?.doubleValue, file: file,
                                           layer: l, site: site, proj: proj, kept: kept, width: width, weightName: wName,
                                           weight: try weights.tensor(named: wName).floats().map(Double.init)))
                    }
                }
            }
        }

        func vector(_ name: String) throws -> [Double] { try reference.tensor(named: name).floats().map(Double.init) }
        func doubles64(_ c: Checkpoint, _ name: String) throws -> [Double] {
            let v = try c.tensor(named: name)
            #expect(v.dtype == .f64, "\(name) is float64")
            return try v.withUnsafeBytes { raw in Array(raw.bindMemory(to: Double.self)) }
        }
    }

    /// Largest |a − b| relative to the largest |b| of the vector (elementwise relative error is
    /// meaningless for entries that cancel to ~0).
    static func agree(_ a: [Double], _ b: [Double], _ tol: Double = 1e-6) -> Bool {
        guard a.count == b.count else { return false }
        let scale = max(b.map(abs).max() ?? 0, 1e-300)
        return zip(a, b).allSatisfy { abs($0 - $1) <= tol * scale }
    }

    @Test(arguments: models)
    func statistics(_ name: String) throws {
        let g = try Golden(name)
        #expect(g.statistics.rows == g.goldens["rows"]!.intValue!)
        var compared = 0
        for l in 0..<g.shape.layerCount {
            for site in ActivationSite.allCases {
                let st = try #require(g.statistics.site(l, site))
                let p = "layers.\(l).\(site.rawValue)"
                #expect(Self.agree(st.mean, try g.doubles64(g.reference, p + ".mean")), "\(p) mean")
                #expect(Self.agree(st.variance, try g.doubles64(g.reference, p + ".var")), "\(p) var")
                #expect(Self.agree(st.sqnorm, try g.doubles64(g.reference, p + ".sqnorm")), "\(p) sqnorm")
                if let cov = st.covariance {
                    #expect(Self.agree(cov, try g.doubles64(g.reference, p + ".cov")), "\(p) cov")
                    compared += 1
                }
            }
        }
        #expect(compared == 2 * g.shape.layerCount)
    }

    @Test(arguments: models)
    func scoresAndSelections(_ name: String) throws {
        let g = try Golden(name)
        let cases = g.goldens["cases"]!.arrayValue!
        #expect(cases.count >= 10)
        for c in cases {
            let key = c["name"]!.stringValue!
            let s = try g.settings(c["settings"]!)
            let scores = try ActivationImportance.unitScores(kind: s.importance, statistics: g.statistics, weights: g.weights,
                                                             plan: PruningPlan(unpruned: g.shape), settings: s)
            let gs = c["scores"]!
            for l in 0..<g.shape.layerCount where s.strategy == .block {
                let ga = doubles(gs["attention"]!.arrayValue![l]), gm = doubles(gs["mlp"]!.arrayValue![l])
                #expect(Self.agree(scores.attention[l], ga), "\(key) attention layer \(l): \(scores.attention[l]) vs \(ga)")
                #expect(Self.agree(scores.mlp[l], gm), "\(key) mlp layer \(l)")
            }
            if s.strategy == .channel { #expect(Self.agree(scores.hidden, doubles(gs["hidden"])), "\(key) hidden") }
            if s.strategy == .layer { #expect(Self.agree(scores.layers, doubles(gs["layers"])), "\(key) layers") }
            let plan = try Selection.apply(scores, to: PruningPlan(unpruned: g.shape), settings: s, step: 1)
            let kept = c["kept"]!
            for l in 0..<g.shape.layerCount {
                #expect(plan.layers[l].keptHeads == ints(kept["heads"]!.arrayValue![l]), "\(key) layer \(l) heads")
                #expect(plan.layers[l].keptKeyValueHeads == ints(kept["kv_heads"]!.arrayValue![l]), "\(key) layer \(l) kv heads")
                #expect(plan.layers[l].keptChannels == ints(kept["channels"]!.arrayValue![l]), "\(key) layer \(l) channels")
            }
            #expect(plan.keptHidden == ints(kept["hidden"]), "\(key) hidden")
            #expect(plan.keptLayers == ints(kept["layers"]), "\(key) layers")
        }
    }

    /// Each method's W′ and b′ in float64, from the statistics accumulated here.
    @Test(arguments: models)
    func refits(_ name: String) throws {
        let g = try Golden(name)
        var checked = 0
        try g.refitCases { c in
            let key = "\(c.name) layer \(c.layer) \(c.proj)"
            // One block, then blocks of 3 output rows and of 1 (the blocked least-squares solve).
            for memory in [nil, 3 * (c.width * 8), 1] as [Int?] {
                let refit = try Recovery.refit(c.method, weight: c.weight, rows: g.shape.hiddenSize, cols: c.width, bias: nil, kept: c.kept,
                                               statistics: try #require(g.statistics.site(c.layer, c.site)), damping: c.damping, what: c.weightName,
                                               solveMemory: memory)
                #expect(Self.agree(refit.weight, try g.doubles64(c.file, "layers.\(c.layer).\(c.proj).weight")), "\(key) weight, solve memory \(memory ?? -1)")
                #expect(Self.agree(refit.bias, try g.doubles64(c.file, "layers.\(c.layer).\(c.proj).bias")), "\(key) bias, solve memory \(memory ?? -1)")
                checked += 1
            }
        }
        #expect(checked >= 30)
        #expect(Recovery.solveBlockRows(rows: 64, removed: 8, kept: 24, memory: 3 * 32 * 8) == 3)
        #expect(Recovery.solveBlockRows(rows: 64, removed: 8, kept: 24, memory: 1) == 1)
        #expect(Recovery.solveBlockRows(rows: 64, removed: 8, kept: 24, memory: nil) == 64)
    }

    /// `--covariance-precision float32` (the default of `prune`): the same recorded activations
    /// accumulated with float32 sums over blocks of rows. Its covariances and refits stay within the
    /// bounds formats/recovery.md §6 gives for it (measured here: covariance 2e-7, refits 5e-5 of
    /// the largest entry), and the means and variances (always float64) are unchanged.
    @Test(arguments: models)
    func float32CovarianceRefitsStayWithinTheirBound(_ name: String) throws {
        let g = try Golden(name)
        let stream = try RecordedActivationSource(path: fixtures + "/recovery/\(name)/activations.safetensors").stream(model: g.folder, windows: [])
        let st32 = try ActivationStatistics.collect(stream, sites: { _ in [.attention: true, .mlp: true] }, precision: .float32)
        var worstCov = 0.0, worstRefit = 0.0, refits = 0
        func relative(_ a: [Double], _ b: [Double]) -> Double {
            let scale = max(b.map(abs).max() ?? 0, 1e-300)
            return zip(a, b).map { abs($0 - $1) }.max()! / scale
        }
        for l in 0..<g.shape.layerCount {
            for site in [ActivationSite.attention, .mlp] {
                let a = try #require(st32.site(l, site)), b = try #require(g.statistics.site(l, site))
                #expect(a.precision == .float32 && b.precision == .float64)
                #expect(a.mean == b.mean && a.variance == b.variance && a.sqnorm == b.sqnorm)
                worstCov = max(worstCov, relative(try #require(a.covariance), try g.doubles64(g.reference, "layers.\(l).\(site.rawValue).cov")))
            }
        }
        try g.refitCases { c in
            guard c.method.needsCovariance else { return }
            let refit = try Recovery.refit(c.method, weight: c.weight, rows: g.shape.hiddenSize, cols: c.width, bias: nil, kept: c.kept,
                                           statistics: try #require(st32.site(c.layer, c.site)), damping: c.damping, what: c.weightName)
            worstRefit = max(worstRefit, relative(refit.weight, try g.doubles64(c.file, "layers.\(c.layer).\(c.proj).weight")),
                             relative(refit.bias, try g.doubles64(c.file, "layers.\(c.layer).\(c.proj).bias")))
            refits += 1
        }
        #expect(refits >= 10)
        #expect(worstCov > 0 && worstCov <= 1e-5, "covariance: \(worstCov)")
        #expect(worstRefit <= 2e-4, "refits: \(worstRefit)")
    }

    /// anchored-ls on float32 covariances falls back to the float64 solve when the kept covariance
    /// is positive definite only in float64: two identical kept inputs (±1) make `C_KK` all ones,
    /// which plus `λ = 1e-10` factors in float64 but rounds back to a singular matrix in float32.
    /// The covariances are exact here under both precisions, so the refit must be the float64 one
    /// bit for bit.
    @Test func float32SolveFallsBackToFloat64() throws {
        let x0: [Float] = [1, -1, 1, -1, 1, -1, 1, -1], x2: [Float] = [1, 0, 1, 0, 1, 0, 1, 0]
        let rows = (0..<8).flatMap { [x0[$0], x0[$0], x2[$0]] }
        var st32 = SiteStatistics(width: 3, covariance: true, precision: .float32)
        var st64 = SiteStatistics(width: 3, covariance: true, precision: .float64)
        rows.withUnsafeBufferPointer { st32.add($0, rows: 8); st64.add($0, rows: 8) }
        let w = [0.5, -0.25, 1.0, 0.75, 0.125, -0.5]
        let cov = try #require(st32.covarianceView)
        #expect(cov[0, 1] == 1 && cov[1, 1] == 1 && cov[0, 2] == 0.5)
        var out = [0.5, -0.25, 0.75, 0.125]
        #expect(Recovery.addSolutionFloat32(weight: w, cols: 3, rows: 2, kept: [0, 1], rowsUsed: [2], cov: cov, lambda: 1e-10, block: 2, into: &out) == 0)
        #expect(out == [0.5, -0.25, 0.75, 0.125], "a declined float32 solve leaves the output alone")
        let r32 = try Recovery.refit(.anchoredLS, weight: w, rows: 2, cols: 3, bias: nil, kept: [0, 1], statistics: st32, damping: 1e-10, what: "t")
        let r64 = try Recovery.refit(.anchoredLS, weight: w, rows: 2, cols: 3, bias: nil, kept: [0, 1], statistics: st64, damping: 1e-10, what: "t")
        #expect(r32 == r64)
        // The correction W_P·C_PK·(C_KK + λI)⁻¹ = w_2 · 0.5/(2 + 1e-10) on each kept input.
        #expect(abs(r64.weight[0] - (0.5 + 1.0 * 0.5 / (2 + 1e-10))) < 1e-9 && abs(r64.weight[3] - (0.125 - 0.5 * 0.5 / (2 + 1e-10))) < 1e-9)
    }

    /// A covariance accumulated in a spilled file (``GramBuffer``) holds the same bits as one in
    /// memory, and its file is gone from the folder from the start.
    @Test func spilledCovarianceIsTheSame() throws {
        let folder = temporaryFolder("gram-spill")
        try FileSystem.createDirectory(folder)
        defer { _ = system("rm -rf '\(folder)'") }
        let activations = try Checkpoint.open(fixtures + "/recovery/tiny-gqa/activations.safetensors")
        let name = "layers.1.mlp"
        let view = try activations.tensor(named: name)
        let values = try view.floats()
        let rows = view.shape[0], width = view.shape[1]
        var inMemory = SiteStatistics(width: width, covariance: true)
        var spilled = try SiteStatistics(width: width, spillingCovarianceInto: folder)
        #expect(spilled.covarianceIsSpilled && !inMemory.covarianceIsSpilled)
        #expect(try FileSystem.contents(of: folder).isEmpty)
        // In two chunks, as windows arrive.
        let half = rows / 2 * width
        values.withUnsafeBufferPointer { all in
            let first = UnsafeBufferPointer(rebasing: all[0..<half]), second = UnsafeBufferPointer(rebasing: all[half...])
            inMemory.add(first, rows: rows / 2); inMemory.add(second, rows: rows - rows / 2)
            spilled.add(first, rows: rows / 2); spilled.add(second, rows: rows - rows / 2)
        }
        #expect(spilled == inMemory)
        let a = try #require(inMemory.covariance), b = try #require(spilled.covariance)
        #expect(a.count == width * width && a == b)
        let golden = try Golden("tiny-gqa")
        #expect(Self.agree(b, try golden.doubles64(golden.reference, name + ".cov")))
        #expect(try FileSystem.contents(of: folder).isEmpty)
        // A folder that cannot take the file is an error naming it, not a crash.
        #expect(throws: CheckpointError.self) { try SiteStatistics(width: 8, spillingCovarianceInto: folder + "/missing") }
    }

    /// One statistics pass that selects and refits each layer in turn (what `prune` does for
    /// wifv + anchored-ls with a local ranking) gives the plan of the whole-model selection and the
    /// same refit bits as the separate recovery pass, with every covariance spilled or none.
    @Test func onePassSelectionAndRecoveryMatchTwoPasses() throws {
        let g = try Golden("tiny-gqa")
        let (plan0, s0) = try g.plan("block-wifv-query-0.5")
        var s = s0
        s.recovery = .anchoredLS
        let activations = fixtures + "/recovery/tiny-gqa/activations.safetensors"
        func stream() throws -> any ActivationStream { try RecordedActivationSource(path: activations).stream(model: g.folder, windows: []) }
        func tensors(_ out: RecoveredTensors) throws -> [String: [Float]] {
            var d: [String: [Float]] = [:]
            for (name, c) in out.values { d[name] = try c.tensor(named: name).floats() }
            return d
        }
        let twoScratch = temporaryFolder("recovery-two")
        defer { _ = system("rm -rf '\(twoScratch)'") }
        var twoPlan = plan0
        let two = try RecoveryRun(source: g.weights, settings: s).run(plan: &twoPlan, openStream: stream, scratch: twoScratch)
        for covarianceMemory in [Int.max, 0] {
            let scratch = temporaryFolder("recovery-one")
            defer { _ = system("rm -rf '\(scratch)'") }
            var run = RecoveryRun(source: g.weights, settings: s)
            run.covarianceMemory = covarianceMemory
            run.selectLayer = { l, stats, plan in
                var sl = s
                sl.attentionLayers = s.attentionLayers!.contains(l) ? LayerRange(l, l + 1) : LayerRange(l, l)
                sl.mlpLayers = s.mlpLayers!.contains(l) ? LayerRange(l, l + 1) : LayerRange(l, l)
                let scores = try ActivationImportance.unitScores(kind: s.importance, statistics: stats, weights: g.weights, plan: plan, settings: sl)
                plan = try Selection.apply(scores, to: plan, settings: sl, step: 1)
            }
            var plan = PruningPlan(unpruned: g.shape)
            var timing = RecoveryRun.Timing()
            let one = try run.run(plan: &plan, openStream: stream, scratch: scratch, reuse: nil, timing: &timing)
            #expect(plan == plan0, "covariance memory \(covarianceMemory)")
            #expect(timing.spilledSites == (covarianceMemory == 0 ? 2 * g.shape.layerCount : 0))
            #expect(one.changed == two.changed && one.added == two.added)
            #expect(try tensors(one) == tensors(two), "covariance memory \(covarianceMemory): refits differ")
            #expect(try FileSystem.contents(of: scratch).allSatisfy { $0.hasPrefix("layer-") }, "only the refit files remain")
        }
    }

    /// The whole run (statistics pass, selection, refits, scratch files) through ``RecoveryRun``:
    /// float64 covariances to 1e-6, the default float32 ones within their bound (§6).
    @Test(arguments: [(CovariancePrecision.float64, 1e-6), (nil, 2e-4)] as [(CovariancePrecision?, Double)])
    func recoveryRunWritesTheRefits(_ precision: CovariancePrecision?, _ tolerance: Double) throws {
        let g = try Golden("tiny-gqa")
        let (plan0, s0) = try g.plan("block-wifv-query-0.5")
        var s = s0
        s.recovery = .anchoredLS
        s.covariancePrecision = precision
        #expect(s.effectiveCovariancePrecision == precision ?? .float32)
        var plan = plan0
        let scratch = temporaryFolder("recovery-run")
        defer { _ = system("rm -rf '\(scratch)'") }
        let stream = try RecordedActivationSource(path: fixtures + "/recovery/tiny-gqa/activations.safetensors").stream(model: g.folder, windows: [])
        let out = try RecoveryRun(source: g.weights, settings: s).run(plan: &plan, openStream: { stream }, scratch: scratch)
        #expect(plan == plan0)
        #expect(out.attentionBias && out.mlpBias)
        let golden = try Checkpoint.open(fixtures + "/recovery/tiny-gqa/recovery-anchored-ls-0.1.safetensors")
        var worst = 0.0
        for l in 0..<g.shape.layerCount {
            for proj in ["self_attn.o_proj", "mlp.down_proj"] {
                let short = proj.split(separator: ".").last!
                for kind in ["weight", "bias"] {
                    let name = "model.layers.\(l).\(proj).\(kind)"
                    let c = try #require(out.values[name], "\(name) refit")
                    let mine = try c.tensor(named: name).floats().map(Double.init)
                    let ref = try g.doubles64(golden, "layers.\(l).\(short).\(kind)")
                    #expect(Self.agree(mine, ref, tolerance), "\(name)")
                    worst = max(worst, zip(mine, ref).map { abs($0 - $1) }.max()! / ref.map(abs).max()!)
                    #expect(out.changed.contains(name))
                }
            }
            // Zero biases that make attention_bias / mlp_bias configs complete.
            for p in ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "mlp.gate_proj", "mlp.up_proj"] {
                #expect(out.added.contains("model.layers.\(l).\(p).bias"))
            }
        }
        // The float32 run differs from the float64 reference, which shows the setting took effect.
        if precision == nil { #expect(worst > 1e-9) }
    }
}
