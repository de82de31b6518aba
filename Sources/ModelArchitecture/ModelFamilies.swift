import CheckpointCore

/// The one list of model families Shears supports. Engine, Pruning, GGUF and the commands ask it.
public enum ModelFamilies {
    /// Every family, one entry each (adding a family: its file in `Families/` and a line here).
    public static let all: [any ModelFamily] = [
        LlamaFamily(),
        MistralFamily(),
        Qwen2Family(),
        Qwen3Family(),
        Gemma2Family(),
        Gemma3TextFamily(),
        Gemma3Family(),
        Phi3Family(),
    ]

    /// The `model_type` values, for messages.
    public static var modelTypes: [String] { all.map(\.modelType) }

    /// The family of a `model_type`.
    public static func family(modelType: String) -> (any ModelFamily)? {
        all.first { $0.modelType == modelType }
    }

    /// The family a GGUF `general.architecture` belongs to (uniform widths).
    public static func family(ggufArchitecture: String) -> (any ModelFamily)? {
        all.first { $0.gguf.architecture == ggufArchitecture } ?? all.first { $0.gguf.alsoReads.contains(ggufArchitecture) }
    }

    /// The family of a parsed configuration.
    /// - Throws: `invalidConfig` naming the model type and the supported ones.
    public static func family(of configuration: ModelConfiguration) throws(CheckpointError) -> any ModelFamily {
        guard let type = configuration.modelType, let f = family(modelType: type) else {
            throw CheckpointError(.invalidConfig, "model_type \(configuration.modelType ?? "(missing)") is not supported; supported: \(modelTypes.joined(separator: ", "))")
        }
        return f
    }
}
