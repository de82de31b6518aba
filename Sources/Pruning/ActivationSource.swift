import CheckpointCore

/// A forward pass run one decoder layer at a time over calibration windows: the seam between
/// pruning and the engine for activation statistics (formats/recovery.md §2).
public protocol ActivationStream: AnyObject {
    var layerCount: Int { get }
    /// Runs the next layer with its stored weights and hands each chunk's site inputs to `body`
    /// (site, row-major values, rows); with `advance`, its outputs feed the next layer.
    func observe(advance: Bool, _ body: (ActivationSite, UnsafeBufferPointer<Float>, Int) throws -> Void) throws
    /// Runs the next layer with the output / down projections replaced by full-size row-major weights
    /// `[hidden, in]` (and biases), and moves on.
    func advance(outputProjection: ProjectionReplacement?, downProjection: ProjectionReplacement?) throws
}

/// A full-size replacement of a projection: removed input columns zero.
public struct ProjectionReplacement: Sendable {
    public var rows: Int
    public var cols: Int
    public var weight: [Float]
    public var bias: [Float]?
    public init(rows: Int, cols: Int, weight: [Float], bias: [Float]?) {
        precondition(weight.count == rows * cols && (bias == nil || bias!.count == rows), "ProjectionReplacement: sizes")
        self.rows = rows; self.cols = cols; self.weight = weight; self.bias = bias
    }
}

/// Opens activation streams on a model folder (the engine in the command-line tool; recorded
/// activations in tests).
public protocol ActivationSource {
    func stream(model: String, windows: [[Int32]]) throws -> any ActivationStream
}

extension ActivationStatistics {
    /// Runs `stream` through every layer, accumulating the sites `sites(layer)` asks for (site →
    /// whether to accumulate the covariance).
    public static func collect(_ stream: any ActivationStream, sites: (Int) -> [ActivationSite: Bool],
                               precision: CovariancePrecision = .float64, progress: ((Int, Int) -> Void)? = nil) throws -> ActivationStatistics {
        var stats = ActivationStatistics(layers: stream.layerCount)
        for l in 0..<stream.layerCount {
            let wanted = sites(l)
            try stream.observe(advance: true) { site, values, rows in
                guard let cov = wanted[site] else { return }
                if stats.layers[l][site] == nil { stats.layers[l][site] = SiteStatistics(width: values.count / max(rows, 1), covariance: cov, precision: precision) }
                stats.layers[l][site]!.add(values, rows: rows)
            }
            progress?(l + 1, stream.layerCount)
        }
        return stats
    }
}

/// Activations recorded in a safetensors file (the PyTorch goldens): `layers.{l}.{site}` as F32
/// `[rows, width]`. Replays the original model only (no replaced projections).
public struct RecordedActivationSource: ActivationSource {
    public let path: String
    public init(path: String) { self.path = path }

    public func stream(model: String, windows: [[Int32]]) throws -> any ActivationStream {
        let c = try Checkpoint.open(path)
        var layers = 0
        while c.info(named: "layers.\(layers).attention") != nil { layers += 1 }
        return Stream(checkpoint: c, layerCount: layers)
    }

    final class Stream: ActivationStream {
        let checkpoint: Checkpoint
        let layerCount: Int
        var next = 0
        init(checkpoint: Checkpoint, layerCount: Int) { self.checkpoint = checkpoint; self.layerCount = layerCount }

        func observe(advance: Bool, _ body: (ActivationSite, UnsafeBufferPointer<Float>, Int) throws -> Void) throws {
            for site in ActivationSite.allCases {
                let name = "layers.\(next).\(site.rawValue)"
                guard checkpoint.info(named: name) != nil else { continue }
                let view = try checkpoint.tensor(named: name)
                guard view.shape.count == 2 else {
                    throw CheckpointError(.shapeMismatch, "recorded activations must be [rows, width], not \(view.shape)", path: checkpoint.path, tensor: name)
                }
                let values = try view.floats()
                try values.withUnsafeBufferPointer { try body(site, $0, view.shape[0]) }
            }
            if advance { next += 1 }
        }

        func advance(outputProjection: ProjectionReplacement?, downProjection: ProjectionReplacement?) throws {
            if outputProjection != nil || downProjection != nil {
                throw CheckpointError(.invalidArgument, "recorded activations cannot replay a pruned layer (sequential statistics)", path: checkpoint.path)
            }
            next += 1
        }
    }
}
