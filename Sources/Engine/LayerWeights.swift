import CheckpointCore
import ModelArchitecture

/// The weights of one decoder layer, converted to F32 from the mapped checkpoint.
public struct LayerWeights: Sendable {
    public let index: Int
    public let sizes: LayerSizesAndDim
    public let inputNorm: Matrix          // [1, hidden]
    public let postAttentionNorm: Matrix  // [1, hidden]
    public let q: Linear, k: Linear, v: Linear, o: Linear
    public let gate: Linear, up: Linear, down: Linear

    /// The name prefix of layer `index` in Hugging Face checkpoints.
    public static func prefix(_ index: Int) -> String { "model.layers.\(index)." }

    /// (parameter name, matrix) pairs of this layer, weights and biases, with full HF names.
    public var parameters: [(String, Matrix)] {
        let p = Self.prefix(index)
        var out: [(String, Matrix)] = [(p + "input_layernorm.weight", inputNorm), (p + "post_attention_layernorm.weight", postAttentionNorm)]
        for (n, l) in [("self_attn.q_proj", q), ("self_attn.k_proj", k), ("self_attn.v_proj", v), ("self_attn.o_proj", o),
                       ("mlp.gate_proj", gate), ("mlp.up_proj", up), ("mlp.down_proj", down)] {
            out.append((p + n + ".weight", l.weight))
            if let b = l.bias { out.append((p + n + ".bias", b)) }
        }
        return out
    }

    /// Converts layer `index`'s tensors; biases are used when the checkpoint has them.
    /// - Throws: `tensorNotFound` for a missing weight, `shapeMismatch` when a tensor's shape does
    ///   not agree with the configuration.
    public static func load(from checkpoint: any TensorStore, index: Int, architecture a: LlamaArchitecture) throws(CheckpointError) -> LayerWeights {
        let s = LayerSizesAndDim(a.layers[index], headDim: a.headDim, hidden: a.hiddenSize)
        let p = prefix(index)
        let h = a.hiddenSize
        func lin(_ name: String, out: Int, in inF: Int) throws(CheckpointError) -> Linear {
            let w = try WeightLoader.matrix(checkpoint, p + name + ".weight", rows: out, cols: inF)
            let b: Matrix? = checkpoint.tensorInfo(named: p + name + ".bias") == nil ? nil
                : try WeightLoader.matrix(checkpoint, p + name + ".bias", rows: 1, cols: out)
            return Linear(weight: w, bias: b)
        }
        return LayerWeights(
            index: index, sizes: s,
            inputNorm: try WeightLoader.matrix(checkpoint, p + "input_layernorm.weight", rows: 1, cols: h),
            postAttentionNorm: try WeightLoader.matrix(checkpoint, p + "post_attention_layernorm.weight", rows: 1, cols: h),
            q: try lin("self_attn.q_proj", out: s.qDim, in: h), k: try lin("self_attn.k_proj", out: s.kvDim, in: h),
            v: try lin("self_attn.v_proj", out: s.kvDim, in: h), o: try lin("self_attn.o_proj", out: h, in: s.qDim),
            gate: try lin("mlp.gate_proj", out: s.intermediate, in: h), up: try lin("mlp.up_proj", out: s.intermediate, in: h),
            down: try lin("mlp.down_proj", out: h, in: s.intermediate))
    }
}

/// A layer's sizes with the derived widths the kernels use.
public struct LayerSizesAndDim: Sendable, Equatable {
    public let heads: Int, kvHeads: Int, headDim: Int, intermediate: Int, hidden: Int
    public var qDim: Int { heads * headDim }
    public var kvDim: Int { kvHeads * headDim }
    /// Query heads per KV head.
    public var groupSize: Int { heads / kvHeads }
    /// Elements of the layer's seven projection weights and two norm weights (biases aside).
    public var weightCount: Int { hidden * (2 * qDim + 2 * kvDim + 3 * intermediate) + 2 * hidden }

    public init(_ s: LayerSizes, headDim: Int, hidden: Int) {
        heads = s.numAttentionHeads
        kvHeads = s.numKeyValueHeads
        self.headDim = headDim
        intermediate = s.intermediateSize
        self.hidden = hidden
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
