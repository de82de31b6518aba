import CheckpointCore
import Tokenizers

/// One (context, continuation) request in token ids, as lm-eval's Hugging Face backend encodes
/// it (`HFLM._encode_pair`, `_loglikelihood_tokens`).
public struct EncodedRequest: Sendable, Equatable {
    /// The context's tokens (left-truncated when the whole request is longer than the model's
    /// limit).
    public var context: [Int32]
    /// The scored tokens.
    public var continuation: [Int32]
}

/// lm-eval's request encoding:
/// - the context's trailing whitespace moves to the front of the continuation;
/// - the continuation's tokens are those of `encode(context + continuation)` after the
///   `encode(context)` prefix length;
/// - special tokens as the tokenizer adds them by default (its post-processor: BOS for Gemma,
///   nothing for SmolLM2), unless the text already starts with the BOS token's text;
/// - the model sees at most ``maxLength`` tokens: `(context + continuation)[-(maxLength+1):][:-1]`,
///   so the context is truncated from the left.
public struct RequestEncoder: Sendable {
    public let tokenizer: Tokenizer
    public let addSpecialTokens: Bool
    public let maxLength: Int

    public init(tokenizer: Tokenizer, addSpecialTokens: Bool, maxLength: Int) {
        self.tokenizer = tokenizer
        self.addSpecialTokens = addSpecialTokens
        self.maxLength = max(1, maxLength)
    }

    /// The context and continuation strings after moving the context's trailing whitespace.
    public static func split(context: String, continuation: String) -> (context: String, continuation: String) {
        let trimmed = PythonString.rstrip(context)
        let moved = context.unicodeScalars.count - trimmed.unicodeScalars.count
        guard moved > 0 else { return (context, continuation) }
        return (trimmed, String(context.unicodeScalars.suffix(moved)) + continuation)
    }

    /// lm-eval's `tok_encode`: the tokenizer's special tokens, except when the text already
    /// starts with the BOS token's text.
    func tokenize(_ text: String) -> [Int32] {
        var special = addSpecialTokens
        if special, let bos = tokenizer.bosTokenID {
            let b = tokenizer.decode([bos])
            if !b.isEmpty && text.hasPrefix(b) { special = false }
        }
        return tokenizer.encode(text, addSpecialTokens: special)
    }

    /// The model reads `context` (the context's own encoding, which may differ from the first
    /// tokens of the whole's) followed by `continuation`, as lm-eval feeds it.
    /// - Throws: `invalidArgument` when the continuation encodes to no token (nothing to score),
    ///   or the context is empty and the tokenizer has neither BOS nor EOS to stand for it.
    public func encode(context: String, continuation: String) throws(CheckpointError) -> EncodedRequest {
        let (c, k) = Self.split(context: context, continuation: continuation)
        var ctx: [Int32], cont: [Int32]
        if c.isEmpty {
            // lm-eval scores an empty context after its prefix token (BOS, else EOS).
            guard let prefix = tokenizer.bosTokenID ?? tokenizer.eosTokenID else {
                throw CheckpointError(.invalidArgument, "an empty context needs an EOS or BOS token, and the tokenizer has neither")
            }
            ctx = [prefix]
            cont = tokenize(k)
        } else {
            let whole = tokenize(c + k)
            ctx = tokenize(c)
            cont = whole.count > ctx.count ? Array(whole[ctx.count...]) : []
        }
        guard !cont.isEmpty else {
            throw CheckpointError(.invalidArgument, "the continuation \(String(reflecting: k)) encodes to no token after its context")
        }
        // The model input is (ctx + cont)[-(maxLength + 1):][:-1]: keep at most maxLength + 1 tokens.
        let keep = maxLength + 1
        if ctx.count + cont.count > keep {
            let drop = ctx.count + cont.count - keep
            guard drop < ctx.count else {
                throw CheckpointError(.invalidArgument, "a continuation of \(cont.count) tokens does not fit the model's \(maxLength)-token limit")
            }
            ctx.removeFirst(drop)
        }
        return EncodedRequest(context: ctx, continuation: cont)
    }
}
