import ArgumentParser

// Placeholder so that the root command builds; the tokenizer work replaces this file.
public struct TokenizeCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(commandName: "tokenize", abstract: "Turn text into token ids (not yet available).")
    public init() {}
    public func run() throws { throw ValidationError("tokenize is not available yet") }
}
