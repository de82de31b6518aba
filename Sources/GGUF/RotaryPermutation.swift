import CheckpointCore

/// llama.cpp's reordering of the Q and K projection rows for its interleaved rotary embedding.
///
/// Hugging Face's `rotate_half` layout pairs row i of a head with row i + hd/2; llama.cpp pairs rows
/// 2i and 2i + 1. `convert_hf_to_gguf.py` reshapes each head's hd rows to (2, hd/2), swaps the two
/// axes and flattens. So within each head, HF row p·hd/2 + i is GGUF row 2i + p (p ∈ {0, 1}).
/// K uses the key/value head count. Rows are moved whole, so this works on any row encoding whose
/// rows are whole byte strings (floats, or quantized rows of whole blocks).
public enum RotaryPermutation {
    /// Direction of the permutation.
    public enum Direction: Sendable {
        /// Hugging Face → GGUF (what `convert_hf_to_gguf.py` does).
        case toGGUF
        /// GGUF → Hugging Face (the inverse).
        case toHuggingFace
    }

    /// Checks that `rows` rows split into `heads` heads of an even number of rows.
    public static func validate(rows: Int, heads: Int, tensor: String) throws(CheckpointError) {
        guard heads > 0, rows % heads == 0, (rows / heads) % 2 == 0 else {
            throw CheckpointError(.shapeMismatch, "\(rows) rows do not split into \(heads) heads of an even size, so the rotary permutation cannot be applied", tensor: tensor)
        }
    }

    /// Copies `source` (rows × rowBytes) into `destination` with the rows permuted.
    /// Sizes are checked; `rows` must have passed ``validate(rows:heads:tensor:)``.
    public static func permuteRows(_ source: UnsafeRawBufferPointer, into destination: UnsafeMutableRawBufferPointer,
                                   rows: Int, heads: Int, direction: Direction) {
        precondition(heads > 0 && rows % heads == 0 && (rows / heads) % 2 == 0, "rows must split into heads of even size")
        precondition(source.count == destination.count && source.count % max(rows, 1) == 0, "buffer sizes must match")
        guard rows > 0, source.count > 0 else { return }
        let rowBytes = source.count / rows
        let hd = rows / heads
        let half = hd / 2
        for h in 0..<heads {
            for p in 0..<2 {
                for i in 0..<half {
                    let hf = h * hd + p * half + i
                    let gg = h * hd + 2 * i + p
                    let (from, to) = direction == .toGGUF ? (hf, gg) : (gg, hf)
                    (destination.baseAddress! + to * rowBytes).copyMemory(from: source.baseAddress! + from * rowBytes, byteCount: rowBytes)
                }
            }
        }
    }

    /// Permutes float rows in place (through a copy).
    public static func permute(_ values: inout [Float], rows: Int, heads: Int, direction: Direction) {
        let copy = values
        copy.withUnsafeBytes { src in
            values.withUnsafeMutableBytes { dst in permuteRows(src, into: dst, rows: rows, heads: heads, direction: direction) }
        }
    }
}
