"""Reference folders for checking pruned GGUF files in llama.cpp (Tools/check-llama-cpp).

  python pruned_reference.py zero SOURCE MANIFEST OUT
      OUT = SOURCE (full size, its config.json) with the structures the manifest removed set to
      zero: q_proj rows and o_proj columns of removed query heads, k_proj/v_proj rows of removed
      KV heads, gate_proj/up_proj rows and down_proj columns of removed MLP channels. A model
      pruned by the manifest computes the same function (block strategy only).

  python pruned_reference.py expand SOURCE MANIFEST PRUNED OUT
      OUT = the pruned folder's tensors placed back at their kept rows and columns in the source's
      full-size shapes, zeros elsewhere, with the source's config.json (plus attention_bias /
      mlp_bias from the pruned one): for a model changed by prune --recover (refit o_proj/down_proj
      columns, added biases), the full-size model that computes what the pruned one does.

  python pruned_reference.py bias FOLDER OUT [--seed S] [--scale X]
      OUT = FOLDER with a random o_proj and down_proj bias in every layer (N(0, X²), seeded, the
      same vectors for every folder with the same hidden size and layer count) and all-zero
      q/k/v/gate/up biases, attention_bias and mlp_bias true: what prune --recover writes.

  python pruned_reference.py empty FOLDER OUT [--no-mlp L] [--no-attention L] [--empty L] [--zero]
      OUT = FOLDER with layer L's MLP, attention, or both removed (tensors left out and the
      *_per_layer lists set to 0, the forms GGUF output handles specially); with --zero the
      tensors are kept and set to zero instead (the full-size reference).

Inputs are never modified; OUT is written under a temporary name and renamed.
"""
import json
import os
import shutil
import sys

import torch
from safetensors.torch import load_file, save_file


def copy_companions(src, tmp):
    for name in os.listdir(src):
        if name.endswith(".safetensors") or name.endswith(".index.json") or name in ("pruning-manifest.json", "README.md"):
            continue
        p = os.path.join(src, name)
        if os.path.isfile(p):
            shutil.copy(p, os.path.join(tmp, name))


def load_folder(folder):
    tensors = {}
    for name in sorted(os.listdir(folder)):
        if name.startswith("model") and name.endswith(".safetensors"):  # not e.g. golden.safetensors
            tensors.update(load_file(os.path.join(folder, name)))
    return tensors


def write_folder(tensors, source, out, cfg=None):
    """Writes `tensors` as one model.safetensors with `source`'s companion files (and `cfg` as
    config.json when given) into a temporary folder, then moves it to `out`."""
    tmp = out + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    save_file({k: v.contiguous() for k, v in tensors.items()}, os.path.join(tmp, "model.safetensors"), metadata={"format": "pt"})
    copy_companions(source, tmp)
    if cfg is not None:
        json.dump(cfg, open(os.path.join(tmp, "config.json"), "w"), indent=2)
    if os.path.exists(out):
        shutil.rmtree(out)
    os.rename(tmp, out)


def zero(source, manifest_path, out):
    cfg = json.load(open(os.path.join(source, "config.json")))
    hd = cfg.get("head_dim") or cfg["hidden_size"] // cfg["num_attention_heads"]
    manifest = json.load(open(manifest_path))
    if manifest["settings"]["strategy"] != "block":
        sys.exit("zero: only block pruning (heads and MLP channels) is supported")
    t = load_folder(source)
    for entry in manifest["layers"]:
        l = entry["layer"]
        p = f"model.layers.{l}."
        att, mlp = entry.get("attention") or {}, entry.get("mlp") or {}
        for h in att.get("removed_heads", []):
            t[p + "self_attn.q_proj.weight"][h * hd:(h + 1) * hd, :] = 0
            t[p + "self_attn.o_proj.weight"][:, h * hd:(h + 1) * hd] = 0
        for h in att.get("removed_kv_heads", []):
            for w in ("k_proj", "v_proj"):
                t[p + f"self_attn.{w}.weight"][h * hd:(h + 1) * hd, :] = 0
        ch = torch.tensor(mlp.get("removed_channels", []), dtype=torch.long)
        if len(ch):
            t[p + "mlp.gate_proj.weight"][ch, :] = 0
            t[p + "mlp.up_proj.weight"][ch, :] = 0
            t[p + "mlp.down_proj.weight"][:, ch] = 0
    write_folder(t, source, out)


def expand(source, manifest_path, pruned, out):
    cfg = json.load(open(os.path.join(source, "config.json")))
    pcfg = json.load(open(os.path.join(pruned, "config.json")))
    hd = cfg.get("head_dim") or cfg["hidden_size"] // cfg["num_attention_heads"]
    manifest = json.load(open(manifest_path))
    if manifest["settings"]["strategy"] != "block":
        sys.exit("expand: only block pruning (heads and MLP channels) is supported")
    full, small = load_folder(source), load_folder(pruned)
    out_t = {}
    def rows(heads):
        return torch.tensor([h * hd + i for h in heads for i in range(hd)], dtype=torch.long)
    kept = {}
    for entry in manifest["layers"]:
        l = entry["layer"]
        att, mlp = entry.get("attention") or {}, entry.get("mlp") or {}
        kept[l] = (rows(att["kept_heads"]), rows(att["kept_kv_heads"]), torch.tensor(mlp["kept_channels"], dtype=torch.long))
    for name, t in small.items():
        if not name.startswith("model.layers."):
            out_t[name] = t
            continue
        l = int(name.split(".")[2])
        q, kv, ch = kept[l]
        kind = name.split(".", 3)[3]
        shape = list(full[name].shape) if name in full else None
        if kind.endswith(".bias") and shape is None:  # a bias recovery added
            w = full[name[:-len("bias")] + "weight"]
            shape = [w.shape[0]]
        z = torch.zeros(shape, dtype=t.dtype)
        if kind in ("self_attn.q_proj.weight", "self_attn.q_proj.bias"):
            z[q] = t
        elif kind in ("self_attn.k_proj.weight", "self_attn.v_proj.weight", "self_attn.k_proj.bias", "self_attn.v_proj.bias"):
            z[kv] = t
        elif kind == "self_attn.o_proj.weight":
            z[:, q] = t
        elif kind in ("mlp.gate_proj.weight", "mlp.up_proj.weight", "mlp.gate_proj.bias", "mlp.up_proj.bias"):
            z[ch] = t
        elif kind == "mlp.down_proj.weight":
            z[:, ch] = t
        else:  # norms, o_proj/down_proj biases: hidden-sized, unchanged in shape
            z = t
        out_t[name] = z
    for k in ("attention_bias", "mlp_bias"):
        if k in pcfg:
            cfg[k] = pcfg[k]
    write_folder(out_t, source, out, cfg)


def empty(folder, out, no_mlp, no_attention, zero_only):
    cfg = json.load(open(os.path.join(folder, "config.json")))
    t = load_folder(folder)
    n = cfg["num_hidden_layers"]
    lists = {k: list(cfg.get(k + "_per_layer") or [cfg[k]] * n)
             for k in ("num_attention_heads", "num_key_value_heads", "intermediate_size")}

    def drop(name):
        if zero_only:
            t[name].zero_()
        else:
            del t[name]

    for l in no_mlp:
        for w in ("gate_proj", "up_proj", "down_proj"):
            drop(f"model.layers.{l}.mlp.{w}.weight")
        lists["intermediate_size"][l] = 0
    for l in no_attention:
        for w in ("q_proj", "k_proj", "v_proj", "o_proj"):
            drop(f"model.layers.{l}.self_attn.{w}.weight")
        lists["num_attention_heads"][l] = 0
        lists["num_key_value_heads"][l] = 0
    if not zero_only:
        for k, v in lists.items():
            cfg[k + "_per_layer"] = v
    write_folder(t, folder, out, cfg)


def bias(folder, out, seed, scale):
    cfg = json.load(open(os.path.join(folder, "config.json")))
    t = load_folder(folder)
    n, hidden = cfg["num_hidden_layers"], cfg["hidden_size"]
    g = torch.Generator().manual_seed(seed)
    for l in range(n):
        p = f"model.layers.{l}."
        dtype = t[p + "self_attn.o_proj.weight"].dtype
        t[p + "self_attn.o_proj.bias"] = (torch.randn(hidden, generator=g, dtype=torch.float64) * scale).to(dtype)
        t[p + "mlp.down_proj.bias"] = (torch.randn(hidden, generator=g, dtype=torch.float64) * scale).to(dtype)
        for w in ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "mlp.gate_proj", "mlp.up_proj"):
            t[p + w + ".bias"] = torch.zeros(t[p + w + ".weight"].shape[0], dtype=dtype)
    cfg["attention_bias"] = True
    cfg["mlp_bias"] = True
    write_folder(t, folder, out, cfg)


def main():
    a = sys.argv[1:]
    if len(a) >= 4 and a[0] == "zero":
        zero(a[1], a[2], a[3])
    elif len(a) >= 5 and a[0] == "expand":
        expand(a[1], a[2], a[3], a[4])
    elif len(a) >= 3 and a[0] == "empty":
        def layers(flag):
            return [int(a[i + 1]) for i, x in enumerate(a) if x == flag]
        both = layers("--empty")
        empty(a[1], a[2], layers("--no-mlp") + both, layers("--no-attention") + both, "--zero" in a)
    elif len(a) >= 3 and a[0] == "bias":
        seed = int(a[a.index("--seed") + 1]) if "--seed" in a else 1
        scale = float(a[a.index("--scale") + 1]) if "--scale" in a else 0.05
        bias(a[1], a[2], seed, scale)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
