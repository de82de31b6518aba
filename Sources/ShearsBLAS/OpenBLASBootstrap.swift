#if canImport(Glibc)
import Glibc
#else
#error("Shears is built and tested on Linux only")
#endif

/// Picks OpenBLAS's kernel family from the CPU's flags before the library initialises.
///
/// Debian's OpenBLAS 0.3.21 does not recognise recent Xeons and falls back to its Prescott (SSE3)
/// kernels, about 5× slower for sgemm than its SkylakeX kernels on the same CPU. OpenBLAS reads
/// `OPENBLAS_CORETYPE` in a constructor that runs before `main`, so the only way to set it is to
/// re-execute the process once with the variable set. A value the user set is never overridden,
/// and `SHEARS_NO_REEXEC=1` turns this off.
public enum OpenBLASBootstrap {
    /// The core type the CPU's flags allow: SkylakeX with AVX-512 F/BW/VL, Haswell with AVX2+FMA,
    /// nil otherwise (leave OpenBLAS's own choice).
    public static func bestCoreType(cpuFlags: Set<Substring>) -> String? {
        if cpuFlags.isSuperset(of: ["avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512cd"]) { return "SkylakeX" }
        if cpuFlags.isSuperset(of: ["avx2", "fma"]) { return "Haswell" }
        return nil
    }

    /// The `flags` line of /proc/cpuinfo, as a set.
    public static func cpuFlags() -> Set<Substring> {
        guard let f = fopen("/proc/cpuinfo", "r") else { return [] }
        defer { fclose(f) }
        var line: UnsafeMutablePointer<CChar>? = nil
        var cap = 0
        defer { free(line) }
        while getline(&line, &cap, f) > 0 {
            let s = String(cString: line!)
            if s.hasPrefix("flags") {
                guard let colon = s.firstIndex(of: ":") else { return [] }
                return Set(s[s.index(after: colon)...].split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == "\t" }))
            }
        }
        return []
    }

    /// Re-executes the current process with `OPENBLAS_CORETYPE` set when it is unset and the CPU
    /// allows a better kernel than OpenBLAS would pick. Returns only when no re-exec happens.
    public static func reexecIfNeeded() {
        guard getenv("OPENBLAS_CORETYPE") == nil, getenv("SHEARS_NO_REEXEC") == nil,
              let core = bestCoreType(cpuFlags: cpuFlags()) else { return }
        // Only worth it when OpenBLAS's own choice is an older family than the CPU supports.
        guard isWeaker(BLAS.coreName, than: core) else { return }
        setenv("OPENBLAS_CORETYPE", core, 1)
        execv("/proc/self/exe", CommandLine.unsafeArgv)
        // execv returned: carry on with the default kernels.
        unsetenv("OPENBLAS_CORETYPE")
    }

    /// Whether OpenBLAS's chosen kernel family is older than `core` (AVX-512 families count as
    /// equal to SkylakeX; AVX2 families as equal to Haswell).
    public static func isWeaker(_ chosen: String, than core: String) -> Bool {
        let avx512: Set<String> = ["skylakex", "cooperlake", "sapphirerapids"]
        let avx2: Set<String> = ["haswell", "zen", "skylake"]
        let c = chosen.lowercased()
        switch core {
        case "SkylakeX": return !avx512.contains(c)
        case "Haswell": return !avx512.contains(c) && !avx2.contains(c)
        default: return false
        }
    }
}
