"""Loads a `shears prune` output folder in transformers and checks its logits.

    python check_pruned_model.py PRUNED_FOLDER SOURCE_FOLDER

- Uniform widths (no auto_map): loads with stock AutoModelForCausalLM (no remote code).
- Per-layer widths: loads with trust_remote_code=True (the family's modeling_shears_*.py in the
  folder: llama, qwen3 with its q/k norms, gemma2, gemma3, or phi3).
Qwen3's and Gemma 3's per-head q_norm / k_norm run along head_dim, which no strategy slices: they stay
as they are; Gemma's four norms run along hidden_size (not sliced by block or layer pruning).
Phi-3's fused qkv_proj / gate_up_proj are zeroed block by block (query, key, value rows; gate,
up rows).
Block pruning: the logits must equal those of the source model with the removed heads, KV heads
and MLP channels (from pruning-manifest.json) zeroed, on fixed random tokens, in float64.
Layer pruning: the source with the removed layers skipped. Channel pruning changes RMSNorm's
mean over the hidden size, so there is no zeroed equivalent: the source is sliced here, in PyTorch,
to the manifest's kept hidden channels (embedding and lm_head columns, norm weights, q/k/v/gate/up
columns, o/down rows), and its logits must agree within 1e-5 of the largest |logit| (relative).
Prints one JSON line with the result; exits 1 on a mismatch.
"""
import json, os, sys
import torch
from transformers import AutoConfig, AutoModelForCausalLM

def main():
    pruned_dir, source_dir = sys.argv[1], sys.argv[2]
    manifest = json.load(open(os.path.join(pruned_dir, "pruning-manifest.json")))
    cfg = json.load(open(os.path.join(pruned_dir, "config.json")))
    remote = "auto_map" in cfg
    pruned = AutoModelForCausalLM.from_pretrained(pruned_dir, trust_remote_code=remote, dtype=torch.float64,
                                                  attn_implementation="eager").eval()
    source = AutoModelForCausalLM.from_pretrained(source_dir, dtype=torch.float64, attn_implementation="eager").eval()
    d = source.config.head_dim if getattr(source.config, "head_dim", None) else source.config.hidden_size // source.config.num_attention_heads
    strategy = manifest["settings"]["strategy"]
    fused = source.config.model_type == "phi3"
    with torch.no_grad():
        if strategy == "block" and fused:
            # Phi-3: rows of qkv_proj (query heads, key heads, value heads) and gate_up_proj (gate, up).
            H, KV, I = source.config.num_attention_heads, source.config.num_key_value_heads, source.config.intermediate_size
            for entry in manifest["layers"]:
                l = entry["layer"]; a = source.model.layers[l].self_attn; f = source.model.layers[l].mlp
                for h in entry["attention"]["removed_heads"]:
                    a.qkv_proj.weight[h * d:(h + 1) * d] = 0; a.o_proj.weight[:, h * d:(h + 1) * d] = 0
                for h in entry["attention"]["removed_kv_heads"]:
                    k0 = H * d + h * d; v0 = H * d + KV * d + h * d
                    a.qkv_proj.weight[k0:k0 + d] = 0; a.qkv_proj.weight[v0:v0 + d] = 0
                gone = entry["mlp"]["removed_channels"]
                if gone:
                    f.gate_up_proj.weight[gone] = 0; f.gate_up_proj.weight[[I + c for c in gone]] = 0; f.down_proj.weight[:, gone] = 0
        elif strategy == "block":
            for entry in manifest["layers"]:
                l = entry["layer"]; a = source.model.layers[l].self_attn; f = source.model.layers[l].mlp
                for h in entry["attention"]["removed_heads"]:
                    a.q_proj.weight[h * d:(h + 1) * d] = 0; a.o_proj.weight[:, h * d:(h + 1) * d] = 0
                for h in entry["attention"]["removed_kv_heads"]:
                    a.k_proj.weight[h * d:(h + 1) * d] = 0; a.v_proj.weight[h * d:(h + 1) * d] = 0
                gone = entry["mlp"]["removed_channels"]
                if gone:
                    f.gate_proj.weight[gone] = 0; f.up_proj.weight[gone] = 0; f.down_proj.weight[:, gone] = 0
        elif strategy == "channel":
            keep = torch.tensor(manifest["hidden"]["kept_channels"])
            tied = source.lm_head.weight is source.model.embed_tokens.weight
            def cut(module, axis):
                module.weight = torch.nn.Parameter(module.weight.index_select(axis, keep))
                if axis == 0 and getattr(module, "bias", None) is not None:
                    module.bias = torch.nn.Parameter(module.bias[keep])
            cut(source.model.embed_tokens, 1); cut(source.model.norm, 0)
            for layer in source.model.layers:
                cut(layer.input_layernorm, 0); cut(layer.post_attention_layernorm, 0)
                inputs = ((layer.self_attn.qkv_proj, layer.mlp.gate_up_proj) if fused else
                          (layer.self_attn.q_proj, layer.self_attn.k_proj, layer.self_attn.v_proj, layer.mlp.gate_proj, layer.mlp.up_proj))
                for m in inputs:
                    cut(m, 1)
                cut(layer.self_attn.o_proj, 0); cut(layer.mlp.down_proj, 0)
            if tied:
                source.lm_head.weight = source.model.embed_tokens.weight
            else:
                cut(source.lm_head, 1)
        elif strategy == "layer":
            keep = [l for l in range(len(source.model.layers)) if l not in manifest["removed_layers"]]
            source.model.layers = torch.nn.ModuleList([source.model.layers[l] for l in keep])
            for i, layer in enumerate(source.model.layers): layer.self_attn.layer_idx = i
            source.config.num_hidden_layers = len(keep)
            if getattr(source.config, "layer_types", None):   # Gemma / Qwen: sliding layers stay with their layers
                source.config.layer_types = [source.config.layer_types[l] for l in keep]
        ids = torch.randint(0, source.config.vocab_size, (4, 32), generator=torch.Generator().manual_seed(0))
        got = pruned(input_ids=ids, use_cache=False).logits
        want = source(input_ids=ids, use_cache=False).logits
    diff = float((got - want).abs().max())
    rel = diff / float(want.abs().max())
    dtype = manifest["settings"].get("dtype")
    tol = 1e-9 if dtype in (None, "F32", "F64") else 5e-2
    ok = rel <= 1e-5 if strategy == "channel" else diff <= tol * max(1.0, float(want.abs().max()))
    print(json.dumps({"folder": pruned_dir, "loader": "trust_remote_code" if remote else "stock", "strategy": strategy,
                      "hidden_size": pruned.config.hidden_size, "num_attention_heads": pruned.config.num_attention_heads,
                      "windows": list(ids.shape), "max_abs_diff": diff, "max_rel_diff": rel, "ok": ok, "parameters": sum(p.numel() for p in pruned.parameters()),
                      "manifest_parameters": manifest["result"]["parameters"]}))
    if not ok or sum(p.numel() for p in pruned.parameters()) != manifest["result"]["parameters"]:
        sys.exit(1)

if __name__ == "__main__":
    main()
