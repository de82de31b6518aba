import ShearsBLAS
import ShearsCommands

@main
enum ShearsMain {
    static func main() {
        OpenBLASBootstrap.reexecIfNeeded()
        OpenBLASIdleWait.apply()
        Shears.main()
    }
}
