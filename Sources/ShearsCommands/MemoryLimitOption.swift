import ArgumentParser
import Engine

/// `--memory-limit SIZE` for every command that runs the engine (`prune`, `eval`, `generate`).
struct MemoryLimitOption: ParsableArguments {
    @Option(name: .customLong("memory-limit"),
            help: ArgumentHelp("Anonymous memory the command may use, the mapped weights apart (e.g. 4GiB, 3.5GB): the engine gets it minus what the process holds at start and a reserve of max(16 MiB, limit/32), for F32 layers, gradients, activations, logits. Tables larger than min(512 MiB, limit/8) are read in blocks; a pass that cannot fit is refused. Default: half of the memory available at start.", valueName: "size"))
    var memoryLimit: SizeArgument?

    func validate() throws {
        if let m = memoryLimit, m.bytes <= 0 { throw ValidationError("--memory-limit must be positive") }
    }

    /// The limit asked for (or the default).
    var limit: Int { memoryLimit?.bytes ?? MemoryBudget.fractionOfAvailable.bytes }

    /// What the process needs besides the engine's matrices: what it holds now (runtime,
    /// arguments) and a reserve for what the command keeps besides (tokens, plans, scores):
    /// 16 MiB or 1/32 of the limit, whichever is more.
    func processReserve(limit: Int) -> Int {
        (MemoryBudget.residentAnonymous ?? 0) + max(16 << 20, limit / 32)
    }

    /// Sets the engine's share of the limit for the models opened from now on and resets the
    /// peak counter; returns it.
    @discardableResult
    func apply() -> MemoryBudget {
        let l = limit
        let budget = MemoryBudget(bytes: max(0, l - processReserve(limit: l)))
        MemoryBudget.current = budget
        LlamaModel.resetPeakMemory()
        return budget
    }

    /// "memory: limit 4.3 GB (--memory-limit), engine matrices peaked at 2.1 GB; anonymous memory now 2.2 GB".
    func report(_ command: String) -> String {
        let b = MemoryBudget.current.bytes
        var s = "\(command): memory limit \(Format.bytes(memoryLimit?.bytes ?? b)) (\(memoryLimit == nil ? "default: half of the available memory" : "--memory-limit"); \(Format.bytes(b)) for the engine), engine matrices peaked at \(Format.bytes(LlamaModel.peakMatrixBytes))"
        if let anon = MemoryBudget.residentAnonymous { s += "; anonymous memory now \(Format.bytes(anon))" }
        return s
    }
}
