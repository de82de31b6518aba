"""Loads a `shears prune --recover ...` output folder in transformers and compares its logits with
logits computed by the Shears engine on the same tokens.

    python check_recovered_model.py FOLDER TOKENS.json LOGITS [--dtype float32|float64] [--tolerance X]

- FOLDER: a pruned output folder. Uniform widths (no `auto_map` in config.json): stock
  AutoModelForCausalLM, no remote code. Per-layer widths: trust_remote_code=True (the folder's
  modeling_shears_llama.py).
- TOKENS.json: a JSON array of token ids, or an array of equally long arrays (a batch).
- LOGITS: the engine's logits for those tokens, [T, V] or [B, T, V]: a .safetensors file (the
  tensor named `logits`, or its only tensor) or a .json nested array.

Every tensor transformers expects must be in the folder (a missing o_proj/down_proj bias, or a
missing zero q/k/v or gate/up bias once `attention_bias`/`mlp_bias` is set, would be randomly
initialized): the check fails when loading reports missing or unexpected keys. Prints one JSON line
(max |logit difference|, the largest |logit|, the loader, the bias tensors present and which of
them are non-zero); exits 1 when the difference exceeds tolerance · max(1, max |logit|).
"""
import argparse, json, os, sys
import torch
from transformers import AutoModelForCausalLM


def load_logits(path):
    if path.endswith(".safetensors"):
        from safetensors.torch import load_file
        t = load_file(path)
        x = t["logits"] if "logits" in t else (next(iter(t.values())) if len(t) == 1 else None)
        if x is None: sys.exit(f"{path}: no tensor named 'logits' and more than one tensor")
        return x.double()
    return torch.tensor(json.load(open(path)), dtype=torch.float64)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folder"); ap.add_argument("tokens"); ap.add_argument("logits")
    ap.add_argument("--dtype", choices=["float32", "float64"], default="float32",
                    help="transformers' compute dtype (the engine computes in float32)")
    ap.add_argument("--tolerance", type=float, default=1e-4, help="relative to max(1, max |logit|)")
    a = ap.parse_args()
    torch.set_num_threads(2)
    cfg = json.load(open(os.path.join(a.folder, "config.json")))
    remote = "auto_map" in cfg
    model, info = AutoModelForCausalLM.from_pretrained(a.folder, trust_remote_code=remote, dtype=getattr(torch, a.dtype),
                                                       attn_implementation="eager", output_loading_info=True)
    model.eval()
    missing = sorted(info.get("missing_keys", [])); unexpected = sorted(info.get("unexpected_keys", []))
    # A tied lm_head is reported neither way; anything else missing was randomly initialized.
    tokens = json.load(open(a.tokens))
    ids = torch.tensor(tokens if isinstance(tokens[0], list) else [tokens], dtype=torch.long)
    want = load_logits(a.logits)
    if want.dim() == 2: want = want[None]
    with torch.no_grad():
        got = model(input_ids=ids, use_cache=False).logits.double()
    if got.shape != want.shape:
        sys.exit(f"logit shapes differ: transformers {tuple(got.shape)}, given {tuple(want.shape)}")
    diff = float((got - want).abs().max()); scale = float(want.abs().max())
    biases = {n: bool(p.detach().abs().max() > 0) for n, p in model.named_parameters() if n.endswith(".bias")}
    ok = diff <= a.tolerance * max(1.0, scale) and not missing and not unexpected
    print(json.dumps({"folder": a.folder, "loader": "trust_remote_code" if remote else "stock", "dtype": a.dtype,
                      "attention_bias": cfg.get("attention_bias", False), "mlp_bias": cfg.get("mlp_bias", False),
                      "max_abs_diff": diff, "max_abs_logit": scale, "tolerance": a.tolerance, "ok": ok,
                      "missing_keys": missing, "unexpected_keys": unexpected,
                      "bias_tensors": len(biases), "nonzero_biases": sorted(n for n, nz in biases.items() if nz)}))
    if not ok: sys.exit(1)


if __name__ == "__main__":
    main()
