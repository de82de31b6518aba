import Testing
import ShearsConcurrency

@Suite struct ParallelForTests {
    @Test(arguments: [1, 2, 3, 8])
    func parallelSumEqualsSerialSum(workers: Int) {
        let values = (0..<100_003).map { Int64(($0 * 7_919) % 1_000) - 500 }
        let serial = values.reduce(0, +)
        let partial = SharedSlots<Int64>(repeating: 0, count: workers)
        let input = UnsafeSendable(values)
        parallelFor(workers: workers) { w in
            var s: Int64 = 0
            var i = w
            while i < input.value.count {
                s += input.value[i]
                i += workers
            }
            partial[w] = s
        }
        #expect(partial.values.reduce(0, +) == serial)
    }

    @Test func runsEveryWorkerIndexExactlyOnce() {
        let workers = 16
        let runs = SharedSlots<Int>(repeating: 0, count: workers)
        parallelFor(workers: workers) { w in runs[w] += 1 }
        #expect(runs.values == [Int](repeating: 1, count: workers))
    }

    @Test(arguments: [0, 1, -3])
    func oneWorkerOrFewerRunsWorkerZeroOnce(workers: Int) {
        let runs = SharedSlots<Int>(repeating: 0, count: 1)
        parallelFor(workers: workers) { w in runs[w] += 1 }
        #expect(runs.values == [1])
    }

    @Test func writesThroughAnUnsafeSendablePointerLandInTheBuffer() {
        let count = 10_000, workers = 4
        var out = [Double](repeating: 0, count: count)
        out.withUnsafeMutableBufferPointer { buffer in
            let p = UnsafeSendable(buffer.baseAddress!)
            parallelFor(workers: workers) { w in
                for i in (count * w / workers)..<(count * (w + 1) / workers) { p.value[i] = Double(i) * 0.5 }
            }
        }
        #expect(out == (0..<count).map { Double($0) * 0.5 })
    }

    @Test func availableCoresIsPositive() {
        #expect(availableCores() >= 1)
    }
}
