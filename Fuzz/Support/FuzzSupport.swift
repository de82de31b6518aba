#if canImport(Glibc)
import Glibc
#endif

/// Helpers shared by the libFuzzer entry points (Fuzz/*): fuzzed bytes as a buffer, or as a file
/// for the parsers that read a path. Each fuzz target compiles this file in (no extra module).
public enum Fuzz {
    /// A per-process scratch file on tmpfs (libFuzzer may run several workers).
    public static let scratch: String = {
        let dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp"
        return "\(dir)/shears-fuzz-\(getpid())"
    }()

    /// Writes `data` to `scratch` + `suffix` and returns the path.
    public static func file(_ data: UnsafeRawBufferPointer, suffix: String = "") -> String {
        let path = scratch + suffix
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        precondition(fd >= 0, "cannot write \(path)")
        var off = 0
        while off < data.count {
            let n = write(fd, data.baseAddress! + off, data.count - off)
            precondition(n > 0)
            off += n
        }
        close(fd)
        return path
    }

    public static func buffer(_ data: UnsafePointer<UInt8>?, _ size: Int) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: size == 0 ? nil : data, count: size)
    }
}

/// libFuzzer's driver, called from each target's entry point: SwiftPM links an executable target's
/// `main` to `<Module>_main` (testable executables), so each target defines that and hands over.
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(_ argc: UnsafeMutablePointer<CInt>,
                         _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
                         _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt) -> CInt

extension Fuzz {
    public static func run(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?,
                           _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt) -> CInt {
        var c = argc
        var v = argv
        return LLVMFuzzerRunDriver(&c, &v, callback)
    }
}
