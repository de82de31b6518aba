import CheckpointCore

/// Re-encodes float tensors to another dtype in cache-sized blocks, into one reusable output
/// buffer, checking the range of the target type unless overflow is allowed.
public final class DTypeRecoder {
    private var output = UnsafeMutableRawBufferPointer(start: nil, count: 0)
    private let block = 1 << 16
    private let floats: UnsafeMutableBufferPointer<Float>
    public let allowOverflow: Bool

    public init(allowOverflow: Bool) {
        self.allowOverflow = allowOverflow
        floats = .allocate(capacity: block)
    }

    deinit {
        output.deallocate()
        floats.deallocate()
    }

    /// Converts `view` to `dtype` and calls `body` with the bytes. Do not let the pointer escape.
    public func recode(_ view: TensorView, to dtype: DType, _ body: (UnsafeRawBufferPointer) throws(CheckpointError) -> Void) throws(CheckpointError) {
        guard let fromWidth = view.dtype.byteSize, let toWidth = dtype.byteSize, view.dtype.convertsToFloat32 else {
            throw CheckpointError(.unsupportedConversion, "cannot convert \(view.dtype.rawValue) to \(dtype.rawValue)", path: view.file.path, tensor: view.name)
        }
        let n = view.elementCount
        if output.count < n * toWidth {
            output.deallocate()
            output = .allocate(byteCount: n * toWidth, alignment: 64)
        }
        let out = UnsafeMutableRawBufferPointer(rebasing: output[0..<(n * toWidth)])
        let floats = self.floats
        let block = self.block
        let allowOverflow = self.allowOverflow
        try view.withUnsafeBytes { (src) throws(CheckpointError) in
            var start = 0
            while start < n {
                let m = min(block, n - start)
                let f = UnsafeMutableBufferPointer(rebasing: floats[0..<m])
                do throws(CheckpointError) {
                    try DTypeConversion.decode(UnsafeRawBufferPointer(rebasing: src[(start * fromWidth)..<((start + m) * fromWidth)]), as: view.dtype, into: f)
                    if !allowOverflow, let i = DTypeRange.firstOverflow(UnsafeBufferPointer(f), as: dtype) {
                        throw CheckpointError(.unrepresentableValue, "element \(start + i) is \(f[i]), outside the range of \(dtype.rawValue); pass --allow-overflow to write it as infinity")
                    }
                    try DTypeConversion.encode(UnsafeBufferPointer(f), as: dtype, into: UnsafeMutableRawBufferPointer(rebasing: out[(start * toWidth)..<((start + m) * toWidth)]))
                } catch {
                    var e = error
                    e.path = view.file.path
                    e.tensor = view.name
                    throw e
                }
                start += m
            }
        }
        try body(UnsafeRawBufferPointer(out))
    }
}
