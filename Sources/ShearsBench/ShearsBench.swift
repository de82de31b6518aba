import CheckpointCore
import ModelArchitecture
import CompactFormat
#if canImport(Glibc)
import Glibc
#else
#error("Shears is built and tested on Linux only")
#endif
import ShearsConcurrency
import Pruning
import ShearsBLAS

/// Benchmarks of the formats core, run by `Tools/bench` in a release build. Every figure is
/// reported beside a baseline measured in the same process (memcpy of the same bytes).
///
///     shears-bench make PATH GB          write a synthetic BF16 checkpoint of about GB gigabytes
///     shears-bench make-many PATH N      write a checkpoint with N small tensors
///     shears-bench read PATH             read every tensor (copy out) vs memcpy of the file
///     shears-bench convert PATH          BF16/F16 → F32 conversion vs memcpy
///     shears-bench write PATH OUT        rewrite the checkpoint with the streaming writer
///     shears-bench inspect PATH          open + validate headers (best of 20)
///     shears-bench refit [W K H ROWS]     anchored-ls refit of one projection (default: a Llama-3-8B
///                                        down_proj, 14336 inputs, 10752 kept, 4096 outputs, damping
///                                        0.1), float64 then float32 covariances and solves; set
///                                        OPENBLAS_CORETYPE as shears does (OpenBLASBootstrap)
///     shears-bench gram [W ROWS PANEL]    one covariance accumulation step (`ROWS × W`, default a
///                                        Llama-3-8B down_proj input, 14336 wide, 1024 rows, panels
///                                        of 512): float64 `dsyrk` vs float32 panels summed in float64
@main
enum ShearsBench {
    static func main() throws {
        let args = Array(CommandLine.arguments.dropFirst())
        guard let verb = args.first else { print("usage: shears-bench make|make-many|read|convert|write|inspect ..."); exit(64) }
        switch verb {
        case "make": try make(path: args[1], gigabytes: Double(args[2])!)
        case "make-many": try makeMany(path: args[1], count: Int(args[2])!)
        case "read": try read(path: args[1])
        case "convert": try convert(path: args[1])
        case "write": try write(path: args[1], out: args[2])
        case "inspect": try inspect(path: args[1])
        case "make-normal": try makeNormal(path: args[1], gigabytes: Double(args[2])!, dtype: DType(userName: args[3])!)
        case "to-dtype": try toDType(path: args[1], out: args[2], dtype: DType(userName: args[3])!)
        case "compact": try compact(path: args[1], out: args[2], level: Int32(args.count > 3 ? args[3] : "3")!)
        case "refit":
            let sizes = args.dropFirst().map { Int($0) }
            guard !sizes.contains(nil) else { print("usage: shears-bench refit [W K H ROWS] (whole numbers)"); exit(64) }
            try refit(sizes.map { $0! })
        case "gram":
            let sizes = args.dropFirst().map { Int($0) }
            guard !sizes.contains(nil) else { print("usage: shears-bench gram [W ROWS PANEL] (whole numbers)"); exit(64) }
            try gram(sizes.map { $0! })
        default: print("unknown verb \(verb)"); exit(64)
        }
    }

    static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }

    static func best(_ n: Int, _ body: () throws -> Void) rethrows -> Double {
        var t = Double.infinity
        for _ in 0..<n {
            let t0 = now()
            try body()
            t = min(t, now() - t0)
        }
        return t
    }

    static func gbps(_ bytes: Int, _ seconds: Double) -> String {
        let v = Double(bytes) / seconds / 1e9
        return String(Int((v * 100).rounded())).count > 0 ? "\(Double(Int((v * 100).rounded())) / 100) GB/s" : ""
    }

    static func ratio(_ a: Double, _ b: Double) -> String { "\(Double(Int((a / b * 100).rounded())) / 100)×" }

    /// A LLaMA layer of `hidden` (16 heads of hidden/16, 4 KV heads) and `intermediate` MLP channels.
    static func shape(hidden: Int, intermediate: Int) throws -> ModelDescription {
        try ModelDescription.uniform(layers: 1, hiddenSize: hidden, attentionHeads: 16, keyValueHeads: 4, headDim: hidden / 16,
                                     intermediateSize: intermediate, vocabSize: 32000)
    }

    /// A LLaMA-shaped BF16 checkpoint: embedding plus layers of 7 matrices until `gigabytes` is reached.
    static func make(path: String, gigabytes: Double) throws {
        let hidden = 2048, inter = 5632
        let m = try shape(hidden: hidden, intermediate: inter)
        var specs: [TensorSpec] = [TensorSpec(name: m.name(.embedding), dtype: .bf16, shape: [32000, hidden])]
        var total = 32000 * hidden * 2
        var layer = 0
        while Double(total) < gigabytes * 1e9 {
            for role in TensorRole.projections + TensorRole.layerNorms {
                let ref = TensorReference(role, layer: 0), s = m.shape(of: ref)
                specs.append(TensorSpec(name: m.name(role, layer: layer), dtype: .bf16, shape: s))
                total += s.reduce(1, *) * 2
            }
            layer += 1
        }
        var state: UInt32 = 1
        try SafetensorsWriter.write(path: path, tensors: specs, metadata: Metadata([("format", "pt")])) { spec in
            let n = spec.shape.reduce(1, *)
            var bytes = [UInt8](repeating: 0, count: 2 * n)
            for i in 0..<n {
                state = state &* 1664525 &+ 1013904223
                // Roughly N(0, 0.02)-sized bf16 values: exponent 117..122, random mantissa and sign.
                let bits = UInt16((state >> 31) << 15) | UInt16(117 + (state >> 8) % 6) << 7 | UInt16((state >> 16) & 0x7F)
                bytes[2 * i] = UInt8(bits & 0xFF)
                bytes[2 * i + 1] = UInt8(bits >> 8)
            }
            return .bytes(bytes)
        }
        print("wrote \(path): \(specs.count) tensors, \(total) bytes")
    }

    static func makeMany(path: String, count: Int) throws {
        let specs = (0..<count).map { TensorSpec(name: "model.block.\($0 / 10).tensor_\($0 % 10).weight", dtype: .f16, shape: [4, 4]) }
        try SafetensorsWriter.write(path: path, tensors: specs, metadata: Metadata([("format", "pt")])) { _ in .bytes([UInt8](repeating: 0, count: 32)) }
        print("wrote \(path): \(count) tensors")
    }

    static func read(path: String) throws {
        let c = try Checkpoint.open(path)
        let size = c.fileBytes
        let file = c.files[0].mapping
        var sink = [UInt8](repeating: 0, count: size)
        // Warm the page cache and the destination.
        file.withUnsafeBytes { src in sink.withUnsafeMutableBytes { $0.copyMemory(from: src) } }
        let tMemcpy = best(5) { file.withUnsafeBytes { src in sink.withUnsafeMutableBytes { $0.copyMemory(from: src) } } }
        // The same memcpy from a fresh mapping, paying the page faults a reader pays on open.
        let tFresh = try best(5) {
            let m = try MappedFile(path: path)
            m.withUnsafeBytes { src in sink.withUnsafeMutableBytes { $0.copyMemory(from: src) } }
        }
        var checksum = 0
        let tReader = try best(5) {
            let c2 = try Checkpoint.open(path)
            var offset = 0
            for e in c2.entries {
                let v = try c2.tensor(named: e.info.name)
                v.withUnsafeBytes { src in
                    sink.withUnsafeMutableBytes { dst in
                        UnsafeMutableRawBufferPointer(rebasing: dst[offset..<(offset + src.count)]).copyMemory(from: src)
                    }
                }
                offset += v.byteCount
            }
            checksum &+= Int(sink[offset / 2])
        }
        print("read   \(c.tensorCount) tensors, \(size) bytes (open + copy out every tensor): reader \(gbps(c.tensorBytes, tReader)); memcpy from a fresh mapping \(gbps(size, tFresh)) (reader/that \(ratio(tFresh * Double(c.tensorBytes) / Double(size), tReader))); memcpy from a mapping already faulted in \(gbps(size, tMemcpy))  [\(checksum & 1)]")
    }

    static func convert(path: String) throws {
        let c = try Checkpoint.open(path)
        let v = try c.tensor(named: c.entries.max { $0.info.byteCount < $1.info.byteCount }!.info.name)
        // Convert the largest tensors until ~256 MB of BF16 is covered, repeatedly.
        let views = c.entries.sorted { $0.info.byteCount > $1.info.byteCount }.prefix(64).map { try! c.tensor(named: $0.info.name) }
        var chosen: [TensorView] = []
        var bytes = 0
        for w in views where bytes < 256_000_000 { chosen.append(w); bytes += w.byteCount }
        let elements = bytes / 2
        var out = [Float](repeating: 0, count: chosen.map(\.elementCount).max()!)
        var copy = [UInt8](repeating: 0, count: chosen.map(\.byteCount).max()! * 2)
        for w in chosen { _ = w.bytes() }  // page cache
        let tCopy = best(5) {
            for w in chosen { w.withUnsafeBytes { src in copy.withUnsafeMutableBytes { $0.copyMemory(from: src) } } }
        }
        let tBF16 = try best(5) {
            for w in chosen {
                try w.withUnsafeBytes { (src) throws(CheckpointError) in
                    try out.withUnsafeMutableBufferPointer { (d) throws(CheckpointError) in
                        try DTypeConversion.decode(src, as: .bf16, into: UnsafeMutableBufferPointer(rebasing: d[0..<w.elementCount]))
                    }
                }
            }
        }
        let tF16 = try best(5) {
            for w in chosen {
                try w.withUnsafeBytes { (src) throws(CheckpointError) in
                    try out.withUnsafeMutableBufferPointer { (d) throws(CheckpointError) in
                        try DTypeConversion.decode(src, as: .f16, into: UnsafeMutableBufferPointer(rebasing: d[0..<w.elementCount]))
                    }
                }
            }
        }
        var f32 = [Float](repeating: 0.5, count: 32 << 20)
        var back = [UInt8](repeating: 0, count: 2 * f32.count)
        func encode(_ dtype: DType) {
            f32.withUnsafeBufferPointer { s in back.withUnsafeMutableBytes { d in try! DTypeConversion.encode(s, as: dtype, into: d) } }
        }
        let tToBF16 = best(5) { encode(.bf16) }
        let tToF16 = best(5) { encode(.f16) }
        f32[0] = 0
        _ = v
        // Memory traffic: a conversion reads 2 bytes and writes 4 per element; memcpy reads and writes
        // the same count. Compare bytes moved per second.
        let gel = { (t: Double) in "\(Double(Int(Double(elements) / t / 1e7)) / 100) G elements/s" }
        let traffic = { (t: Double, perElement: Int) in Double(elements * perElement) / t }
        let copyTraffic = Double(2 * bytes) / tCopy
        print("convert \(bytes) bytes of BF16 (memcpy moves \(Double(Int(copyTraffic / 1e7)) / 100) GB/s read+write):")
        print("        bf16→f32 \(gel(tBF16)), \(Double(Int(traffic(tBF16, 6) / 1e7)) / 100) GB/s read+write = \(ratio(traffic(tBF16, 6), copyTraffic)) memcpy")
        print("        f16→f32  \(gel(tF16)), \(Double(Int(traffic(tF16, 6) / 1e7)) / 100) GB/s read+write = \(ratio(traffic(tF16, 6), copyTraffic)) memcpy")
        let n32 = f32.count
        print("convert \(n32 * 4) bytes of F32: f32→bf16 \(Double(Int(Double(n32) / tToBF16 / 1e7)) / 100) G elements/s, f32→f16 \(Double(Int(Double(n32) / tToF16 / 1e7)) / 100) G elements/s")
    }

    static func write(path: String, out: String) throws {
        let c = try Checkpoint.open(path)
        let specs = c.entries.map { TensorSpec(name: $0.info.name, dtype: $0.info.dtype, shape: $0.info.shape) }
        let t = try best(3) {
            try SafetensorsWriter.write(path: out, tensors: specs, metadata: c.metadata) { (spec) throws(CheckpointError) in .view(try c.tensor(named: spec.name)) }
        }
        print("write  \(c.fileBytes) bytes (streaming writer, fsync + rename): \(Double(Int(t * 1000)) / 1000) s, \(gbps(c.fileBytes, t))")
    }

    /// Weights drawn from N(0, 0.02) in `dtype`, LLaMA-shaped as in `make`.
    static func makeNormal(path: String, gigabytes: Double, dtype: DType) throws {
        let hidden = 2048, inter = 5632
        var specs: [TensorSpec] = []
        var total = 0
        var layer = 0
        let m = try shape(hidden: hidden, intermediate: inter)
        while Double(total) < gigabytes * 1e9 {
            for role in TensorRole.projections {
                let s = m.shape(of: TensorReference(role, layer: 0))
                specs.append(TensorSpec(name: m.name(role, layer: layer), dtype: dtype, shape: s))
                total += s[0] * s[1] * dtype.byteSize!
            }
            layer += 1
        }
        var state: UInt64 = 0x1234_5678
        try SafetensorsWriter.write(path: path, tensors: specs, metadata: Metadata([("format", "pt")])) { spec in
            let n = spec.shape.reduce(1, *)
            var f = [Float](repeating: 0, count: n)
            var i = 0
            while i < n {
                state = state &* 6364136223846793005 &+ 1442695040888963407
                let u1 = max(Float(state >> 40) / Float(1 << 24), 1e-7)
                state = state &* 6364136223846793005 &+ 1442695040888963407
                let u2 = Float(state >> 40) / Float(1 << 24)
                let r = (-2 * logf(u1)).squareRoot() * 0.02
                f[i] = r * cosf(2 * .pi * u2)
                if i + 1 < n { f[i + 1] = r * sinf(2 * .pi * u2) }
                i += 2
            }
            return .floats(f)
        }
        print("wrote \(path): \(specs.count) tensors of N(0, 0.02) \(dtype.rawValue), \(total) bytes")
    }

    /// Rewrites a checkpoint with every floating-point tensor in `dtype`.
    static func toDType(path: String, out: String, dtype: DType) throws {
        let c = try Checkpoint.open(path)
        let specs = c.entries.map { TensorSpec(name: $0.info.name, dtype: $0.info.dtype.isFloatingPoint ? dtype : $0.info.dtype, shape: $0.info.shape) }
        try SafetensorsWriter.write(path: out, tensors: specs, metadata: c.metadata) { (spec) throws(CheckpointError) -> TensorBytes in
            let v = try c.tensor(named: spec.name)
            if v.dtype == spec.dtype { return .view(v) }
            return .floats(try v.floats())
        }
    }

    /// Compact format: size ratio, encode and decode speed (2 threads), beside memcpy in the same run.
    static func compact(path: String, out: String, level: Int32) throws {
        let c = try Checkpoint.open(path)
        for f in c.files { _ = f.mapping.withUnsafeBytes { $0.reduce(0) { $0 &+ Int($1) } } }  // page cache
        let threads = min(2, availableCores())
        func encodeAll() { try! CompactConversion.write(c, to: out, options: .init(level: level, threads: threads, durable: false)) }
        let tEncode = best(2) { encodeAll() }
        let f = try CompactFile(path: out)
        let bytes = f.tensors.reduce(0) { $0 + $1.byteLength }
        var sink = [UInt8](repeating: 0, count: f.tensors.map(\.byteLength).max() ?? 0)
        _ = f.mapping.withUnsafeBytes { $0.reduce(0) { $0 &+ Int($1) } }
        func decodeAll() {
            for t in f.tensors {
                sink.withUnsafeMutableBytes { s in
                    try! f.read(t, into: UnsafeMutableRawBufferPointer(rebasing: s[0..<t.byteLength]), threads: threads)
                }
            }
        }
        let tDecode = best(3) { decodeAll() }
        let src = c.files[0].mapping
        var copy = [UInt8](repeating: 0, count: src.count)
        let tCopy = best(3) { src.withUnsafeBytes { s in copy.withUnsafeMutableBytes { $0.copyMemory(from: s) } } }
        var planes = 0, zstd = 0, raw = 0
        for t in f.tensors { switch t.encoding { case .bytePlanes: planes += 1; case .zstd: zstd += 1; case .raw: raw += 1 } }
        let ratio = Double(f.fileSize) / Double(c.fileBytes)
        print("compact \(path): \(c.fileBytes) → \(f.fileSize) bytes, ratio \(Double(Int(ratio * 1000)) / 1000) (level \(level); tensors: \(planes) planes, \(zstd) zstd, \(raw) raw)")
        print("        encode \(gbps(bytes, tEncode)) (to the page cache, no fsync), decode \(gbps(bytes, tDecode)) (\(threads) threads); memcpy \(gbps(src.count, tCopy))")
    }

    static func inspect(path: String) throws {
        var count = 0
        let t = try best(20) { count = try Checkpoint.open(path).tensorCount }
        print("inspect \(count) tensors: open + validate \(Double(Int(t * 1e5)) / 100) ms (best of 20)")
    }
}

extension ShearsBench {
    /// Times the anchored-ls refit of one `[H, W]` projection keeping `K` inputs (every 4th input
    /// removed, as a selection spreads them), from the statistics of `ROWS` random rows, and
    /// reports its flop rate with float64 covariances and solves, then float32 ones, and how far apart they are.
    static func refit(_ sizes: [Int]) throws {
        let w = sizes.count > 0 ? sizes[0] : 14336, k = sizes.count > 1 ? sizes[1] : 10752
        let h = sizes.count > 2 ? sizes[2] : 4096, rows = sizes.count > 3 ? sizes[3] : 512
        // Each dimension ≤ 65,536 and each matrix ≤ 2^28 values keep the products from
        // overflowing and the allocations within a few GiB.
        guard k > 0, k < w, h > 0, rows > 0, w <= 65536, h <= 65536, rows <= 65536, h * w <= 1 << 28, rows * w <= 1 << 28 else {
            print("usage: shears-bench refit [W K H ROWS] with 0 < K < W ≤ 65536, 0 < H, ROWS ≤ 65536, H·W and ROWS·W ≤ 2^28"); exit(64)
        }
        var rng = SplitMix64(seed: 7)
        let x = uniform(rows * w, &rng)
        // Inputs 1, 5, 9, … go first, then 2, 6, …: removed ones spread over the width.
        let order = [1, 2, 3, 0].flatMap { Array(stride(from: $0, to: w, by: 4)) }
        let dropped = Set(order.prefix(w - k))
        let kept = (0..<w).filter { !dropped.contains($0) }
        let wt = uniform(h * w, &rng).map { Double($0) * 0.02 }
        let flop = Double(k) * Double(k) * Double(k) / 3 + 2 * Double(h) * Double(w - k) * Double(k) + 2 * Double(k) * Double(k) * Double(h)
        var results: [[Double]] = []
        for precision in [CovariancePrecision.float64, .float32] {
            var st = SiteStatistics(width: w, covariance: true, precision: precision)
            var t0 = now()
            x.withUnsafeBufferPointer { st.add($0, rows: rows) }
            print("\(precision) statistics of \(rows) rows × \(w): \(round(now() - t0, 100)) s")
            t0 = now()
            let r = try Recovery.refit(.anchoredLS, weight: wt, rows: h, cols: w, bias: nil, kept: kept, statistics: st, damping: 0.1, what: "bench")
            let total = now() - t0
            print("\(precision) anchored-ls refit [\(h), \(w)] keeping \(k): \(round(total, 100)) s, \(round(flop / total / 1e9, 10)) GFLOP/s on \(round(flop / 1e12, 1000))e12 flop (Cholesky, W_P·C_PK, two triangular solves); weight[0] \(r.weight[0])")
            results.append(r.weight)
        }
        let scale = results[0].map(abs).max() ?? 1
        let diff = zip(results[0], results[1]).map { abs($0 - $1) }.max() ?? 0
        print("float32 vs float64 refit: largest difference \(diff / scale) of the largest entry")
    }

    /// `count` values uniform in [-0.5, 0.5): the solves' and products' cost does not depend on the
    /// distribution.
    static func uniform(_ count: Int, _ rng: inout SplitMix64) -> [Float] {
        (0..<count).map { _ in Float(Double(rng.next() >> 11) / 9007199254740992.0 - 0.5) }
    }

    /// `v` rounded to a multiple of 1/`scale`, for printing.
    static func round(_ v: Double, _ scale: Double) -> Double { (v * scale).rounded() / scale }

    /// Times one step of covariance accumulation both ways, alternating, best of three each.
    static func gram(_ sizes: [Int]) throws {
        let w = sizes.count > 0 ? sizes[0] : 14336, rows = sizes.count > 1 ? sizes[1] : 1024, panel = sizes.count > 2 ? sizes[2] : 512
        guard w > 0, rows > 0, panel > 0, panel <= 65536, w <= 65536, rows <= 65536, rows * w <= 1 << 28 else {
            print("usage: shears-bench gram [W ROWS PANEL] with 0 < W, ROWS, PANEL ≤ 65536 and ROWS·W ≤ 2^28"); exit(64)
        }
        var rng = SplitMix64(seed: 7)
        let x = uniform(rows * w, &rng)
        let xd = x.map(Double.init)
        var c64 = [Double](repeating: 0, count: w * w), c32 = c64
        var t64 = Double.infinity, t32 = Double.infinity
        for _ in 0..<3 {
            var t0 = now()
            DoubleBLAS.addGram(xd, rows: rows, width: w, into: &c64)
            t64 = min(t64, now() - t0)
            t0 = now()
            c32.withUnsafeMutableBufferPointer { DoubleBLAS.addGram(x, rows: rows, width: w, into: $0, panel: panel) }
            t32 = min(t32, now() - t0)
        }
        var err = 0.0, scale = 0.0
        for i in 0..<w { for j in 0...i { err = max(err, abs(c64[i * w + j] - c32[i * w + j])); scale = max(scale, abs(c64[i * w + j])) } }
        let flop = Double(rows) * Double(w) * Double(w)
        let r = { (v: Double) in round(v, 1000) }
        print("gram \(rows) × \(w): float64 dsyrk \(r(t64)) s (\(r(flop / t64 / 1e9)) GFLOP/s), float32 panels \(r(t32)) s (\(r(flop / t32 / 1e9)) GFLOP/s), \(r(t64 / t32))× faster; largest difference \(err / scale) of the largest entry")
    }
}
