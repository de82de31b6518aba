"""PyTorch reference of LLM-Pruner's scoring and selection (llm-pruner.md), as Shears specifies it.

Gradients come from autograd on transformers' LlamaForCausalLM in float64 (RMSNorm and the loss
patched to stay in float64); everything else (saliences, group reductions with the GQA fix,
counts, local/global selection, random draws with SplitMix64) is implemented here independently
of the Swift code, following llm-pruner.md and formats/manifest.md.

    python reference.py OUT_DIR REPO_ROOT

writes OUT_DIR/<model>/{config.json, model.safetensors (tiny random models only),
gradients.safetensors, fisher.safetensors, goldens.json} and OUT_DIR/functional.json.
"""
import copy, hashlib, json, math, os, sys
import numpy as np
import torch
from safetensors.torch import save_file, load_file

torch.set_num_threads(2)

# ---------------------------------------------------------------------------------------------
# float64 forward/backward

def _rms_forward(self, h):
    var = h.pow(2).mean(-1, keepdim=True)
    return self.weight * (h * torch.rsqrt(var + self.variance_epsilon))

import transformers.models.llama.modeling_llama as ml
ml.LlamaRMSNorm.forward = _rms_forward
from transformers import LlamaConfig, LlamaForCausalLM

def causal_loss(model, ids):
    logits = model(input_ids=ids).logits
    return torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1))

def gradients(model, ids):
    """(g, fisher_sum): gradient of the batch's mean loss; Σ_s (∂L_s/∂W)² over samples."""
    params = dict(model.named_parameters())
    fisher = {n: torch.zeros_like(p) for n, p in params.items()}
    for s in range(ids.shape[0]):
        model.zero_grad()
        causal_loss(model, ids[s:s + 1]).backward()
        for n, p in params.items():
            fisher[n] += p.grad.detach() ** 2
    model.zero_grad()
    causal_loss(model, ids).backward()
    g = {n: p.grad.detach().clone() for n, p in params.items()}
    model.zero_grad()
    return g, fisher

# SplitMix64 (the random estimator and nothing else here): Tools/pruning/splitmix.py
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from splitmix import SplitMix64  # noqa: E402

# ---------------------------------------------------------------------------------------------
# Saliences and group scores

def reduce_member(W, g, F, nsamples, est, axis):
    """Per-channel salience of one member. axis 'rows' sums over columns (out-channels)."""
    W = W.double()
    if W.dim() == 1: W = W[None]; g = None if g is None else g[None]; F = None if F is None else F[None]
    dim = 1 if axis == "rows" else 0
    if est == "l1": S = W.abs()
    elif est == "l2": S = W * W
    else:
        g = g.double()
        if est == "vectorize": return (W * g).sum(dim).abs()
        if est == "param_first": S = (W * g).abs()
        else:
            Fm = F.double() / nsamples
            if est == "param_second": S = (W * Fm * W).abs()
            else: S = (W * g - 0.5 * W * Fm * W).abs()
    return S.sum(dim)

def combine(members, red):
    X = torch.stack(members)
    if red == "sum": return X.sum(0)
    if red == "mean": return X.mean(0)
    if red == "max": return X.max(0).values
    if red == "prod": return X.prod(0)
    if red == "first": return X[0]
    raise ValueError(red)

class Ctx:
    def __init__(self, cfg, weights, grads, fisher, nsamples):
        self.cfg, self.W, self.G, self.F, self.N = cfg, weights, grads, fisher, nsamples
        self.L = cfg["num_hidden_layers"]; self.H = cfg["hidden_size"]; self.nh = cfg["num_attention_heads"]
        self.nkv = cfg["num_key_value_heads"]; self.d = cfg["head_dim"]; self.I = cfg["intermediate_size"]
        self.rep = self.nh // self.nkv
    def member(self, name, est, axis):
        return reduce_member(self.W[name], self.G.get(name) if self.G else None, self.F.get(name) if self.F else None, self.N, est, axis)

def att(l, p): return f"model.layers.{l}.self_attn.{p}_proj.weight"
def mlp(l, p): return f"model.layers.{l}.mlp.{p}_proj.weight"

def block_scores(c, est, red, policy, att_layers, mlp_layers, rng=None):
    """{'attention': {l: [..]}, 'mlp': {l: [..]}} per unit (query head or KV head; MLP channel)."""
    out = {"attention": {}, "mlp": {}}
    d = c.d
    for l in range(c.L):
        if l in att_layers:
            if est == "random":
                n = c.nh if policy == "query" else c.nkv
                out["attention"][l] = [sum(rng.uniform() for _ in range(d)) for _ in range(n)]
            else:
                q = c.member(att(l, "q"), est, "rows"); o = c.member(att(l, "o"), est, "columns")
                if policy == "query":
                    ch = combine([q, o], red)
                else:
                    k = c.member(att(l, "k"), est, "rows"); v = c.member(att(l, "v"), est, "rows")
                    if c.rep == 1:
                        ch = combine([q, k, v, o], red)
                    else:
                        # Shears' GQA fix: query head h·rep + r belongs to KV head h.
                        fold = lambda x: x.view(c.nkv, c.rep, d).sum(1).reshape(-1)
                        ch = combine([k, fold(q), v, fold(o)], red)
                out["attention"][l] = ch.view(-1, d).sum(1).tolist()
        if l in mlp_layers:
            if est == "random":
                out["mlp"][l] = [rng.uniform() for _ in range(c.I)]
            else:
                ch = combine([c.member(mlp(l, "gate"), est, "rows"), c.member(mlp(l, "up"), est, "rows"),
                              c.member(mlp(l, "down"), est, "columns")], red)
                out["mlp"][l] = ch.tolist()
    return out

def channel_scores(c, est, red, rng=None, tied=False):
    if est == "random": return [rng.uniform() for _ in range(c.H)]
    names = [(f"model.layers.0.input_layernorm.weight", "columns"), ("model.embed_tokens.weight", "columns")]
    for l in range(c.L):
        if l > 0: names.append((f"model.layers.{l}.input_layernorm.weight", "columns"))
        names += [(att(l, p), "columns") for p in "qkv"] + [(att(l, "o"), "rows")]
        names.append((f"model.layers.{l}.post_attention_layernorm.weight", "columns"))
        names += [(mlp(l, p), "columns") for p in ("gate", "up")] + [(mlp(l, "down"), "rows")]
    names.append(("model.norm.weight", "columns"))
    if not tied: names.append(("lm_head.weight", "columns"))
    return combine([c.member(n, est, a) for n, a in names], red).tolist()

def layer_scores(c, est, red, rng=None):
    if est == "random": return [rng.uniform() for _ in range(c.L)]
    out = []
    for l in range(c.L):
        names = [att(l, p) for p in "qkvo"] + [mlp(l, p) for p in ("gate", "up", "down")] + \
                [f"model.layers.{l}.input_layernorm.weight", f"model.layers.{l}.post_attention_layernorm.weight"]
        out.append(combine([c.member(n, est, "rows").sum()[None] for n in names], red).item())
    return out

# ---------------------------------------------------------------------------------------------
# Counts and selection (llm-pruner.md §1.8, §3.1–3.2)

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "pruning"))
from counts import to_remove, hidden_to_remove, query_per_group, lowest  # noqa: E402

def select_block(c, scores, policy, ratio, scope, round_to=None):
    """Kept query heads, KV heads and MLP channels per layer."""
    d, res = c.d, {}
    acount, mcount = {}, {}
    for l, s in scores["attention"].items():
        if policy == "query":
            per = min(query_per_group(c.nh, c.nkv, ratio, c.d), c.rep - 1)
            acount[l] = per * c.nkv
        else:
            acount[l] = min(to_remove(c.nkv * d, c.nkv * d, ratio) // d, c.nkv - 1)
    for l, s in scores["mlp"].items():
        n = min(to_remove(c.I, c.I, ratio), c.I - 1)
        if round_to:
            kept = min(c.I, -(-(c.I - n) // round_to) * round_to); n = c.I - kept
        mcount[l] = n
    if scope != "local":
        allu = []
        amean = np.mean([x for v in scores["attention"].values() for x in v]) if scores["attention"] else 1
        mmean = np.mean([x for v in scores["mlp"].values() for x in v]) if scores["mlp"] else 1
        if scope == "global-raw": amean = mmean = 1
        for l, v in scores["attention"].items(): allu += [(x / amean, l, True) for x in v]
        for l, v in scores["mlp"].items(): allu += [(x / mmean, l, False) for x in v]
        n = len(allu) - int(len(allu) * (1 - ratio))
        acount = {l: 0 for l in scores["attention"]}; mcount = {l: 0 for l in scores["mlp"]}
        if n > 0:
            thr = sorted(u[0] for u in allu)[n - 1]
            for x, l, a in allu:
                if x <= thr:
                    if a: acount[l] += 1
                    else: mcount[l] += 1
        for l in acount:
            if policy == "query": acount[l] = min(acount[l] // c.nkv, c.rep - 1) * c.nkv
            else: acount[l] = min(acount[l], c.nkv - 1)
        for l in mcount:
            m = min(mcount[l], c.I - 1)
            if round_to and m > 0:
                kept = min(c.I, -(-(c.I - m) // round_to) * round_to); m = c.I - kept
            mcount[l] = m
    for l in range(c.L):
        heads, kv, ch = list(range(c.nh)), list(range(c.nkv)), list(range(c.I))
        if l in scores["attention"]:
            s = scores["attention"][l]
            if policy == "query":
                per = acount[l] // c.nkv
                heads = sorted(h for g in range(c.nkv) for h in lowest(s, list(range(g * c.rep, (g + 1) * c.rep)), per))
            else:
                kv = lowest(s, kv, acount[l])
                heads = [h * c.rep + r for h in kv for r in range(c.rep)]
        if l in scores["mlp"]:
            ch = lowest(scores["mlp"][l], ch, mcount[l])
        res[l] = {"heads": heads, "kv_heads": kv, "channels": ch}
    return res

# ---------------------------------------------------------------------------------------------
# Models

BASE = dict(hidden_size=64, vocab_size=128, rms_norm_eps=1e-6, max_position_embeddings=64,
            initializer_range=0.08, tie_word_embeddings=False, attention_bias=False, mlp_bias=False)
MODELS = {
    "tiny-mha": dict(BASE, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=4, head_dim=16, intermediate_size=96),
    "tiny-gqa": dict(BASE, num_hidden_layers=3, num_attention_heads=8, num_key_value_heads=2, head_dim=8, intermediate_size=96),
}

def randomize(model, gen):
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name: p.copy_(1 + 0.2 * torch.randn(p.shape, generator=gen))

def load_or_make(name, repo, out):
    """(model in float64, config dict, folder holding config.json and weights)."""
    if name == "tiny-llama":
        folder = os.path.join(repo, "Fixtures/safetensors/tiny-llama")
        model = LlamaForCausalLM.from_pretrained(folder, dtype=torch.float64, attn_implementation="eager")
        cfg = json.load(open(os.path.join(folder, "config.json")))
        return model, cfg, folder
    folder = os.path.join(out, name)
    os.makedirs(folder, exist_ok=True)
    torch.manual_seed(1234)
    model = LlamaForCausalLM(LlamaConfig(**MODELS[name], attn_implementation="eager")).float()
    randomize(model, torch.Generator().manual_seed(99))
    model.save_pretrained(folder)           # float32 safetensors + config.json
    for junk in ("generation_config.json",):
        p = os.path.join(folder, junk)
        if os.path.exists(p): os.remove(p)
    model = model.double()
    cfg = json.load(open(os.path.join(folder, "config.json")))
    return model, cfg, folder

def default_range(L):
    return list(range(min(4, L // 4), L - min(2, L // 8)))

def rounded(x): return float(f"{x:.12g}")

def run_model(name, repo, out):
    model, cfg, folder = load_or_make(name, repo, out)
    model.eval()
    V, L = cfg["vocab_size"], cfg["num_hidden_layers"]
    ids = torch.randint(0, V, (4, 16), generator=torch.Generator().manual_seed(7))
    g, fisher = gradients(model, ids)
    # Stored as float32; the reference scores are computed from the stored values.
    g32 = {n: t.float().contiguous() for n, t in g.items()}
    f32 = {n: t.float().contiguous() for n, t in fisher.items()}
    dst = os.path.join(out, name)
    os.makedirs(dst, exist_ok=True)
    save_file(g32, os.path.join(dst, "gradients.safetensors"))
    save_file(f32, os.path.join(dst, "fisher.safetensors"))
    weights = {n: p.detach().float() for n, p in model.named_parameters()}
    c = Ctx(cfg, weights, g32, f32, ids.shape[0])
    gqa = c.nkv < c.nh
    goldens = {"model": name, "tokens": ids.tolist(), "samples": ids.shape[0], "scores": [], "selections": [], "channel": [], "layer": []}
    ests = ["l1", "l2", "random", "vectorize", "param_first", "param_second", "param_mix"]
    reds = ["sum", "mean", "max", "prod", "first"]
    policies = ["kv-group", "query"] if gqa else ["kv-group"]
    ranges = [("default", default_range(L), default_range(L))]
    if L > 2: ranges.append(("1:L-1/0:L", list(range(1, L - 1)), list(range(0, L))))
    for est in ests:
        for red in (["sum"] if est == "random" else reds):
            for policy in policies:
                for rname, ar, mr in ranges:
                    rng = SplitMix64(42)
                    s = block_scores(c, est, red, policy, set(ar), set(mr), rng)
                    entry = {"importance": est, "reduction": red, "gqa": policy, "attention_layers": [ar[0], ar[-1] + 1],
                             "mlp_layers": [mr[0], mr[-1] + 1],
                             "attention": {str(l): [rounded(x) for x in v] for l, v in s["attention"].items()},
                             "mlp": {str(l): [rounded(x) for x in v] for l, v in s["mlp"].items()}}
                    goldens["scores"].append(entry)
                    for scope in ["local", "global", "global-raw"]:
                        for ratio in [0.25, 0.5]:
                            for rt in ([None, 32] if scope == "local" and ratio == 0.25 else [None]):
                                sel = select_block(c, s, policy, ratio, scope, rt)
                                goldens["selections"].append({
                                    "importance": est, "reduction": red, "gqa": policy, "attention_layers": entry["attention_layers"],
                                    "mlp_layers": entry["mlp_layers"], "scope": scope, "ratio": ratio, "round_to": rt,
                                    "layers": {str(l): v for l, v in sel.items()}})
        for red in (["sum", "mean"] if est != "random" else ["sum"]):
            rng = SplitMix64(42)
            s = channel_scores(c, est, red, rng, cfg.get("tie_word_embeddings", False))
            kept = lowest(s, list(range(c.H)), hidden_to_remove(c.H, c.H, 0.25, c.nh))
            goldens["channel"].append({"importance": est, "reduction": red, "ratio": 0.25, "scores": [rounded(x) for x in s], "kept": kept})
            rng = SplitMix64(42)
            s = layer_scores(c, est, red, rng)
            goldens["layer"].append({"importance": est, "reduction": red, "remove": 1, "scores": [rounded(x) for x in s],
                                     "kept": lowest(s, list(range(L)), 1)})
    json.dump(goldens, open(os.path.join(dst, "goldens.json"), "w"), separators=(",", ":"))
    return model, cfg, folder, c, ids

# ---------------------------------------------------------------------------------------------
# Functional exactness: the physically pruned model equals the source with the removed parts zeroed.

def zeroed(model, c, sel):
    m = copy.deepcopy(model)
    d = c.d
    with torch.no_grad():
        for l, s in sel.items():
            a = m.model.layers[l].self_attn; f = m.model.layers[l].mlp
            gone_q = [h for h in range(c.nh) if h not in s["heads"]]
            gone_kv = [h for h in range(c.nkv) if h not in s["kv_heads"]]
            for h in gone_q:
                a.q_proj.weight[h * d:(h + 1) * d] = 0; a.o_proj.weight[:, h * d:(h + 1) * d] = 0
            for h in gone_kv:
                a.k_proj.weight[h * d:(h + 1) * d] = 0; a.v_proj.weight[h * d:(h + 1) * d] = 0
            gone = [j for j in range(c.I) if j not in s["channels"]]
            f.gate_proj.weight[gone] = 0; f.up_proj.weight[gone] = 0; f.down_proj.weight[:, gone] = 0
    return m

def sliced_state(model, c, sel):
    d, sd = c.d, {}
    for n, p in model.state_dict().items():
        t = p.detach()
        parts = n.split(".")
        if n.startswith("model.layers."):
            l = int(parts[2]); s = sel[l]
            q = [h * d + t_ for h in s["heads"] for t_ in range(d)]
            kv = [h * d + t_ for h in s["kv_heads"] for t_ in range(d)]
            if n.endswith("q_proj.weight"): t = t[q]
            elif n.endswith("k_proj.weight") or n.endswith("v_proj.weight"): t = t[kv]
            elif n.endswith("o_proj.weight"): t = t[:, q]
            elif n.endswith("gate_proj.weight") or n.endswith("up_proj.weight"): t = t[s["channels"]]
            elif n.endswith("down_proj.weight"): t = t[:, s["channels"]]
        sd[n] = t.contiguous()
    return sd

def functional(model, cfg, c, sel, modeling_dir):
    sys.path.insert(0, modeling_dir)
    from modeling_shears_llama import ShearsLlamaConfig, ShearsLlamaForCausalLM
    kw = {k: v for k, v in cfg.items() if k not in ("architectures", "transformers_version", "dtype", "torch_dtype")}
    pc = ShearsLlamaConfig(num_attention_heads_per_layer=[len(sel[l]["heads"]) for l in range(c.L)],
                           num_key_value_heads_per_layer=[len(sel[l]["kv_heads"]) for l in range(c.L)],
                           intermediate_size_per_layer=[len(sel[l]["channels"]) for l in range(c.L)], **kw)
    pc._attn_implementation = "eager"
    pruned = ShearsLlamaForCausalLM(pc).double()
    pruned.load_state_dict(sliced_state(model, c, sel), strict=True)
    ids = torch.randint(0, cfg["vocab_size"], (2, 12), generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        a = pruned(input_ids=ids).logits; b = zeroed(model, c, sel)(input_ids=ids).logits
        src = model(input_ids=ids).logits
    return float((a - b).abs().max()), float((a - src).abs().max())


# ---------------------------------------------------------------------------------------------
# Iterative Taylor: each step prunes the model physically, draws a fresh batch and recomputes the
# gradients (and a fresh Fisher sum) on the pruned model, scores the surviving units (mapped back to
# source numbering) and removes more, reaching ratio·s/K of the initial widths at step s.

def pruned_model(model, cfg, c, sel, modeling_dir):
    sys.path.insert(0, modeling_dir)
    from modeling_shears_llama import ShearsLlamaConfig, ShearsLlamaForCausalLM
    kw = {k: v for k, v in cfg.items() if k not in ("architectures", "transformers_version", "dtype", "torch_dtype")}
    pc = ShearsLlamaConfig(num_attention_heads_per_layer=[len(sel[l]["heads"]) for l in range(c.L)],
                           num_key_value_heads_per_layer=[len(sel[l]["kv_heads"]) for l in range(c.L)],
                           intermediate_size_per_layer=[len(sel[l]["channels"]) for l in range(c.L)], **kw)
    pc._attn_implementation = "eager"
    m = ShearsLlamaForCausalLM(pc).double()
    m.load_state_dict(sliced_state(model, c, sel), strict=True)
    return m

def scatter(v, kept, unit, total):
    out = torch.zeros(total * unit, dtype=torch.float64)
    for j, k in enumerate(kept):
        out[k * unit:(k + 1) * unit] = v[j * unit:(j + 1) * unit]
    return out

def step_scores(c, W, G, F, N, sel, est, policy, att_layers, mlp_layers, red="sum"):
    d = c.d
    def m(name, axis): return reduce_member(W[name], G[name], F.get(name) if F else None, N, est, axis)
    out = {"attention": {}, "mlp": {}}
    for l in range(c.L):
        s = sel[l]
        if l in att_layers:
            q = scatter(m(att(l, "q"), "rows"), s["heads"], d, c.nh); o = scatter(m(att(l, "o"), "columns"), s["heads"], d, c.nh)
            if policy == "query":
                sc = combine([q, o], red).view(-1, d).sum(1); kept = s["heads"]
            else:
                k = scatter(m(att(l, "k"), "rows"), s["kv_heads"], d, c.nkv); v = scatter(m(att(l, "v"), "rows"), s["kv_heads"], d, c.nkv)
                fold = lambda x: x.view(c.nkv, c.rep, d).sum(1).reshape(-1)
                sc = combine([k, fold(q), v, fold(o)] if c.rep > 1 else [q, k, v, o], red).view(-1, d).sum(1); kept = s["kv_heads"]
            out["attention"][l] = [float(x) if i in kept else None for i, x in enumerate(sc.tolist())]
        if l in mlp_layers:
            ch = combine([scatter(m(mlp(l, "gate"), "rows"), s["channels"], 1, c.I), scatter(m(mlp(l, "up"), "rows"), s["channels"], 1, c.I),
                          scatter(m(mlp(l, "down"), "columns"), s["channels"], 1, c.I)], red)
            out["mlp"][l] = [float(x) if i in s["channels"] else None for i, x in enumerate(ch.tolist())]
    return out

def select_step(c, scores, sel, policy, r):
    d, new = c.d, {}
    for l in range(c.L):
        s = dict(sel[l])
        if l in scores["attention"]:
            sc = scores["attention"][l]
            if policy == "query":
                cur = len(s["heads"]) // c.nkv
                per = query_per_group(c.nh, c.nkv, r, c.d); target = c.rep - per
                remove = max(0, min(cur - max(1, target), cur - 1))
                s["heads"] = sorted(h for g in range(c.nkv) for h in lowest(sc, s["heads"][g * cur:(g + 1) * cur], remove))
            else:
                n = min(to_remove(c.nkv * d, len(s["kv_heads"]) * d, r) // d, len(s["kv_heads"]) - 1)
                s["kv_heads"] = lowest(sc, s["kv_heads"], n)
                s["heads"] = [h * c.rep + q for h in s["kv_heads"] for q in range(c.rep)]
        if l in scores["mlp"]:
            n = min(to_remove(c.I, len(s["channels"]), r), len(s["channels"]) - 1)
            s["channels"] = lowest(scores["mlp"][l], s["channels"], n)
        new[l] = s
    return new

def iterative(model, cfg, c, first_ids, est, policy, steps, ratio, out_dir, tag, modeling_dir):
    L = c.L
    ar = set(default_range(L)); mr = ar
    sel = {l: {"heads": list(range(c.nh)), "kv_heads": list(range(c.nkv)), "channels": list(range(c.I))} for l in range(L)}
    record = {"importance": est, "gqa": policy, "steps": steps, "ratio": ratio, "per_step": []}
    for step in range(1, steps + 1):
        if step == 1:
            m, ids = model, first_ids
        else:
            m = pruned_model(model, cfg, c, sel, modeling_dir)
            ids = torch.randint(0, cfg["vocab_size"], tuple(first_ids.shape), generator=torch.Generator().manual_seed(7 + step))
        g, f = gradients(m, ids)
        W = {n: p.detach().float() for n, p in m.named_parameters()}
        g32 = {n: t.float().contiguous() for n, t in g.items()}; f32 = {n: t.float().contiguous() for n, t in f.items()}
        files = None
        if step > 1:
            keep = [n for n in g32 if n.startswith("model.layers.") and n.endswith("proj.weight")]
            files = {"gradients": f"{tag}-step{step}-gradients.safetensors",
                     "fisher": f"{tag}-step{step}-fisher.safetensors" if est in ("param_second", "param_mix") else None}
            save_file({n: g32[n] for n in keep}, os.path.join(out_dir, files["gradients"]))
            if files["fisher"]: save_file({n: f32[n] for n in keep}, os.path.join(out_dir, files["fisher"]))
        sc = step_scores(c, W, g32, f32, ids.shape[0], sel, est, policy, ar, mr)
        sel = select_step(c, sc, sel, policy, ratio * step / steps)
        record["per_step"].append({"files": files, "tokens": ids.tolist() if step > 1 else None,
                                   "attention": {str(l): [None if x is None else rounded(x) for x in v] for l, v in sc["attention"].items()},
                                   "mlp": {str(l): [None if x is None else rounded(x) for x in v] for l, v in sc["mlp"].items()},
                                   "layers": {str(l): v for l, v in sel.items()}})
    return record

def tensor_hashes(sd):
    return {n: hashlib.sha256(t.float().numpy().tobytes()).hexdigest() for n, t in sorted(sd.items())}

def main():
    out, repo = sys.argv[1], sys.argv[2]
    os.makedirs(out, exist_ok=True)
    report = {"cases": []}
    for name in ["tiny-llama", "tiny-mha", "tiny-gqa"]:
        model, cfg, folder, c, ids = run_model(name, repo, out)
        cases = {"tiny-gqa": [("param_first", "kv-group"), ("param_mix", "query")], "tiny-mha": [("param_mix", "kv-group")]}.get(name, [])
        its = []
        for est, policy in cases:
            tag = f"iterative-{est}-{policy}"
            its.append(iterative(model, cfg, c, ids, est, policy, 2, 0.5, os.path.join(out, name), tag, os.path.join(repo, "Tools/python")))
            print(f"iterative {name} {est} {policy}: widths " + str([(len(v["kv_heads"]), len(v["heads"]), len(v["channels"])) for v in its[-1]["per_step"][-1]["layers"].values()]), file=sys.stderr)
        if its:
            json.dump(its, open(os.path.join(out, name, "iterative.json"), "w"), separators=(",", ":"))
        g = json.load(open(os.path.join(out, name, "goldens.json")))
        for policy in (["kv-group", "query"] if c.nkv < c.nh else ["kv-group"]):
            for scope, ratio in [("local", 0.5), ("global", 0.5)]:
                sel = next(s for s in g["selections"] if s["importance"] == "param_first" and s["reduction"] == "sum" and s["gqa"] == policy
                           and s["scope"] == scope and s["ratio"] == ratio and s["round_to"] is None)
                layers = {int(k): v for k, v in sel["layers"].items()}
                err, change = functional(model, cfg, c, layers, os.path.join(repo, "Tools/python"))
                report["cases"].append({"model": name, "gqa": policy, "scope": scope, "ratio": ratio,
                                        "attention_layers": sel["attention_layers"], "mlp_layers": sel["mlp_layers"],
                                        "max_abs_diff_vs_zeroed": err, "max_abs_change_vs_source": change,
                                        "pruned_tensor_sha256": tensor_hashes({k: v.float() for k, v in sliced_state(model, c, layers).items()})})
                assert err < 1e-9, (name, policy, scope, err)
                print(f"functional {name} {policy} {scope} {ratio}: |pruned − zeroed| = {err:.3g} (vs source {change:.3g})", file=sys.stderr)
    json.dump(report, open(os.path.join(out, "functional.json"), "w"), indent=1, sort_keys=True)

if __name__ == "__main__":
    main()
