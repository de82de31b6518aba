import CheckpointCore
import ShearsJSON

/// The seven zero-shot tasks of LLM-Pruner's Table 1, defined as lm-eval-harness 0.4.13 defines
/// them (each task's YAML and utils.py under `lm_eval/tasks/`), over the raw rows that
/// `Tools/fetch-tasks` writes (one JSON object per line, the Hugging Face dataset's columns).
public enum ZeroShotTask: String, CaseIterable, Sendable, Codable {
    case boolq, piqa, hellaswag, winogrande
    case arcEasy = "arc_easy", arcChallenge = "arc_challenge"
    case openbookqa

    /// The task's name in lm-eval and on the command line.
    public var name: String { rawValue }

    /// The JSONL file `Tools/fetch-tasks` writes for this task.
    public var fileName: String { rawValue + ".jsonl" }

    /// The split the bundled data holds (lm-eval scores ARC and OpenBookQA on test; the bundled
    /// data has only validation).
    public var split: String { "validation" }

    /// Whether lm-eval's default split for this task is another one (so numbers differ from
    /// published test-split numbers).
    public var splitDiffersFromLMEval: Bool { self == .arcEasy || self == .arcChallenge || self == .openbookqa }

    /// The YAML's `metadata.version`.
    public var version: String {
        switch self {
        case .boolq: "2.0"
        default: "1.0"
        }
    }

    /// Whether lm-eval reports `acc_norm` (log-likelihood ÷ choice length in characters).
    public var reportsNormalizedAccuracy: Bool {
        switch self {
        case .boolq, .winogrande: false
        default: true
        }
    }

    /// Parses `--tasks`: a comma-separated list of names, or `all` for the seven (in the order of
    /// ``allCases``).
    public static func parseList(_ text: String) throws(CheckpointError) -> [ZeroShotTask] {
        if text == "all" { return allCases }
        var out: [ZeroShotTask] = []
        for part in text.split(separator: ",", omittingEmptySubsequences: false) {
            let name = String(part)
            guard let t = ZeroShotTask(rawValue: name) else {
                throw CheckpointError(.invalidUsage, "unknown task '\(name)': use all or a comma-separated list of \(allCases.map(\.name).joined(separator: ", "))")
            }
            if !out.contains(t) { out.append(t) }
        }
        return out
    }

    /// The multiple-choice item lm-eval builds from one raw row.
    /// - Throws: `invalidFormat` when a column is missing or of the wrong type, or the gold label
    ///   names no choice.
    public func item(_ row: JSONValue) throws(CheckpointError) -> MultipleChoiceItem {
        switch self {
        case .boolq:
            // lm-eval reads super_glue's `label`, which is int(answer) of this google/boolq layout.
            let passage = try row.string("passage"), question = try row.string("question")
            let gold = try row.bool("answer") ? 1 : 0
            return try MultipleChoiceItem(context: "\(passage)\nQuestion: \(question)?\nAnswer:", choices: ["no", "yes"], gold: gold)
        case .piqa:
            let goal = try row.string("goal")
            let label = try row.int("label")
            return try MultipleChoiceItem(context: "Question: \(goal)\nAnswer:", choices: [row.string("sol1"), row.string("sol2")], gold: label)
        case .hellaswag:
            let ctx = try row.string("ctx_a") + " " + PythonString.capitalize(row.string("ctx_b"))
            let query = PythonString.hellaswagPreprocess(try row.string("activity_label") + ": " + ctx)
            let endings = try row.strings("endings").map(PythonString.hellaswagPreprocess)
            guard let label = Int(try row.string("label")) else { throw rowError("label is not an integer") }
            return try MultipleChoiceItem(context: query, choices: endings, gold: label)
        case .winogrande:
            let sentence = try row.string("sentence")
            let scalars = Array(sentence.unicodeScalars)
            guard let i = scalars.firstIndex(of: "_") else { throw rowError("the sentence has no '_' blank") }
            let head = String(String.UnicodeScalarView(scalars[..<i]))
            let tail = PythonString.strip(String(String.UnicodeScalarView(scalars[(i + 1)...])))
            let options = [try row.string("option1"), try row.string("option2")]
            let gold: Int
            switch try row.string("answer") {
            case "1": gold = 0
            case "2": gold = 1
            default: throw rowError("answer is not \"1\" or \"2\"")
            }
            return try MultipleChoiceItem(contexts: options.map { head + $0 }, continuation: tail, gold: gold)
        case .arcEasy, .arcChallenge:
            let (texts, labels) = try row.choices()
            guard let gold = labels.firstIndex(of: try row.string("answerKey")) else { throw rowError("answerKey is not one of the choice labels") }
            return try MultipleChoiceItem(context: "Question: \(row.string("question"))\nAnswer:", choices: texts, gold: gold)
        case .openbookqa:
            let (texts, labels) = try row.choices()
            let key = PythonString.lstrip(try row.string("answerKey"))
            guard let gold = labels.firstIndex(of: key) else { throw rowError("answerKey is not one of the choice labels") }
            return try MultipleChoiceItem(context: row.string("question_stem"), choices: texts, gold: gold)
        }
    }

    private func rowError(_ message: String) -> CheckpointError {
        CheckpointError(.invalidFormat, "\(name): a row's \(message)")
    }
}

extension JSONValue {
    fileprivate func field(_ key: String) throws(CheckpointError) -> JSONValue {
        guard let v = self[key] else { throw CheckpointError(.invalidFormat, "a task row has no '\(key)' column") }
        return v
    }

    fileprivate func string(_ key: String) throws(CheckpointError) -> String {
        guard let s = try field(key).stringValue else { throw CheckpointError(.invalidFormat, "a task row's '\(key)' is not a string") }
        return s
    }

    fileprivate func strings(_ key: String) throws(CheckpointError) -> [String] {
        guard let a = try field(key).arrayValue else { throw CheckpointError(.invalidFormat, "a task row's '\(key)' is not a list") }
        var out: [String] = []
        for v in a {
            guard let s = v.stringValue else { throw CheckpointError(.invalidFormat, "a task row's '\(key)' holds a non-string") }
            out.append(s)
        }
        return out
    }

    fileprivate func int(_ key: String) throws(CheckpointError) -> Int {
        guard let i = try field(key).intValue else { throw CheckpointError(.invalidFormat, "a task row's '\(key)' is not an integer") }
        return i
    }

    fileprivate func bool(_ key: String) throws(CheckpointError) -> Bool {
        guard let b = try field(key).boolValue else { throw CheckpointError(.invalidFormat, "a task row's '\(key)' is not a boolean") }
        return b
    }

    /// `choices.text` and `choices.label` (ARC, OpenBookQA).
    fileprivate func choices() throws(CheckpointError) -> (texts: [String], labels: [String]) {
        let c = try field("choices")
        return (try c.strings("text"), try c.strings("label"))
    }
}
