"""SplitMix64, the generator Shears' random estimator and calibration windows use (Swift:
`SplitMix64` in Sources/Pruning/MagnitudeImportance.swift), shared by Tools/pruning/reference.py and bench_prune.py."""


class SplitMix64:
    M = (1 << 64) - 1
    def __init__(self, seed): self.s = seed & self.M
    def next(self):
        self.s = (self.s + 0x9E3779B97F4A7C15) & self.M
        z = self.s
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & self.M
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & self.M
        return z ^ (z >> 31)
    def uniform(self): return (self.next() >> 11) * 2.0 ** -53
