import CheckpointCore

/// One multiple-choice question as lm-eval scores it: one (context, continuation) request per
/// choice, the target delimiter `" "` between them.
///
/// Usually the context is shared and the continuation is the choice. WinoGrande is "partial
/// evaluation": the context changes per option and the continuation is fixed.
public struct MultipleChoiceItem: Sendable, Equatable {
    /// One (context, continuation) pair per choice; the continuation starts with the delimiter.
    public var requests: [(context: String, continuation: String)]
    /// The strings whose character counts (Unicode code points, Python's `len`) divide the
    /// log-likelihoods for `acc_norm`: the choices, without the delimiter.
    public var choices: [String]
    /// The index of the right choice.
    public var gold: Int

    /// lm-eval's target delimiter.
    public static let delimiter = " "

    /// A question with one context and a continuation per choice.
    public init(context: String, choices: [String], gold: Int) throws(CheckpointError) {
        guard choices.indices.contains(gold) else {
            throw CheckpointError(.invalidFormat, "the gold index \(gold) names none of the \(choices.count) choices")
        }
        requests = choices.map { (context, Self.delimiter + $0) }
        self.choices = choices
        self.gold = gold
    }

    /// A question with a context per choice and one continuation (WinoGrande).
    public init(contexts: [String], continuation: String, gold: Int) throws(CheckpointError) {
        guard contexts.indices.contains(gold) else {
            throw CheckpointError(.invalidFormat, "the gold index \(gold) names none of the \(contexts.count) options")
        }
        requests = contexts.map { ($0, Self.delimiter + continuation) }
        choices = contexts
        self.gold = gold
    }

    public static func == (a: MultipleChoiceItem, b: MultipleChoiceItem) -> Bool {
        a.choices == b.choices && a.gold == b.gold && a.requests.count == b.requests.count
            && zip(a.requests, b.requests).allSatisfy { $0.context == $1.context && $0.continuation == $1.continuation }
    }
}
