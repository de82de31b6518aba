"""Writes a synthetic LLaMA of about 1B parameters with random bf16 weights (for Tools/bench-engine
--synthetic): hidden 2048, 16 layers, 32 query / 8 KV heads of 64, SwiGLU 8192, vocab 32000, tied.

    python make_synthetic.py OUT_DIR
"""
import json, os, sys
import torch
from safetensors.torch import save_file

out = sys.argv[1]
h, layers, heads, kv, d, inter, vocab = 2048, 16, 32, 8, 64, 8192, 32000
g = torch.Generator().manual_seed(0)
def rnd(*shape, std=0.02):
    return (torch.randn(*shape, generator=g) * std).to(torch.bfloat16)
t = {"model.embed_tokens.weight": rnd(vocab, h), "model.norm.weight": torch.ones(h, dtype=torch.bfloat16)}
for i in range(layers):
    p = f"model.layers.{i}."
    t[p + "input_layernorm.weight"] = torch.ones(h, dtype=torch.bfloat16)
    t[p + "post_attention_layernorm.weight"] = torch.ones(h, dtype=torch.bfloat16)
    t[p + "self_attn.q_proj.weight"] = rnd(heads * d, h)
    t[p + "self_attn.k_proj.weight"] = rnd(kv * d, h)
    t[p + "self_attn.v_proj.weight"] = rnd(kv * d, h)
    t[p + "self_attn.o_proj.weight"] = rnd(h, heads * d)
    t[p + "mlp.gate_proj.weight"] = rnd(inter, h)
    t[p + "mlp.up_proj.weight"] = rnd(inter, h)
    t[p + "mlp.down_proj.weight"] = rnd(h, inter)
os.makedirs(out, exist_ok=True)
save_file(t, os.path.join(out, "model.safetensors"), metadata={"format": "pt"})
json.dump({"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": h, "num_hidden_layers": layers,
           "num_attention_heads": heads, "num_key_value_heads": kv, "head_dim": d, "intermediate_size": inter,
           "vocab_size": vocab, "rms_norm_eps": 1e-5, "rope_theta": 500000.0, "tie_word_embeddings": True,
           "max_position_embeddings": 2048, "hidden_act": "silu", "torch_dtype": "bfloat16"},
          open(os.path.join(out, "config.json"), "w"), indent=2)
print(sum(v.numel() for v in t.values()), "parameters")
