import Testing
import Tokenizers

/// Every case of Fixtures/tokenizers/golden/manifest.tsv: the ids and decodings the Hugging Face
/// `tokenizers` library produced (Tools/make-tokenizer-fixtures) must be reproduced exactly.
@Suite struct GoldenTests {
    static let realTokenizers: Set<String> = ["smollm2", "qwen2", "sp-bpe", "bl-bpe"]

    static func isReal(_ c: Fixtures.GoldenCase) -> Bool {
        realTokenizers.contains(String(c.tokenizer.split(separator: "/")[0]))
    }

    @Test("real and trained tokenizers match the library", arguments: Fixtures.goldenCases(isReal))
    func realTokenizer(_ c: Fixtures.GoldenCase) throws { try check(c) }

    @Test("pipeline variants match the library", arguments: Fixtures.goldenCases { !isReal($0) })
    func variant(_ c: Fixtures.GoldenCase) throws { try check(c) }

    func check(_ c: Fixtures.GoldenCase) throws {
        let tokenizer = try Fixtures.tokenizer(c.tokenizer)
        let text = try Fixtures.readText(Fixtures.textPath(c.text))
        let expected = try Fixtures.ids(Fixtures.tokenizerPath(c.ids))
        let ids = tokenizer.encode(text, addSpecialTokens: c.addSpecialTokens)
        if ids != expected {
            let k = (0..<min(ids.count, expected.count)).first { ids[$0] != expected[$0] } ?? min(ids.count, expected.count)
            let lo = max(0, k - 4)
            func show(_ a: [Int32]) -> String {
                a[lo..<min(a.count, k + 4)].map { "\($0)=\((tokenizer.token(for: $0) ?? "?").debugDescription)" }
                    .joined(separator: " ")
            }
            Issue.record("ids differ at \(k) of \(expected.count) (got \(ids.count)): expected \(show(expected)) got \(show(ids))")
        }

        let decoded = try c.decoded.map { try Fixtures.readText(Fixtures.tokenizerPath($0)) } ?? text
        let decodedSkip = try c.decodedSkip.map { try Fixtures.readText(Fixtures.tokenizerPath($0)) } ?? decoded
        expectSameText(tokenizer.decode(expected, skipSpecialTokens: false), decoded, "decode")
        expectSameText(tokenizer.decode(expected, skipSpecialTokens: true), decodedSkip, "decode skipping special tokens")

        if let p = c.pieces {
            let pieces = try Fixtures.pieces(Fixtures.tokenizerPath(p))
            #expect(pieces.count == expected.count)
            var mismatches = 0
            for (k, id) in expected.enumerated() where k < pieces.count {
                let got = tokenizer.decode([id])
                if !got.utf8.elementsEqual(pieces[k]) {
                    mismatches += 1
                    if mismatches <= 3 {
                        Issue.record("decode([\(id)]) = \(got.debugDescription), expected \(String(decoding: pieces[k], as: UTF8.self).debugDescription)")
                    }
                }
            }
            #expect(mismatches == 0)
        }
    }

    /// Byte-exact comparison (Swift `==` on strings is canonical equivalence, too lenient here).
    func expectSameText(_ got: String, _ expected: String, _ what: String) {
        let g = Array(got.utf8), e = Array(expected.utf8)
        guard g != e else { return }
        let k = (0..<min(g.count, e.count)).first { g[$0] != e[$0] } ?? min(g.count, e.count)
        let lo = max(0, k - 24)
        Issue.record("""
            \(what) differs at byte \(k) (lengths \(g.count), expected \(e.count)): \
            got \(String(decoding: g[lo..<min(g.count, k + 24)], as: UTF8.self).debugDescription) \
            expected \(String(decoding: e[lo..<min(e.count, k + 24)], as: UTF8.self).debugDescription)
            """)
    }
}
