import CheckpointCore
import ModelArchitecture

/// The weights of one decoder layer, converted to F32 from the mapped checkpoint.
public struct LayerWeights: Sendable {
    public let index: Int
    /// The model the layer belongs to: its tensor names, head dim and hidden size.
    public let model: ModelDescription
    public let sizes: LayerSizes
    public let inputNorm: Matrix          // [1, hidden]
    public let postAttentionNorm: Matrix  // [1, hidden]
    /// Per-head query and key norms (`[1, head_dim]`), for families whose attention has them.
    public let queryNorm: Matrix?, keyNorm: Matrix?
    public internal(set) var q: Linear, k: Linear, v: Linear, o: Linear
    public internal(set) var gate: Linear, up: Linear, down: Linear
    /// Gemma's norms of the attention and MLP outputs (`[1, hidden]`), nil for other families.
    public var attentionOutputNorm: Matrix? = nil, mlpOutputNorm: Matrix? = nil

    public var headDim: Int { model.headDim }
    public var hidden: Int { model.hiddenSize }

    /// The projections in ``TensorRole/projections`` order.
    private var projections: [(TensorRole, Linear)] {
        [(.query, q), (.key, k), (.value, v), (.output, o), (.gate, gate), (.up, up), (.down, down)]
    }

    /// (parameter name, matrix) pairs of this layer, weights and biases, with full Hugging Face
    /// names: the norms (input, post-attention, then query and key norms where present), then each
    /// projection's weight followed by its bias.
    public var parameters: [(String, Matrix)] {
        var out: [(String, Matrix)] = [(model.name(.inputNorm, .weight, layer: index), inputNorm),
                                       (model.name(.postAttentionNorm, .weight, layer: index), postAttentionNorm)]
        if let queryNorm { out.append((model.name(.queryNorm, .weight, layer: index), queryNorm)) }
        if let keyNorm { out.append((model.name(.keyNorm, .weight, layer: index), keyNorm)) }
        if let attentionOutputNorm { out.append((model.name(.attentionOutputNorm, .weight, layer: index), attentionOutputNorm)) }
        if let mlpOutputNorm { out.append((model.name(.mlpOutputNorm, .weight, layer: index), mlpOutputNorm)) }
        for (role, l) in projections {
            out.append((model.name(role, .weight, layer: index), l.weight))
            if let b = l.bias { out.append((model.name(role, .bias, layer: index), b)) }
        }
        return out
    }

    /// This layer with the adapters of `adapters` that sit on it attached to their projections.
    func attaching(_ adapters: LoRAAdapters?) -> LayerWeights {
        guard let adapters else { return self }
        var w = self
        func at(_ role: TensorRole) -> LoRAAdapter? { adapters.adapter(LoRAKey(layer: index, role: role)) }
        w.q.adapter = at(.query); w.k.adapter = at(.key); w.v.adapter = at(.value); w.o.adapter = at(.output)
        w.gate.adapter = at(.gate); w.up.adapter = at(.up); w.down.adapter = at(.down)
        return w
    }

    /// Converts layer `index`'s tensors; biases are used when the checkpoint has them.
    /// - Throws: `tensorNotFound` for a missing weight, `shapeMismatch` when a tensor's shape does
    ///   not agree with the description.
    public static func load(from checkpoint: any TensorStore, index: Int, description m: ModelDescription) throws(CheckpointError) -> LayerWeights {
        let s = m.layers[index]
        let h = m.hiddenSize, qDim = s.queryWidth(headDim: m.headDim), kvDim = s.keyValueWidth(headDim: m.headDim)
        let inter = s.intermediateSize
        func lin(_ role: TensorRole, out: Int, in inF: Int) throws(CheckpointError) -> Linear {
            let weight = m.name(role, .weight, layer: index), bias = m.name(role, .bias, layer: index)
            let w = try WeightLoader.matrix(checkpoint, weight, rows: out, cols: inF)
            let b: Matrix? = checkpoint.tensorInfo(named: bias) == nil || !m.tensors.declaration(role).mayHaveBias ? nil
                : try WeightLoader.matrix(checkpoint, bias, rows: 1, cols: out)
            return Linear(weight: w, bias: b)
        }
        let headNorms = m.family.blocks.queryKeyNorm && s.hasAttention
        func headNorm(_ role: TensorRole) throws(CheckpointError) -> Matrix? {
            headNorms ? try WeightLoader.matrix(checkpoint, m.name(role, .weight, layer: index), rows: 1, cols: m.headDim) : nil
        }
        func outputNorm(_ role: TensorRole) throws(CheckpointError) -> Matrix? {
            m.family.blocks.isGemma ? try WeightLoader.matrix(checkpoint, m.name(role, .weight, layer: index), rows: 1, cols: h) : nil
        }
        var w = LayerWeights(
            index: index, model: m, sizes: s,
            inputNorm: try WeightLoader.matrix(checkpoint, m.name(.inputNorm, .weight, layer: index), rows: 1, cols: h),
            postAttentionNorm: try WeightLoader.matrix(checkpoint, m.name(.postAttentionNorm, .weight, layer: index), rows: 1, cols: h),
            queryNorm: try headNorm(.queryNorm), keyNorm: try headNorm(.keyNorm),
            q: try lin(.query, out: qDim, in: h), k: try lin(.key, out: kvDim, in: h),
            v: try lin(.value, out: kvDim, in: h), o: try lin(.output, out: h, in: qDim),
            gate: try lin(.gate, out: inter, in: h), up: try lin(.up, out: inter, in: h),
            down: try lin(.down, out: h, in: inter))
        w.attentionOutputNorm = try outputNorm(.attentionOutputNorm)
        w.mlpOutputNorm = try outputNorm(.mlpOutputNorm)
        return w
    }
}

/// Converting mapped tensors of any float dtype to F32 matrices.
public enum WeightLoader {
    /// Tensor `name` as a `rows × cols` F32 matrix (a vector when rows == 1 and the tensor is 1-D).
    public static func matrix(_ checkpoint: any TensorStore, _ name: String, rows: Int, cols: Int) throws(CheckpointError) -> Matrix {
        guard let info = checkpoint.tensorInfo(named: name) else {
            throw CheckpointError(.tensorNotFound, "the checkpoint has no tensor '\(name)'", path: checkpoint.path, tensor: name)
        }
        let expected = rows == 1 ? [[cols], [1, cols]] : [[rows, cols]]
        guard expected.contains(info.shape) else {
            throw CheckpointError(.shapeMismatch, "shape \(info.shape) does not match the configuration's \(rows == 1 ? [cols] : [rows, cols])",
                                  path: checkpoint.path, tensor: name)
        }
        guard info.dtype.isFloatingPoint, info.dtype.convertsToFloat32 else {
            throw CheckpointError(.unsupportedConversion, "dtype \(info.dtype.rawValue) cannot be computed with (F32, F16, BF16, F64, F8 are)",
                                  path: checkpoint.path, tensor: name)
        }
        let m = Matrix(rows: rows, cols: cols)
        do {
            try checkpoint.withTensorBytes(name) { raw in
                try m.withUnsafeMutableBufferPointer { dst throws(CheckpointError) in try DTypeConversion.decode(raw, as: info.dtype, into: dst) }
            }
        } catch var e as CheckpointError {
            e.path = e.path ?? checkpoint.path
            e.tensor = e.tensor ?? name
            throw e
        } catch {
            throw CheckpointError(.io, "\(error)", path: checkpoint.path, tensor: name)
        }
        return m
    }
}
