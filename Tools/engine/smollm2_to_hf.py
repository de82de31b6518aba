"""Converts the SmolLM2-135M-Instruct Q4_1 GGUF to a Hugging Face LLaMA folder (real-test-data.md §1.5).

    python smollm2_to_hf.py GGUF OUT_DIR

Writes OUT_DIR/{config.json, model.safetensors (F32), tokenizer.json}: every tensor dequantized to
float32 with gguf-py, reversed to PyTorch's (out, in) shape, renamed to HF names, and Q/K rows
un-permuted from llama.cpp's interleaved rotary layout to HF's rotate-half layout (§1.4).
"""
import json, os, sys
import numpy as np
from gguf import GGUFReader
from gguf.quants import dequantize
from safetensors.numpy import save_file

src, out = sys.argv[1], sys.argv[2]
r = GGUFReader(src)

def field(name):
    f = r.fields[name]
    if len(f.types) == 1 and f.types[0].name == "STRING":
        return bytes(f.parts[f.data[0]]).decode("utf-8")
    if f.types[0].name == "ARRAY":
        if f.types[-1].name == "STRING":
            return [bytes(f.parts[i]).decode("utf-8") for i in f.data]
        return [f.parts[i].tolist()[0] for i in f.data]
    return f.parts[f.data[0]].tolist()[0]

n_head = field("llama.attention.head_count")
n_kv = field("llama.attention.head_count_kv")
hidden = field("llama.embedding_length")

def unpermute(w, n):
    out_, in_ = w.shape
    hd = out_ // n
    return w.reshape(n, hd // 2, 2, in_).swapaxes(1, 2).reshape(out_, in_)

names = {"token_embd.weight": "model.embed_tokens.weight", "output_norm.weight": "model.norm.weight",
         "output.weight": "lm_head.weight"}
per = {"attn_norm": "input_layernorm", "ffn_norm": "post_attention_layernorm",
       "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj",
       "attn_output": "self_attn.o_proj", "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj",
       "ffn_down": "mlp.down_proj"}
tensors = {}
for t in r.tensors:
    w = dequantize(t.data, t.tensor_type).astype(np.float32)
    shape = tuple(int(x) for x in reversed(t.shape.tolist()))
    w = w.reshape(shape)
    if t.name in names:
        name = names[t.name]
    else:
        _, i, kind, suffix = t.name.split(".")
        name = f"model.layers.{i}.{per[kind]}.{suffix}"
        if kind == "attn_q":
            w = unpermute(w, n_head)
        elif kind == "attn_k":
            w = unpermute(w, n_kv)
    tensors[name] = np.ascontiguousarray(w)
os.makedirs(out, exist_ok=True)
tmp = os.path.join(out, "model.safetensors.tmp")
save_file(tensors, tmp, metadata={"format": "pt", "source": "SmolLM2-135M-Instruct.Q4_1.gguf dequantized to F32, Q/K un-permuted"})
os.replace(tmp, os.path.join(out, "model.safetensors"))

tokens = field("tokenizer.ggml.tokens")
types = field("tokenizer.ggml.token_type")
merges = field("tokenizer.ggml.merges")
config = {
    "architectures": ["LlamaForCausalLM"], "model_type": "llama",
    "hidden_size": hidden, "intermediate_size": field("llama.feed_forward_length"),
    "num_hidden_layers": field("llama.block_count"), "num_attention_heads": n_head,
    "num_key_value_heads": n_kv, "head_dim": hidden // n_head, "vocab_size": len(tokens),
    "max_position_embeddings": field("llama.context_length"),
    "rms_norm_eps": float(np.float32(field("llama.attention.layer_norm_rms_epsilon"))),
    "rope_theta": float(field("llama.rope.freq_base")), "hidden_act": "silu",
    "tie_word_embeddings": "output.weight" not in [t.name for t in r.tensors],
    "attention_bias": False, "mlp_bias": False,
    "bos_token_id": field("tokenizer.ggml.bos_token_id"), "eos_token_id": field("tokenizer.ggml.eos_token_id"),
    "torch_dtype": "float32",
}
# rms eps stored as f32 in GGUF: 1e-5 exactly as the original config says
config["rms_norm_eps"] = 1e-5 if abs(config["rms_norm_eps"] - 1e-5) < 1e-9 else config["rms_norm_eps"]
with open(os.path.join(out, "config.json"), "w") as f:
    json.dump(config, f, indent=2)

added = [{"id": i, "content": tok, "single_word": False, "lstrip": False, "rstrip": False,
          "normalized": False, "special": True} for i, (tok, ty) in enumerate(zip(tokens, types)) if ty == 3]
tokjson = {
    "version": "1.0", "truncation": None, "padding": None, "added_tokens": added, "normalizer": None,
    "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
        {"type": "Digits", "individual_digits": True},
        {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}]},
    "post_processor": None,
    "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
    "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
              "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
              "vocab": {t: i for i, t in enumerate(tokens)},
              "merges": [m.split(" ") for m in merges]},
}
with open(os.path.join(out, "tokenizer.json"), "w") as f:
    json.dump(tokjson, f, ensure_ascii=False)
print(out)
