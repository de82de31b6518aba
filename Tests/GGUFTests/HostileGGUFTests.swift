import Testing
import CheckpointCore
@testable import GGUF

/// GGUF counts are checked against what the file holds before anything is sized by them (issue 21).
@Suite struct HostileGGUFTests {
    /// A metadata-only deci file with one head count for every block and a block_count of 10⁹:
    /// refused by the file size, not answered with a billion-entry allocation.
    @Test func blockCountBeyondTheFileIsRefused() throws {
        let dir = temporaryFolder()
        defer { removeTree(dir) }
        let md: [(key: String, value: GGUFValue)] = [
            ("general.architecture", .string(GGUFString("deci"))), ("deci.block_count", .uint32(1_000_000_000)),
            ("deci.embedding_length", .uint32(64)), ("deci.context_length", .uint32(128)),
            ("deci.attention.layer_norm_rms_epsilon", .float32(1e-5)),
            ("deci.attention.head_count", .uint32(4)), ("deci.feed_forward_length", .uint32(96)),
        ]
        let w = try GGUFWriter(path: dir + "/h.gguf", metadata: md, tensors: [])
        try w.finish()
        let e = #expect(throws: CheckpointError.self) { try GGUFModelMetadata(gguf: try GGUFFile(path: dir + "/h.gguf")) }
        #expect(e?.message.contains("deci.block_count is 1000000000") == true, "\(String(describing: e))")
    }
}
