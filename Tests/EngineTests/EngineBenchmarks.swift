#if canImport(Glibc)
import Glibc
#else
#error("Shears is built and tested on Linux only")
#endif
import Dispatch
import Foundation
import Testing
import CheckpointCore
import ModelArchitecture
@testable import Engine
import ShearsBLAS

/// Forward+backward speed and memory on SmolLM2 (10 × 128 tokens) next to OpenBLAS's sgemm peak,
/// measured in the same process. Run by Tools/bench-engine (release build, RUN_BENCHMARKS=1);
/// prints one `BENCH {json}` line.
@Suite(.serialized, .enabled(if: getenv("RUN_BENCHMARKS").map { String(cString: $0) } == "1"))
struct EngineBenchmarks {
    static func now() -> Double {
        var t = timespec()
        clock_gettime(CLOCK_MONOTONIC, &t)
        return Double(t.tv_sec) + Double(t.tv_nsec) * 1e-9
    }

    /// A field of /proc/self/status in MiB (VmHWM, RssAnon, ...).
    static func status(_ key: String) -> Double {
        guard let f = fopen("/proc/self/status", "r") else { return 0 }
        defer { fclose(f) }
        var line = [CChar](repeating: 0, count: 512)
        while fgets(&line, 512, f) != nil {
            let s = String(cString: line)
            if s.hasPrefix(key + ":") {
                let kb = Double(s.split(separator: " ").compactMap { Double($0) }.first ?? 0)
                return kb / 1024
            }
        }
        return 0
    }

    final class PeakSampler: GradientConsumer {
        let wantsFisher: Bool
        var peakAnon = 0.0
        init(fisher: Bool) { wantsFisher = fisher }
        func consume(_ gradient: ParameterGradient) throws { peakAnon = max(peakAnon, EngineBenchmarks.status("RssAnon")) }
    }

    /// Polls RssAnon every 5 ms on its own thread while a pass runs, for the peaks between the
    /// consumer's samples (the head phase's logits, before the first gradient arrives).
    final class AnonPoller: @unchecked Sendable {
        private let lock = NSLock()
        private var running = true
        private var peak = 0.0
        private let done = DispatchSemaphore(value: 0)

        init() {
            DispatchQueue.global().async {
                while true {
                    let v = EngineBenchmarks.status("RssAnon")
                    self.lock.lock()
                    self.peak = max(self.peak, v)
                    let go = self.running
                    self.lock.unlock()
                    if !go { break }
                    usleep(5_000)
                }
                self.done.signal()
            }
        }

        /// Stops polling; the highest value seen, MiB.
        func stop() -> Double {
            lock.lock(); running = false; lock.unlock()
            done.wait()
            lock.lock(); defer { lock.unlock() }
            return peak
        }
    }

    /// Best sgemm rate over shapes the model uses, GFLOP/s.
    static func sgemmPeak() -> Double {
        var best = 0.0
        for (m, n, k) in [(1280, 1536, 576), (1280, 576, 1536), (2048, 2048, 2048)] {
            let a = Matrix(rows: m, cols: k), b = Matrix(rows: n, cols: k), c = Matrix(rows: m, cols: n)
            a.withUnsafeMutableBufferPointer { p in for i in p.indices { p[i] = Float(i % 7) * 0.1 } }
            for _ in 0..<3 {
                let t0 = now()
                a.withUnsafeBufferPointer { pa in b.withUnsafeBufferPointer { pb in c.withUnsafeMutableBufferPointer { pc in
                    BLAS.sgemm(transB: true, m: m, n: n, k: k, a: pa.baseAddress!, lda: k, b: pb.baseAddress!, ldb: k, c: pc.baseAddress!, ldc: n)
                } } }
                best = max(best, 2.0 * Double(m * n * k) / (now() - t0) / 1e9)
            }
        }
        return best
    }

    /// Matrix-product FLOPs of forward + backward (3× forward) for `n` tokens in sequences of `t`.
    static func flops(_ a: ModelDescription, tokens n: Int, seqLen t: Int) -> Double {
        let h = Double(a.hiddenSize), d = Double(a.headDim), tt = Double(t), sequences = Double(n / t)
        var perToken: Double = 2.0 * Double(a.vocabSize) * h
        var attention: Double = 0
        for s in a.layers {
            let q: Double = Double(s.numAttentionHeads) * d
            let kv: Double = Double(s.numKeyValueHeads) * d
            let inter: Double = Double(s.intermediateSize)
            perToken += 2.0 * h * (2 * q + 2 * kv) + 6.0 * h * inter
            attention += 4.0 * tt * tt * d * Double(s.numAttentionHeads) * sequences
        }
        return 3 * (perToken * Double(n) + attention)
    }

    /// The benchmark batch: 10 sequences of 128 ids, the same formula as Tools/engine/bench_torch.py.
    static func batch(vocab: Int) throws -> TokenBatch {
        try TokenBatch((0..<10).map { b in (0..<128).map { t in Int32((b * 131 + t * 7919 + 17) % vocab) } })
    }

    /// $SHEARS_BENCH_MODEL (e.g. the synthetic 1B model), else SmolLM2.
    @Test func forwardBackward() throws {
        let path = try getenv("SHEARS_BENCH_MODEL").map { String(cString: $0) } ?? SmolLM2GoldenTests.folder()
        let model = try LlamaModel(path: path)
        let batch = try Self.batch(vocab: model.description.vocabSize)
        let peak = Self.sgemmPeak()
        let work = Self.flops(model.description, tokens: 1280, seqLen: 128)
        var times: [String: Double] = [:]
        var anon: [String: Double] = [:]
        var inMatmul: (seconds: Double, flops: Double) = (0, 0)
        // The default pass (every layer recomputed); one keeping the last layers' projections in
        // BENCH_ACTIVATION_MEMORY MiB (default 400; LlamaModel.activationMemory); one with Fisher
        // sums, unless BENCH_FISHER=0 (quicker profiling runs).
        let keptMiB = getenv("BENCH_ACTIVATION_MEMORY").flatMap { Int(String(cString: $0)) } ?? 400
        let withFisher = getenv("BENCH_FISHER").map { String(cString: $0) } != "0"
        var passes = [(name: "plain", fisher: false, memory: 0), (name: "kept", fisher: false, memory: keptMiB << 20)]
        if withFisher { passes.append((name: "fisher", fisher: true, memory: 0)) }
        for pass in passes {
            model.activationMemory = pass.memory
            var best = Double.infinity
            let sampler = PeakSampler(fisher: pass.fisher)
            let repeats = getenv("BENCH_REPEAT").flatMap { Int(String(cString: $0)) } ?? 2
            var polled = 0.0
            for _ in 0..<repeats {
                BLASProfile.reset()
                BLASProfile.enabled = true
                let poller = AnonPoller()
                let t0 = Self.now()
                try model.backward(batch, consumer: sampler)
                let t = Self.now() - t0
                polled = max(polled, poller.stop())
                BLASProfile.enabled = false
                if t < best, pass.name == "plain" { inMatmul = (BLASProfile.seconds, BLASProfile.flops) }
                best = min(best, t)
            }
            times[pass.name] = best
            anon[pass.name] = max(sampler.peakAnon, polled)
        }
        model.activationMemory = keptMiB << 20
        let keptLayers = model.description.layerCount - model.firstKeptLayer(rows: batch.layout.rows)
        model.activationMemory = 0
        let fwdT0 = Self.now()
        _ = try model.loss(batch)
        let fwd = Self.now() - fwdT0
        let json = """
            {"threads": \(BLAS.threads), "core": "\(BLAS.coreName)", "sgemm_peak_gflops": \(peak), "matmul_gflop": \(work / 1e9), \
            "forward_s": \(fwd), "forward_backward_s": \(times["plain"]!), "forward_backward_fisher_s": \(times["fisher"].map { "\($0)" } ?? "null"), \
            "gflops": \(work / times["plain"]! / 1e9), "sgemm_seconds": \(inMatmul.seconds), "sgemm_gflop_executed": \(inMatmul.flops / 1e9), \
            "sgemm_gflops_inside": \(inMatmul.flops / inMatmul.seconds / 1e9), "peak_rss_anon_mib": \(anon["plain"]!), "peak_rss_anon_fisher_mib": \(anon["fisher"].map { "\($0)" } ?? "null"), \
            "vm_hwm_mib": \(Self.status("VmHWM")), "openblas_idle_wait_restarted": \(OpenBLASIdleWait.restarted), \
            "activation_memory_mib": \(keptMiB), "kept_layers": \(keptLayers), "forward_backward_kept_s": \(times["kept"]!), \
            "peak_rss_anon_kept_mib": \(anon["kept"]!)}
            """
        print("BENCH " + json)
    }
}
