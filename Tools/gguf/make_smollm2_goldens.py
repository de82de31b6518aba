"""Golden data for the SmolLM2-135M-Instruct Q4_1 GGUF (Tools/fetch-smollm2), computed with the
Python gguf package, numpy, tokenizers and transformers, written to Fixtures/gguf/smollm2/:

  tensors.json      per Hugging Face tensor: name, shape, float64 sum and sum of squares of the
                    dequantized (and, for q_proj/k_proj, un-permuted) values, and where its samples are
  samples.f32       per tensor, 64 elements at a fixed stride, then the full first and last rows
  tokenizer.json    -- not written: the reference is Fixtures/tokenizers/smollm2/tokenizer.json
  token-ids.json    ids of text.txt under the reference tokenizer.json (tokenizers library)
  text.txt          a few paragraphs of English (Persuasion, chapter 1, + digits and punctuation)
  logits.json       transformers LlamaForCausalLM on the Python-converted folder: prompt ids,
                    per position the top-10 (id, logit), logsumexp; last position in logits-last.f32

The Python conversion follows real-test-data.md section 1.5 (dequantize, reverse shape, rename,
un-permute Q/K: reshape (n_head, hd/2, 2, in) -> swap axes 1, 2 -> reshape)."""
import json
import math
import os
import sys

import numpy as np
import gguf

gguf_path, out, ref_tokenizer, text_path, work = sys.argv[1:6]
os.makedirs(out, exist_ok=True)

r = gguf.GGUFReader(gguf_path)
f = {k: v for k, v in r.fields.items()}
n_head = int(f["llama.attention.head_count"].contents())
n_kv = int(f["llama.attention.head_count_kv"].contents())

names = {"token_embd.weight": "model.embed_tokens.weight", "output_norm.weight": "model.norm.weight",
         "output.weight": "lm_head.weight"}
layer = {"attn_norm.weight": "input_layernorm.weight", "ffn_norm.weight": "post_attention_layernorm.weight",
         "attn_q.weight": "self_attn.q_proj.weight", "attn_k.weight": "self_attn.k_proj.weight",
         "attn_v.weight": "self_attn.v_proj.weight", "attn_output.weight": "self_attn.o_proj.weight",
         "ffn_gate.weight": "mlp.gate_proj.weight", "ffn_up.weight": "mlp.up_proj.weight",
         "ffn_down.weight": "mlp.down_proj.weight"}


def hf_name(n):
    if n in names:
        return names[n]
    _, i, rest = n.split(".", 2)
    return f"model.layers.{i}.{layer[rest]}"


def unpermute(w, heads):
    out_dim = w.shape[0]
    hd = out_dim // heads
    return w.reshape(heads, hd // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


tensors = {}
for t in r.tensors:
    shape = [int(x) for x in reversed(t.shape.tolist())]
    w = gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float32).reshape(shape)
    name = hf_name(t.name)
    if t.name.endswith("attn_q.weight"):
        w = unpermute(w, n_head)
    elif t.name.endswith("attn_k.weight"):
        w = unpermute(w, n_kv)
    tensors[name] = np.ascontiguousarray(w)

entries = []
samples = []
offset = 0
for name in sorted(tensors):
    w = tensors[name]
    flat = w.reshape(-1)
    stride = max(1, flat.size // 64)
    s = flat[::stride][:64]
    rows = [w.reshape(w.shape[0], -1)[0], w.reshape(w.shape[0], -1)[-1]] if w.ndim == 2 else [flat]
    block = np.concatenate([s] + rows).astype("<f4")
    entries.append({"name": name, "shape": list(w.shape), "sum": float(flat.astype(np.float64).sum()),
                    "sumsq": float((flat.astype(np.float64) ** 2).sum()), "stride": stride, "samples": int(s.size),
                    "row": int(rows[0].size), "offset": offset})
    samples.append(block)
    offset += block.size
np.concatenate(samples).tofile(os.path.join(out, "samples.f32"))
with open(os.path.join(out, "tensors.json"), "w") as fh:
    json.dump({"source": os.path.basename(gguf_path), "gguf": "0.19.0", "tensors": entries}, fh, indent=0)
    fh.write("\n")

# Tokenizer golden: the reference tokenizer.json on a few paragraphs.
from tokenizers import Tokenizer
text = open(text_path, encoding="utf-8").read()
paragraphs = text.split("\n\n")
sample = "\n\n".join(paragraphs[:12])[:6000]
sample += "\n\nIn 1811, 2,048 tokens cost $3.50 (or 12.5%)! Isn't it? -- \"Yes,\" she said; e-mail: a@b.co.\n"
with open(os.path.join(out, "text.txt"), "w", encoding="utf-8") as fh:
    fh.write(sample)
ref = Tokenizer.from_file(ref_tokenizer)
ids = ref.encode(sample, add_special_tokens=False).ids
with open(os.path.join(out, "token-ids.json"), "w") as fh:
    json.dump({"tokenizer": "Fixtures/tokenizers/smollm2/tokenizer.json", "ids": ids}, fh)
    fh.write("\n")

# The Python-converted folder, then transformers logits on a fixed prompt.
import torch
from safetensors.numpy import save_file
os.makedirs(work, exist_ok=True)
save_file(tensors, os.path.join(work, "model.safetensors"), metadata={"format": "pt"})
config = {
    "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 576, "intermediate_size": 1536,
    "num_hidden_layers": 30, "num_attention_heads": n_head, "num_key_value_heads": n_kv, "head_dim": 64,
    "vocab_size": 49152, "max_position_embeddings": 8192, "rms_norm_eps": 1e-5, "rope_theta": 100000.0,
    "hidden_act": "silu", "tie_word_embeddings": True, "attention_bias": False, "mlp_bias": False,
    "bos_token_id": 1, "eos_token_id": 2, "dtype": "float32",
}
with open(os.path.join(work, "config.json"), "w") as fh:
    json.dump(config, fh, indent=2)
from transformers import LlamaForCausalLM
torch.manual_seed(0)
model = LlamaForCausalLM.from_pretrained(work, dtype=torch.float32).eval()
prompt = "The capital of France is"
prompt_ids = ref.encode(prompt, add_special_tokens=False).ids
with torch.no_grad():
    logits = model(torch.tensor([prompt_ids])).logits[0].float().numpy()
top = []
for p in range(logits.shape[0]):
    order = np.argsort(-logits[p], kind="stable")[:10]
    lse = float(np.log(np.exp(logits[p].astype(np.float64) - logits[p].max()).sum()) + logits[p].max())
    top.append({"ids": [int(i) for i in order], "logits": [float(logits[p][i]) for i in order], "logsumexp": lse})
logits[-1].astype("<f4").tofile(os.path.join(out, "logits-last.f32"))
import transformers
with open(os.path.join(out, "logits.json"), "w") as fh:
    json.dump({"prompt": prompt, "ids": prompt_ids, "positions": top, "transformers": transformers.__version__,
               "torch": torch.__version__}, fh, indent=1)
    fh.write("\n")
print("top-1 after prompt:", ref.decode([top[-1]["ids"][0]]))
