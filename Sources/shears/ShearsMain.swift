import ShearsBLAS
import ShearsCommands

@main
enum ShearsMain {
    static func main() {
        OpenBLASBootstrap.reexecIfNeeded()
        Shears.main()
    }
}
