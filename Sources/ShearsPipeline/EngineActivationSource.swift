import CheckpointCore
import Engine
import Pruning

/// Activation statistics from the CPU engine, on any model ``ModelSource`` opens: the calibration windows run through the model one
/// decoder layer at a time (``LayerStream``), each layer's linear-layer inputs handed over chunk by
/// chunk.
public struct EngineActivationSource: ActivationSource {
    public init() {}

    public func stream(model: String, windows: [[Int32]]) throws -> any ActivationStream {
        Stream(try LayerStream(model: try ModelSource.open(model).engineModel(), windows: windows))
    }

    final class Stream: ActivationStream {
        let stream: LayerStream
        init(_ stream: LayerStream) { self.stream = stream }
        var layerCount: Int { stream.layerCount }

        func observe(advance: Bool, _ body: (ActivationSite, UnsafeBufferPointer<Float>, Int) throws -> Void) throws {
            try stream.observe(advance: advance) { a in
                for (site, m) in [(ActivationSite.attention, a.outputProjectionInput), (.mlp, a.downInput),
                                  (.attentionIn, a.attentionInput), (.mlpIn, a.mlpInput)] {
                    try m.withUnsafeBufferPointer { try body(site, $0, m.rows) }
                }
            }
        }

        func advance(outputProjection: ProjectionReplacement?, downProjection: ProjectionReplacement?) throws {
            func linear(_ r: ProjectionReplacement?) -> Linear? {
                r.map { Linear(weight: Matrix(rows: $0.rows, cols: $0.cols, values: $0.weight),
                               bias: $0.bias.map { Matrix(rows: 1, cols: $0.count, values: $0) }) }
            }
            if outputProjection == nil && downProjection == nil {
                try stream.advance()
            } else {
                try stream.advance(outputProjection: linear(outputProjection), downProjection: linear(downProjection))
            }
        }
    }
}
