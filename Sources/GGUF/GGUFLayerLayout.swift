import CheckpointCore
import ModelArchitecture

/// How the decoder layers of a Hugging Face folder become GGUF blocks.
///
/// When every layer has the same query heads, KV heads and MLP width (and none is empty) the file
/// is written with the `llama` architecture (``isUniform``). Otherwise it is written with llama.cpp's
/// `deci` architecture, which reads those three counts per block, with these adjustments for what
/// llama.cpp's `deci` loader does (formats/gguf.md):
/// - a layer with attention but no MLP channels gets an all-zero MLP of ``zeroMLPWidth`` channels
///   (llama.cpp skips a block whose feed-forward length is 0, attention included);
/// - a layer with neither attention nor MLP is the identity and is not written (a fully removed
///   last block crashes llama.cpp's graph builder); later blocks are renumbered;
/// - a layer without attention but with an MLP is written with 0 query and 0 KV heads (llama.cpp's
///   attention-free block).
public struct GGUFLayerLayout: Sendable, Equatable {
    /// One output block.
    public struct Block: Sendable, Equatable {
        /// The Hugging Face layer it is written from.
        public var source: Int
        public var heads: Int
        public var kvHeads: Int
        /// Feed-forward length as written (``GGUFLayerLayout/zeroMLPWidth`` for a padded layer).
        public var feedForward: Int
        /// The layer had no MLP channels; an all-zero MLP is written.
        public var zeroMLP: Bool
        public var hasAttention: Bool { heads > 0 }
    }

    /// Channels of the all-zero MLP written for a layer that lost all of its own.
    public static let zeroMLPWidth = 32

    public var blocks: [Block]
    /// Hugging Face layers that are not written (no attention and no MLP).
    public var dropped: [Int]
    /// Every layer has the same non-zero sizes: the `llama` architecture applies.
    public var isUniform: Bool

    /// Output block of each Hugging Face layer (nil for dropped layers).
    public var blockOfLayer: [Int: Int] { Dictionary(uniqueKeysWithValues: blocks.enumerated().map { ($1.source, $0) }) }

    /// - Throws: `invalidConfig` when every layer is empty.
    public init(sizes: [LayerSizes]) throws(CheckpointError) {
        var blocks: [Block] = []
        var dropped: [Int] = []
        for (i, s) in sizes.enumerated() {
            let heads = s.numAttentionHeads, kv = heads == 0 ? 0 : s.numKeyValueHeads
            if heads == 0 && s.intermediateSize == 0 { dropped.append(i); continue }
            let zero = s.intermediateSize == 0
            blocks.append(Block(source: i, heads: heads, kvHeads: kv, feedForward: zero ? Self.zeroMLPWidth : s.intermediateSize, zeroMLP: zero))
        }
        guard !blocks.isEmpty else {
            throw CheckpointError(.invalidConfig, "every layer has neither attention heads nor MLP channels; there is nothing to write")
        }
        self.blocks = blocks
        self.dropped = dropped
        let first = sizes[0]
        isUniform = dropped.isEmpty && first.numAttentionHeads > 0 && first.intermediateSize > 0 && sizes.allSatisfy { $0 == first }
    }

    /// Warnings about MLP widths that `llama-quantize` cannot quantize in blocks (it falls back to
    /// F16 for rows that are not a multiple of 32, and to a 32-block type for K-quants when not a
    /// multiple of 256).
    public var quantizationWarnings: [String] {
        var out: [String] = []
        let not32 = blocks.enumerated().filter { $0.element.feedForward % 32 != 0 }.map { $0.offset }
        let not256 = blocks.enumerated().filter { $0.element.feedForward % 256 != 0 }.map { $0.offset }
        func list(_ l: [Int]) -> String { l.count > 12 ? l.prefix(12).map(String.init).joined(separator: ", ") + ", …" : l.map(String.init).joined(separator: ", ") }
        if !not32.isEmpty {
            out.append("MLP widths of blocks \(list(not32)) are not multiples of 32: llama-quantize keeps their ffn_down in F16 (no block quantization); prune with --round-to 32 (256 for K-quants)")
        } else if !not256.isEmpty {
            out.append("MLP widths of blocks \(list(not256)) are not multiples of 256: llama-quantize stores their ffn_down in a 32-block fallback type for K-quants (Q4_K_M etc.); prune with --round-to 256 for K-quants")
        }
        return out
    }
}
