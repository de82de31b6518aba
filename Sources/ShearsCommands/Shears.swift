import ArgumentParser
import CheckpointCore

/// The `shears` command: its configuration and subcommands. The executable's `main` selects the
/// OpenBLAS kernels, then runs this.
public struct Shears: ParsableCommand {
    public static let version = "0.1.0"

    public static let configuration = CommandConfiguration(
        commandName: "shears",
        abstract: "Inspect, convert, prune and verify model checkpoints (safetensors, sharded, Hugging Face folders).",
        discussion: """
            Inputs are memory-mapped and validated before use: a malformed file is reported with its \
            name and the problem (exit status 2), never read past. Outputs are written to a temporary \
            file and renamed into place, so an interrupted run leaves nothing half-written.

            Environment: OPENBLAS_CORETYPE is chosen from the CPU flags when unset (set \
            SHEARS_NO_REEXEC=1 to keep OpenBLAS's own choice); OPENBLAS_NUM_THREADS as usual.
            """,
        version: version,
        subcommands: [
            InspectCommand.self, ConvertCommand.self, PruneCommand.self, EvalCommand.self, GenerateCommand.self,
            TokenizeCommand.self, HashCommand.self, SignCommand.self, DiffCommand.self, VerifyCommand.self, DoctorCommand.self,
            FineTuneCommand.self,
        ]
    )

    public init() {}
}

/// Exit statuses shared by the commands.
public enum ShearsExit {
    /// An input is malformed or missing.
    public static let badInput = ExitCode(2)
    /// Options that cannot apply (sysexits' EX_USAGE), as ArgumentParser's own usage errors.
    public static let usage = ExitCode(64)
}

/// Prints a library error to stderr the way every command does, and returns the exit code to throw.
func report(_ error: Error) -> ExitCode {
    if let e = error as? ExitCode { return e }
    StandardError.print("shears: error: \(error)")
    if let e = error as? CheckpointError, e.code == .invalidUsage { return ShearsExit.usage }
    return ShearsExit.badInput
}
