"""PyTorch reference of activation statistics, wanda-sp / wifv importance, adaptive allocation and
retraining-free recovery (formats/recovery.md), as Shears specifies it.

transformers' LlamaForCausalLM runs in float32 (as the engine does); forward pre-hooks read the
inputs of every layer's o_proj (`attention`), down_proj (`mlp`), q_proj (`attention_in`) and
gate_proj (`mlp_in`). Everything after the capture (statistics, scores, counts, selection,
allocation, least-squares solves) is float64 and implemented here independently of the Swift code.

    python reference.py OUT_DIR REPO_ROOT

writes OUT_DIR/<model>/{windows.json, activations.safetensors (tiny models), statistics.safetensors,
goldens.json, recovery-<name>.safetensors} for tiny-mha, tiny-gqa (Fixtures/pruning) and
austen-llama (Fixtures/models).

Choices where formats/recovery.md leaves room (the Swift side must make the same ones):
- Windows: tiny models 8 × 16 uniform random ids (numpy PCG64, seed 2024); austen-llama 16 × 64
  tokens of the five calibration novels, each file tokenized without special tokens and the ids
  concatenated in file-name order, window i starting at floor(i·(total − T)/(N − 1)). The engine
  gets them as --calibration-tokens (windows.json).
- Statistics: direct two-pass float64 sums over all rows (equal to Chan's merge up to rounding).
- §4: a unit's "rank" is its position in the layer's ascending score order (ties: lower index);
  under the query policy tuple k holds the k-th lowest query head of every group, and a layer gives
  at most n_rep − 1 tuples. --round-to is applied after the scan, with no re-scan.
- §5 `none`: the golden bias is b₀ = 0 (the engine writes no bias).
- --sequential: a processed layer runs with W' and b' rounded to the source dtype (what the written
  folder holds), removed columns zero; the next layer's statistics see that.
- austen-llama: statistics.safetensors holds the covariance of the `attention` site of the first and
  last layers only (an MLP covariance is 2 MB in float64).
"""
import glob, json, math, os, sys
import numpy as np
import torch
from safetensors.torch import save_file

torch.set_num_threads(2)
torch.use_deterministic_algorithms(True)

from transformers import LlamaForCausalLM

SITES = ["attention", "mlp", "attention_in", "mlp_in"]
HOOKED = {"attention": ("self_attn", "o_proj"), "mlp": ("mlp", "down_proj"),
          "attention_in": ("self_attn", "q_proj"), "mlp_in": ("mlp", "gate_proj")}

# ---------------------------------------------------------------------------------------------
# §1–§2: capture and statistics

def capture(model, windows, layers=None):
    """{(l, site): float32 [n, width]} for the given windows (n = N·T rows, window-major)."""
    ids = torch.tensor(windows, dtype=torch.long)
    layers = range(len(model.model.layers)) if layers is None else layers
    got, handles = {}, []
    for l in layers:
        for site, (block, proj) in HOOKED.items():
            mod = getattr(getattr(model.model.layers[l], block), proj)
            def hook(m, args, l=l, site=site):
                x = args[0]
                got[(l, site)] = x.detach().reshape(-1, x.shape[-1]).float().clone()
            handles.append(mod.register_forward_pre_hook(hook))
    with torch.no_grad():
        model(input_ids=ids, use_cache=False)
    for h in handles: h.remove()
    return got

def statistics(x, cov):
    """float64 mean, sample variance (n−1), squared norm and (optionally) the centered covariance (1/n)."""
    x = x.double()
    n = x.shape[0]
    mean = x.mean(0)
    xc = x - mean
    out = {"mean": mean, "var": (xc * xc).sum(0) / (n - 1), "sqnorm": (x * x).sum(0)}
    if cov: out["cov"] = xc.T @ xc / n
    return out

# ---------------------------------------------------------------------------------------------
# Model geometry and weights (float64)

class Model:
    def __init__(self, model, cfg):
        self.m, self.cfg = model, cfg
        self.L = cfg["num_hidden_layers"]; self.h = cfg["hidden_size"]; self.H = cfg["num_attention_heads"]
        self.G = cfg["num_key_value_heads"]; self.d = cfg.get("head_dim") or self.h // self.H
        self.I = cfg["intermediate_size"]; self.rep = self.H // self.G
        sd = model.state_dict()
        self.W = {k: v.detach().double() for k, v in sd.items() if k.startswith("model.layers.")}
    def w(self, l, proj):
        blk = "self_attn" if proj in ("q", "k", "v", "o") else "mlp"
        return self.W[f"model.layers.{l}.{blk}.{proj}_proj.weight"]
    def site_weight(self, l, site):
        return self.w(l, "o") if site == "attention" else self.w(l, "down")

# ---------------------------------------------------------------------------------------------
# §3: estimators

def channel_scores(W, st, est):
    """S_j on an attention/mlp site; W [h, width] float64."""
    if est == "wanda-sp": return st["sqnorm"].sqrt() * W.abs().mean(0)
    if est == "wifv": return st["var"] * (W * W).sum(0)
    raise ValueError(est)

def query_head_scores(S, d, est):
    S = S.view(-1, d)
    return S.sum(1) if est == "wanda-sp" else (S * S).sum(1) / d

def attention_unit_scores(M, S, est, policy):
    q = query_head_scores(S, M.d, est)
    if policy == "query" or M.G == M.H: return q
    g = q.view(M.G, M.rep)
    return g.sum(1) if est == "wanda-sp" else g.mean(1)

def block_unit_scores(M, stats, est, policy, att_layers, mlp_layers):
    """{'attention': {l: tensor}, 'mlp': {l: tensor}} per unit."""
    out = {"attention": {}, "mlp": {}}
    for l in range(M.L):
        if l in att_layers:
            out["attention"][l] = attention_unit_scores(M, channel_scores(M.w(l, "o"), stats[(l, "attention")], est), est, policy)
        if l in mlp_layers:
            out["mlp"][l] = channel_scores(M.w(l, "down"), stats[(l, "mlp")], est)
    return out

def hidden_scores(M, stats, est):
    tot = torch.zeros(M.h, dtype=torch.float64)
    for l in range(M.L):
        A, F = stats[(l, "attention_in")], stats[(l, "mlp_in")]
        if est == "wanda-sp":
            tot += A["sqnorm"].sqrt() * sum(M.w(l, p).abs().sum(0) / M.w(l, p).shape[0] for p in "qkv")
            tot += F["sqnorm"].sqrt() * sum(M.w(l, p).abs().sum(0) / M.w(l, p).shape[0] for p in ("gate", "up"))
        else:
            tot += A["var"] * sum((M.w(l, p) ** 2).sum(0) for p in "qkv")
            tot += F["var"] * sum((M.w(l, p) ** 2).sum(0) for p in ("gate", "up"))
    return tot

def layer_scores(M, stats, est):
    return torch.stack([channel_scores(M.w(l, "o"), stats[(l, "attention")], est).sum()
                        + channel_scores(M.w(l, "down"), stats[(l, "mlp")], est).sum() for l in range(M.L)])

# ---------------------------------------------------------------------------------------------
# Counts and selection (llm-pruner.md §1.8; shared: Tools/pruning/counts.py)

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "pruning"))
from counts import to_remove, hidden_to_remove, query_per_group, lowest  # noqa: E402

def ranked(scores, candidates):
    """candidates in ascending score order, ties to the lower index."""
    return sorted(candidates, key=lambda i: (scores[i], i))

def round_kept(I, kept, R):
    return min(I, -(-kept // R) * R) if R else kept

def uniform_counts(M, policy, ratio, att_layers, mlp_layers, round_to):
    """({l: attention units removed (query heads under query, KV groups otherwise)}, {l: channels removed})."""
    acount, mcount = {}, {}
    for l in att_layers:
        if policy == "query" and M.G < M.H:
            acount[l] = min(query_per_group(M.H, M.G, ratio, M.d), M.rep - 1) * M.G
        else:
            acount[l] = min(to_remove(M.G * M.d, M.G * M.d, ratio) // M.d, M.G - 1)
    for l in mlp_layers:
        n = min(to_remove(M.I, M.I, ratio), M.I - 1)
        mcount[l] = M.I - round_kept(M.I, M.I - n, round_to)
    return acount, mcount

def full_selection(M):
    return {l: {"heads": list(range(M.H)), "kv_heads": list(range(M.G)), "channels": list(range(M.I))} for l in range(M.L)}

def apply_counts(M, scores, policy, acount, mcount):
    sel = full_selection(M)
    for l, n in acount.items():
        s = scores["attention"][l].tolist()
        if policy == "query" and M.G < M.H:
            per = n // M.G
            sel[l]["heads"] = sorted(q for g in range(M.G) for q in lowest(s, list(range(g * M.rep, (g + 1) * M.rep)), per))
        else:
            kv = lowest(s, list(range(M.G)), n)
            sel[l]["kv_heads"] = kv
            sel[l]["heads"] = [g * M.rep + r for g in kv for r in range(M.rep)]
    for l, n in mcount.items():
        sel[l]["channels"] = lowest(scores["mlp"][l].tolist(), list(range(M.I)), n)
    return sel

# ---------------------------------------------------------------------------------------------
# §4: adaptive allocation

def zscores(a):
    a = a.double()
    if a.numel() <= 1: return torch.zeros_like(a)
    sd = a.std()          # n − 1
    return torch.zeros_like(a) if sd == 0 else (a - a.mean()) / sd

def adaptive(M, scores, policy, ratio, att_layers, mlp_layers, round_to):
    """Kept units per layer (same form as apply_counts) and the allocation's bookkeeping."""
    h, d = M.h, M.d
    query = policy == "query" and M.G < M.H
    acount, mcount = uniform_counts(M, policy, ratio, att_layers, mlp_layers, round_to)
    if query: acost = 2 * h * d
    elif M.G == M.H: acost = 4 * h * d
    else: acost = (2 * M.rep + 2) * h * d
    target = sum(n * acost for n in acount.values()) + sum(n * 3 * h for n in mcount.values())
    cands = []   # (z, layer, kind 0 attention / 1 mlp, rank, cost, units)
    for l in att_layers:
        a = scores["attention"][l]; z = zscores(a)
        if query:
            per_group = [ranked(a.tolist(), list(range(g * M.rep, (g + 1) * M.rep))) for g in range(M.G)]
            for k in range(M.rep):
                heads = [per_group[g][k] for g in range(M.G)]
                zt = sum(float(z[q]) for q in heads) / M.G
                cands.append((zt, l, 0, k, M.G * acost, heads))
        else:
            for k, u in enumerate(ranked(a.tolist(), list(range(a.numel())))):
                cands.append((float(z[u]), l, 0, k, acost, [u]))
    for l in mlp_layers:
        a = scores["mlp"][l]; z = zscores(a)
        for k, u in enumerate(ranked(a.tolist(), list(range(M.I)))):
            cands.append((float(z[u]), l, 1, k, 3 * h, [u]))
    cands.sort(key=lambda c: (c[0], c[1], c[2], c[3]))
    removed_cost = 0
    gone_att = {l: set() for l in att_layers}; gone_mlp = {l: set() for l in mlp_layers}
    ntuples = {l: 0 for l in att_layers}
    for z, l, kind, k, cost, units in cands:
        if removed_cost + cost > target: continue
        if kind == 0:
            if query:
                if ntuples[l] + 1 >= M.rep: continue       # at least one query head per group
                ntuples[l] += 1
            else:
                if len(gone_att[l]) + 1 >= scores["attention"][l].numel(): continue
            gone_att[l].update(units)
        else:
            if len(gone_mlp[l]) + 1 >= M.I: continue
            gone_mlp[l].add(units[0])
        removed_cost += cost
    sel = full_selection(M)
    for l in att_layers:
        if query:
            sel[l]["heads"] = [q for q in range(M.H) if q not in gone_att[l]]
        else:
            kv = [g for g in range(M.G) if g not in gone_att[l]]
            sel[l]["kv_heads"] = kv
            sel[l]["heads"] = [g * M.rep + r for g in kv for r in range(M.rep)]
    for l in mlp_layers:
        kept = round_kept(M.I, M.I - len(gone_mlp[l]), round_to)
        sel[l]["channels"] = lowest(scores["mlp"][l].tolist(), list(range(M.I)), M.I - kept)
    return sel, {"target": target, "removed_before_rounding": removed_cost}

# ---------------------------------------------------------------------------------------------
# §5: recovery

def recover(W, st, kept, method, damping, b0=None):
    """(W' [h, |K|], b' [h]) float64 for one site; kept = input channel indices in source order."""
    width = W.shape[1]
    K = torch.tensor(kept, dtype=torch.long)
    P = torch.tensor([j for j in range(width) if j not in set(kept)], dtype=torch.long)
    b0 = torch.zeros(W.shape[0], dtype=torch.float64) if b0 is None else b0.double()
    mu = st["mean"]
    WK, WP = W[:, K], W[:, P]
    if method == "none": return WK.clone(), b0.clone()
    if method == "bias": return WK.clone(), b0 + WP @ mu[P]
    C = st["cov"]
    CKK = C[K][:, K]; CPK = C[P][:, K]
    lam = damping * float(CKK.diagonal().mean())
    A = CKK + lam * torch.eye(len(kept), dtype=torch.float64)
    Lc = torch.linalg.cholesky(A)
    if method == "ls":
        R = WK @ CKK + WP @ CPK
        Wn = torch.cholesky_solve(R.T.contiguous(), Lc).T
    elif method == "anchored-ls":
        Wn = WK + torch.cholesky_solve((WP @ CPK).T.contiguous(), Lc).T
    else:
        raise ValueError(method)
    return Wn.contiguous(), b0 + W @ mu - Wn @ mu[K]

def channels_of_heads(heads, d):
    return [q * d + t for q in heads for t in range(d)]

def recovered_tensors(M, stats, sel, method, damping):
    out = {}
    for l in range(M.L):
        s = sel[l]
        if len(s["heads"]) < M.H:
            Wn, b = recover(M.w(l, "o"), stats[(l, "attention")], channels_of_heads(s["heads"], M.d), method, damping)
            out[f"layers.{l}.o_proj.weight"] = Wn; out[f"layers.{l}.o_proj.bias"] = b
        if len(s["channels"]) < M.I:
            Wn, b = recover(M.w(l, "down"), stats[(l, "mlp")], s["channels"], method, damping)
            out[f"layers.{l}.down_proj.weight"] = Wn; out[f"layers.{l}.down_proj.bias"] = b
    return out

def install_recovered(model, M, l, sel_l, rec):
    """Layer l of the float32 model computes its pruned-and-recovered form (removed columns zero)."""
    layer = model.model.layers[l]
    with torch.no_grad():
        for key, proj, kept in (("o_proj", layer.self_attn.o_proj, channels_of_heads(sel_l["heads"], M.d)),
                                ("down_proj", layer.mlp.down_proj, sel_l["channels"])):
            name = f"layers.{l}.{key}"
            if name + ".weight" not in rec: continue
            full = torch.zeros(proj.weight.shape, dtype=torch.float64)
            full[:, torch.tensor(kept)] = rec[name + ".weight"]
            proj.weight.copy_(full.float())
            proj.bias = torch.nn.Parameter(rec[name + ".bias"].float().clone())

# ---------------------------------------------------------------------------------------------
# Driver

def default_range(L):
    return [min(4, L // 4), L - min(2, L // 8)]

def window_tokens_random(V, N, T, seed):
    return np.random.default_rng(seed).integers(0, V, size=(N, T)).tolist()

def window_tokens_austen(repo, folder, N, T):
    from tokenizers import Tokenizer
    tok = Tokenizer.from_file(os.path.join(folder, "tokenizer.json"))
    ids = []
    for path in sorted(glob.glob(os.path.join(repo, "Fixtures/text/austen-calibration/*.txt"))):
        ids += tok.encode(open(path, encoding="utf-8").read(), add_special_tokens=False).ids
    span = len(ids) - T
    return [ids[(i * span) // (N - 1):(i * span) // (N - 1) + T] for i in range(N)]

def tolist(t): return [float(x) for x in t.tolist()]

def case_entry(M, name, settings, scores, sel, hidden_kept=None, layers_kept=None, hidden=None, layer_sc=None):
    sc = {"attention": [tolist(scores["attention"][l]) if scores and l in scores["attention"] else [] for l in range(M.L)],
          "mlp": [tolist(scores["mlp"][l]) if scores and l in scores["mlp"] else [] for l in range(M.L)],
          "hidden": tolist(hidden) if hidden is not None else [], "layers": tolist(layer_sc) if layer_sc is not None else []}
    kept = {"heads": [sel[l]["heads"] for l in range(M.L)], "kv_heads": [sel[l]["kv_heads"] for l in range(M.L)],
            "channels": [sel[l]["channels"] for l in range(M.L)],
            "hidden": hidden_kept if hidden_kept is not None else list(range(M.h)),
            "layers": layers_kept if layers_kept is not None else list(range(M.L))}
    return {"name": name, "settings": settings, "scores": sc, "kept": kept}

def settings(M, strategy, est, policy, ratio, att, mlp, allocation="uniform", round_to=None, remove_layers=None):
    return {"strategy": strategy, "importance": est, "gqa": policy if M.G < M.H else "kv-group", "ratio": ratio,
            "attention_layers": list(att), "mlp_layers": list(mlp), "allocation": allocation,
            "round_to": round_to, "remove_layers": remove_layers}

def block_case(M, stats, est, policy, ratio, att=None, mlp=None, allocation="uniform", round_to=None, name=None):
    att = att or default_range(M.L); mlp = mlp or default_range(M.L)
    ar, mr = range(*att), range(*mlp)
    sc = block_unit_scores(M, stats, est, policy, ar, mr)
    if allocation == "adaptive":
        sel, info = adaptive(M, sc, policy, ratio, ar, mr, round_to)
    else:
        a, m = uniform_counts(M, policy, ratio, ar, mr, round_to)
        sel = apply_counts(M, sc, policy, a, m)
    st = settings(M, "block", est, policy, ratio, att, mlp, allocation, round_to)
    if name is None:
        name = f"block-{est}-{st['gqa']}-{ratio}" + ("-adaptive" if allocation == "adaptive" else "") + \
               (f"-round{round_to}" if round_to else "") + ("" if (att, mlp) == (default_range(M.L),) * 2 else f"-att{att[0]}:{att[1]}-mlp{mlp[0]}:{mlp[1]}")
    return case_entry(M, name, st, sc, sel), sel

def sequential_case(model, M, windows, est, policy, ratio, method, damping):
    """§2 --sequential: layer l's statistics with layers < l pruned and recovered, layer l original."""
    att = default_range(M.L); ar = range(*att)
    sel = full_selection(M); stats = {}; rec = {}; scores = {"attention": {}, "mlp": {}}
    for l in range(M.L):
        acts = capture(model, windows, [l])
        for site in SITES:
            stats[(l, site)] = statistics(acts[(l, site)], site in ("attention", "mlp"))
        if l in ar:
            sc = block_unit_scores(M, stats, est, policy, [l], [l])
            scores["attention"][l] = sc["attention"][l]; scores["mlp"][l] = sc["mlp"][l]
            a, m = uniform_counts(M, policy, ratio, [l], [l], None)
            sel[l] = apply_counts(M, sc, policy, a, m)[l]
            r = recovered_tensors(M, stats, {**full_selection(M), l: sel[l]}, method, damping)
            rec.update(r)
            install_recovered(model, M, l, sel[l], r)
    return stats, scores, sel, rec

def write_stats(path, stats, cov_keep=None):
    """cov_keep: None (every covariance) or the set of (layer, site) whose covariance is written."""
    t = {}
    for (l, site), st in sorted(stats.items()):
        for k, v in st.items():
            if k == "cov" and cov_keep is not None and (l, site) not in cov_keep: continue
            t[f"layers.{l}.{site}.{k}"] = v.contiguous()
    save_file(t, path)

def run_model(name, repo, out):
    folder = os.path.join(repo, "Fixtures/pruning" if name.startswith("tiny") else "Fixtures/models", name)
    cfg = json.load(open(os.path.join(folder, "config.json")))
    model = LlamaForCausalLM.from_pretrained(folder, dtype=torch.float32, attn_implementation="eager").eval()
    M = Model(model, cfg)
    tiny = name.startswith("tiny")
    windows = window_tokens_random(cfg["vocab_size"], 8, 16, 2024) if tiny else window_tokens_austen(repo, folder, 16, 64)
    dst = os.path.join(out, name); os.makedirs(dst, exist_ok=True)
    json.dump(windows, open(os.path.join(dst, "windows.json"), "w"))
    acts = capture(model, windows)
    if tiny:
        save_file({f"layers.{l}.{site}": acts[(l, site)].contiguous() for l in range(M.L) for site in SITES},
                  os.path.join(dst, "activations.safetensors"))
    # The statistics come from the captured float32 activations, in float64.
    stats = {(l, site): statistics(acts[(l, site)], site in ("attention", "mlp")) for l in range(M.L) for site in SITES}
    # austen-llama: a 512² float64 MLP covariance is 2 MB, so only the attention covariances of the
    # first and last layers are written (the Fixtures stay small); tiny models: all of them.
    write_stats(os.path.join(dst, "statistics.safetensors"), stats, None if tiny else {(0, "attention"), (M.L - 1, "attention")})
    gqa = M.G < M.H
    policies = ["kv-group", "query"] if gqa else ["kv-group"]
    L = M.L
    cases, sels = [], {}
    def add(entry_sel):
        entry, sel = entry_sel
        cases.append(entry); sels[entry["name"]] = sel
        return entry["name"]
    if tiny:
        for est in ["wanda-sp", "wifv"]:
            for policy in policies:
                for ratio in [0.25, 0.5]:
                    add(block_case(M, stats, est, policy, ratio))
        for policy in policies:
            add(block_case(M, stats, "wifv", policy, 0.5, allocation="adaptive"))
            add(block_case(M, stats, "wanda-sp", policy, 0.25, allocation="adaptive"))
        add(block_case(M, stats, "wifv", policies[0], 0.3, round_to=8))
        add(block_case(M, stats, "wanda-sp", policies[-1], 0.3, allocation="adaptive", round_to=8))
        if L > 2: add(block_case(M, stats, "wifv", policies[-1], 0.5, att=[1, L], mlp=[0, L - 1]))
    else:
        add(block_case(M, stats, "wanda-sp", "kv-group", 0.25))
        add(block_case(M, stats, "wifv", "kv-group", 0.25))
        add(block_case(M, stats, "wifv", "kv-group", 0.5))
        add(block_case(M, stats, "wifv", "kv-group", 0.5, allocation="adaptive"))
        add(block_case(M, stats, "wifv", "kv-group", 0.3, round_to=8))
        add(block_case(M, stats, "wanda-sp", "kv-group", 0.5, att=[L - 1, L], mlp=[L - 1, L]))
    for est in ["wanda-sp", "wifv"]:
        hs = hidden_scores(M, stats, est)
        kept = lowest(hs.tolist(), list(range(M.h)), hidden_to_remove(M.h, M.h, 0.25, M.H))
        st = settings(M, "channel", est, "kv-group", 0.25, default_range(L), default_range(L))
        cases.append(case_entry(M, f"channel-{est}-0.25", st, None, full_selection(M), hidden_kept=kept, hidden=hs))
        ls = layer_scores(M, stats, est)
        st = settings(M, "layer", est, "kv-group", None, default_range(L), default_range(L), remove_layers=1)
        cases.append(case_entry(M, f"layer-{est}-remove1", st, None, full_selection(M),
                                layers_kept=lowest(ls.tolist(), list(range(L)), 1), layer_sc=ls))
    # Recovery
    recs = []
    def recovery(rname, case, method, damping):
        t = recovered_tensors(M, stats, sels[case], method, damping)
        f = f"recovery-{rname}.safetensors"
        save_file({k: v.contiguous() for k, v in sorted(t.items())}, os.path.join(dst, f))
        recs.append({"name": rname, "case": case, "method": method, "damping": damping, "statistics": "original", "file": f})
    if tiny:
        main_case = f"block-wifv-{policies[-1]}-0.5"
        other = ("anchored-ls", 1.0) if gqa else ("ls", 0.1)      # one non-default damping per model
        for method, damping in [("none", None), ("bias", None), ("ls", 0.01), ("anchored-ls", 0.1), other]:
            recovery(f"{method}" + (f"-{damping}" if damping is not None else ""), main_case, method, damping)
        recovery("anchored-ls-0.1-adaptive", f"block-wifv-{policies[0]}-0.5-adaptive", "anchored-ls", 0.1)
    else:
        case = f"block-wanda-sp-kv-group-0.5-att{L - 1}:{L}-mlp{L - 1}:{L}"
        for method, damping in [("bias", None), ("ls", 0.01), ("anchored-ls", 0.1)]:
            recovery(f"{method}" + (f"-{damping}" if damping is not None else ""), case, method, damping)
    if name == "tiny-gqa":
        seq_model = LlamaForCausalLM.from_pretrained(folder, dtype=torch.float32, attn_implementation="eager").eval()
        sstats, sscores, ssel, rec = sequential_case(seq_model, M, windows, "wifv", "query", 0.5, "anchored-ls", 0.1)
        f = "recovery-sequential-anchored-ls-0.1.safetensors"
        t = {k: v.contiguous() for k, v in rec.items()}
        for (l, site), st in sstats.items():
            for k, v in st.items(): t[f"layers.{l}.{site}.{k}"] = v.contiguous()
        save_file(dict(sorted(t.items())), os.path.join(dst, f))
        seq = case_entry(M, "sequential", settings(M, "block", "wifv", "query", 0.5, default_range(L), default_range(L)), sscores, ssel)
        recs.append({"name": "sequential-anchored-ls-0.1", "case": "block-wifv-query-0.5", "method": "anchored-ls", "damping": 0.1,
                     "statistics": "sequential", "file": f, "kept": seq["kept"], "scores": seq["scores"]})
    goldens = {"model": name, "rows": len(windows) * len(windows[0]), "cases": cases, "recovery": recs}
    with open(os.path.join(dst, "goldens.json"), "w") as fh:
        json.dump(goldens, fh)
    for cse in cases:
        s = sels.get(cse["name"])
        if s: print(f"{name} {cse['name']}: widths " + str([(len(s[l]['kv_heads']), len(s[l]['heads']), len(s[l]['channels'])) for l in range(L)]), file=sys.stderr)

def main():
    out, repo = sys.argv[1], sys.argv[2]
    os.makedirs(out, exist_ok=True)
    for name in ["tiny-mha", "tiny-gqa", "austen-llama"]:
        run_model(name, repo, out)

if __name__ == "__main__":
    main()
