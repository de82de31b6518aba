#if canImport(Glibc)
import Glibc
#endif
import ShearsBLAS
import ShearsCommands

@main
enum ShearsMain {
    static func main() {
        // A file-size limit (RLIMIT_FSIZE, `ulimit -f`) would otherwise kill the process with
        // SIGXFSZ mid-write, leaving its temporary output behind; ignored, the write fails with
        // EFBIG and the command reports it and removes what it staged, like a full disk.
        signal(SIGXFSZ, SIG_IGN)
        OpenBLASBootstrap.reexecIfNeeded()
        OpenBLASIdleWait.apply()
        Shears.main()
    }
}
