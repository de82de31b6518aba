import CheckpointCore
import ShearsJSON

/// Conversions between safetensors checkpoints and compact files (formats/compact.md §7).
public enum CompactConversion {
    /// Writes `checkpoint` (any safetensors layout) as a compact file, tensors in their data order.
    /// A single-file source keeps its header so that converting back reproduces it byte for byte.
    /// `progress` is called with the bytes done after each tensor.
    public static func write(_ checkpoint: Checkpoint, to path: String, options: CompactWriter.Options = .init(),
                             progress: (Int) -> Void = { _ in }) throws(CheckpointError) {
        var sourceHeader: [UInt8] = []
        if checkpoint.files.count == 1 {
            let f = checkpoint.files[0]
            sourceHeader = f.mapping.bytes(in: 0..<f.header.dataStart)
        }
        let writer = try CompactWriter(path: path, metadata: checkpoint.metadata ?? Metadata(), sourceHeader: sourceHeader, options: options)
        var done = 0
        for e in checkpoint.entries {
            let v = try checkpoint.tensor(named: e.info.name)
            v.file.advise(.sequential, range: v.range)
            try v.withUnsafeBytes { (raw) throws(CheckpointError) in
                try writer.append(name: e.info.name, dtype: e.info.dtype, shape: e.info.shape, bytes: raw)
            }
            v.file.advise(.normal, range: v.range)
            done += v.byteCount
            progress(done)
        }
        try writer.finish()
    }

    /// Writes a compact file back as one safetensors file: byte for byte the original when the
    /// compact file carries a valid source header that lists exactly its tensors, otherwise the
    /// canonical layout.
    /// - Returns: whether the source header was used.
    @discardableResult
    public static func writeSafetensors(_ compact: CompactFile, to path: String) throws(CheckpointError) -> Bool {
        let tensors = compact.tensors
        if let header = sourceHeader(of: compact) {
            let writer = try SafetensorsWriter(path: path, header: header, headerBytes: compact.index.sourceHeader)
            while let spec = writer.nextTensor {
                try writer.write(try compact.bytes(named: spec.name))
            }
            try writer.finish()
            return true
        }
        let specs = tensors.map { TensorSpec(name: $0.name, dtype: $0.dtype, shape: $0.shape) }
        let metadata: Metadata? = compact.metadata.isEmpty ? nil : compact.metadata
        try SafetensorsWriter.write(path: path, tensors: specs, metadata: metadata) { (spec) throws(CheckpointError) in
            .bytes(try compact.bytes(named: spec.name))
        }
        return false
    }

    /// The stored safetensors header, when it is valid and describes exactly the file's tensors.
    static func sourceHeader(of compact: CompactFile) -> SafetensorsHeader? {
        let bytes = compact.index.sourceHeader
        guard !bytes.isEmpty else { return nil }
        let dataLength = compact.tensors.reduce(0) { $0 + $1.byteLength }
        guard let header = try? bytes.withUnsafeBytes({ (raw) throws(CheckpointError) in
            try SafetensorsHeader.parse(raw, fileSize: bytes.count + dataLength)
        }), header.dataStart == bytes.count, header.tensors.count == compact.tensors.count else { return nil }
        for t in header.tensors {
            guard let c = try? compact.tensor(named: t.name), c.dtype == t.dtype, c.shape == t.shape, c.byteLength == t.byteCount else { return nil }
        }
        let m = header.metadata ?? Metadata()
        guard m == compact.metadata else { return nil }
        return header
    }
}
