import ShearsBLAS

enum OpenBLASFlags {
    static var current: Set<Substring> { OpenBLASBootstrap.cpuFlags() }
}
