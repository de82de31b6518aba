"""Reads a GGUF file written by `shears convert FOLDER OUT.gguf` with the Python gguf package and
compares every tensor with the source folder (after llama.cpp's Q/K permutation): exact for float
types, within the Q8_0 bound for Q8_0. Also checks the metadata keys llama.cpp needs. A `deci` file
(per-layer sizes) must carry per-block arrays equal to the folder's *_per_layer lists, and
key_length/value_length; Q/K are un-permuted with each block's own head counts."""
import json
import os
import sys

import numpy as np
import gguf
from safetensors.numpy import load_file

path, folder = sys.argv[1:3]
r = gguf.GGUFReader(path)
fields = {k: v.contents() for k, v in r.fields.items() if not k.startswith("tokenizer.ggml.")}
arch = fields["general.architecture"]
required = ["context_length", "embedding_length", "block_count", "feed_forward_length", "rope.dimension_count",
            "attention.head_count", "attention.layer_norm_rms_epsilon"]
if arch == "deci":
    required += ["attention.head_count_kv", "attention.key_length", "attention.value_length"]
missing = [k for k in required if f"{arch}.{k}" not in fields]
print(f"{path}: GGUF v{r.fields['GGUF.version'].contents()}, {len(r.tensors)} tensors, arch {arch}, missing keys: {missing or 'none'}")
if "tokenizer.ggml.model" in r.fields:
    print("tokenizer:", r.fields["tokenizer.ggml.model"].contents(), r.fields["tokenizer.ggml.pre"].contents(),
          len(r.fields["tokenizer.ggml.tokens"].data), "tokens,", len(r.fields["tokenizer.ggml.merges"].data), "merges")
else:
    print("tokenizer: none (the folder has no tokenizer.json)")
cfg = json.load(open(os.path.join(folder, "config.json")))
src = {}
for f in sorted(os.listdir(folder)):
    if f.endswith(".safetensors"):
        try:
            src.update(load_file(os.path.join(folder, f)))
        except TypeError:  # bf16 needs torch
            from safetensors.torch import load_file as tl
            src.update({k: v.float().numpy() for k, v in tl(os.path.join(folder, f)).items()})
names = {"token_embd.weight": "model.embed_tokens.weight", "output_norm.weight": "model.norm.weight", "output.weight": "lm_head.weight"}
layer = {"attn_norm": "input_layernorm", "ffn_norm": "post_attention_layernorm", "attn_q": "self_attn.q_proj",
         "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj", "attn_output": "self_attn.o_proj",
         "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj", "ffn_down": "mlp.down_proj"}
ok = not missing
n_layers = cfg["num_hidden_layers"]
heads = cfg.get("num_attention_heads_per_layer") or [cfg["num_attention_heads"]] * n_layers
kv_heads = cfg.get("num_key_value_heads_per_layer") or [cfg.get("num_key_value_heads", cfg["num_attention_heads"])] * n_layers
if arch == "deci":
    ffn = cfg.get("intermediate_size_per_layer") or [cfg["intermediate_size"]] * n_layers
    arrays = {k: list(fields[f"deci.{k}"]) for k in ("attention.head_count", "attention.head_count_kv", "feed_forward_length")}
    same = arrays == {"attention.head_count": heads, "attention.head_count_kv": kv_heads, "feed_forward_length": ffn}
    print("deci per-block arrays:", "equal to config.json's per-layer lists" if same else f"DIFFER: {arrays}")
    ok &= same
worst = {}
for t in r.tensors:
    if t.name in names:
        hf = names[t.name]
    else:
        _, i, part, kind = t.name.split(".")
        hf = f"model.layers.{i}.{layer[part]}.{kind}"
    x = np.asarray(src[hf], dtype=np.float32)
    if t.name.endswith(("attn_q.weight", "attn_k.weight")) and arch in ("llama", "deci"):
        li = int(t.name.split(".")[1])
        h = heads[li] if "attn_q" in t.name else kv_heads[li]
        x = x.reshape(h, 2, x.shape[0] // h // 2, *x.shape[1:]).swapaxes(1, 2).reshape(x.shape)
    y = gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float32).reshape(x.shape)
    err = float(np.abs(x - y).max()) if x.size else 0.0
    kind = t.tensor_type.name
    if kind == "Q8_0":
        blocks = x.reshape(-1, 32)
        d = np.abs(blocks).max(axis=1) / 127
        bound = d / 2 + 127 * np.abs(d - d.astype(np.float16).astype(np.float32)) + 1e-6
        fine = bool((np.abs(blocks - y.reshape(-1, 32)) <= bound[:, None]).all())
    else:
        fine = err == 0
    ok &= fine
    worst[kind] = max(worst.get(kind, 0.0), err)
print("max |source - gguf| by type:", {k: f"{v:.3g}" for k, v in worst.items()})
print("RESULT:", "PASS" if ok else "FAIL")
sys.exit(0 if ok else 1)
