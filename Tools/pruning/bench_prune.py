"""PyTorch side of Tools/bench-prune: LLM-Pruner's Taylor scoring and block selection in float32
on CPU, on the calibration windows given to `shears prune --calibration-tokens`, plus the helpers
the bash driver needs.

    python bench_prune.py windows MODEL_DIR OUT.json [SAMPLES SEQ_LEN SEED]
        Calibration windows as a JSON array of token-id arrays. With a tokenizer.json in MODEL_DIR:
        the bundled Austen calibration text (Fixtures/text/austen-calibration, files in name order,
        one document each) tokenized with it, windows drawn as Shears' CalibrationSampler does
        (SplitMix64(seed): a document, then a start). Without one (the synthetic model): uniform
        random token ids below vocab_size from the same generator.
    python bench_prune.py torch MODEL_DIR WINDOWS.json param_first|param_mix OUT.json
        Loads MODEL_DIR as a float32 LlamaForCausalLM (transformers, sdpa attention, 2 threads),
        then as upstream LLM-Pruner does: for param_mix, one backward per sample accumulating the
        squared gradients (empirical Fisher); one forward/backward over the whole batch (mean loss
        over N·(L−1) tokens); then per-channel saliences (Tools/pruning/reference.py: block_scores,
        KV-group policy with Shears' GQA fix, sum reduction, default layer ranges) and local
        selection at ratio 0.25 (reference.py: select_block). Saliences are reduced in float64 from
        the float32 weights and gradients, as Shears does. Writes kept units and the time split.
    python bench_prune.py compare TORCH.json MANIFEST.json
        How many scored layers keep exactly the same heads / KV heads / MLP channels; prints JSON.
    python bench_prune.py record RESULTS.jsonl MODEL VARIANT TOOL TIME_V_FILE|- EXIT LOAD [--note TEXT]
                             [--torch-json T.json --manifest M.json] [--shears-stderr FILE START END] [--rss-sample S.json]
        Appends one JSON line: wall time and peak RSS from /usr/bin/time -v, time split, agreement.
    python bench_prune.py sample PID OUT.json
        Largest anonymous RSS of PID's descendants while it runs (file-backed pages apart).
    python bench_prune.py need MODEL_DIR VARIANT
        Rough MiB the torch run needs (float32 weights, gradients, Fisher sums, 1.5 GiB besides).
    python bench_prune.py table RESULTS.jsonl
        The markdown table of the driver's results.
"""
import json, os, resource, sys, time

here = os.path.dirname(os.path.abspath(__file__))
repo = os.path.dirname(os.path.dirname(here))
sys.path.insert(0, here)
from splitmix import SplitMix64  # noqa: E402


def windows(model_dir, out, samples=10, seq_len=64, seed=42):
    rng = SplitMix64(seed)
    tok_path = os.path.join(model_dir, "tokenizer.json")
    if os.path.exists(tok_path):
        from tokenizers import Tokenizer
        tok = Tokenizer.from_file(tok_path)
        d = os.path.join(repo, "Fixtures/text/austen-calibration")
        docs = [tok.encode(open(os.path.join(d, f), encoding="utf-8").read(), add_special_tokens=False).ids
                for f in sorted(os.listdir(d)) if f.endswith(".txt")]
        eligible = [x for x in docs if len(x) >= seq_len]
        res = []
        for _ in range(samples):
            doc = eligible[int(rng.uniform() * len(eligible))]
            start = int(rng.uniform() * (len(doc) - seq_len + 1))
            res.append(doc[start:start + seq_len])
        source = "austen-calibration"
    else:
        vocab = json.load(open(os.path.join(model_dir, "config.json")))["vocab_size"]
        res = [[int(rng.uniform() * vocab) for _ in range(seq_len)] for _ in range(samples)]
        source = "random"
    json.dump(res, open(out, "w"))
    print(f"windows: {samples} × {seq_len} tokens ({source}) -> {out}", file=sys.stderr)


def run_torch(model_dir, windows_path, variant, out):
    t_start = time.perf_counter()
    import torch
    torch.set_num_threads(2)
    sys.path.insert(0, here)
    import reference as ref  # its RMSNorm patch computes in the input dtype: float32 here, as stock
    from transformers import LlamaForCausalLM

    t_import = time.perf_counter() - t_start
    t0 = time.perf_counter()
    model = LlamaForCausalLM.from_pretrained(model_dir, dtype=torch.float32, attn_implementation="sdpa")
    model.eval()
    cfg = json.load(open(os.path.join(model_dir, "config.json")))
    cfg.setdefault("head_dim", cfg["hidden_size"] // cfg["num_attention_heads"])
    ids = torch.tensor(json.load(open(windows_path)), dtype=torch.long)
    n = ids.shape[0]
    params = dict(model.named_parameters())
    t_load = time.perf_counter() - t0

    # Upstream's order: per-sample squared gradients first (param_mix only), then the batch gradient.
    t0 = time.perf_counter()
    fisher = None
    if variant == "param_mix":
        fisher = {}
        for s in range(n):
            model.zero_grad(set_to_none=True)
            model(input_ids=ids[s:s + 1], labels=ids[s:s + 1]).loss.backward()
            for name, p in params.items():
                if name in fisher: fisher[name].addcmul_(p.grad, p.grad)
                else: fisher[name] = p.grad * p.grad
        model.zero_grad(set_to_none=True)
    t_fisher = time.perf_counter() - t0

    t0 = time.perf_counter()
    loss = model(input_ids=ids, labels=ids).loss
    loss.backward()
    t_grad = time.perf_counter() - t0

    t0 = time.perf_counter()
    with torch.no_grad():
        weights = {k: p.detach() for k, p in params.items()}
        grads = {k: p.grad for k, p in params.items()}
        c = ref.Ctx(cfg, weights, grads, fisher, n)
        rng = set(ref.default_range(c.L))
        scores = ref.block_scores(c, variant, "sum", "kv-group", rng, rng)
        sel = ref.select_block(c, scores, "kv-group", 0.25, "local")
    t_score = time.perf_counter() - t0

    json.dump({
        "variant": variant, "samples": n, "seq_len": ids.shape[1], "loss": loss.item(),
        "torch": torch.__version__, "threads": torch.get_num_threads(),
        "times_s": {"import": t_import, "load": t_load,
                    "fisher": t_fisher, "gradients": t_grad, "scoring": t_score},
        "peak_rss_mib_getrusage": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "layers": {str(l): v for l, v in sel.items()},
        "scored_attention": sorted(scores["attention"]), "scored_mlp": sorted(scores["mlp"]),
    }, open(out, "w"))
    print(f"torch {variant}: loss {loss.item():.6f}; load {t_load:.1f} s, fisher {t_fisher:.1f} s, "
          f"gradients {t_grad:.1f} s, scoring {t_score:.1f} s", file=sys.stderr)


def compare(torch_path, manifest_path):
    t = json.load(open(torch_path))
    m = json.load(open(manifest_path))
    by_layer = {e["layer"]: e for e in m["layers"]}
    att = [l for l in t["scored_attention"]]
    mlp = [l for l in t["scored_mlp"]]
    att_same = mlp_same = 0
    mlp_diff = []
    for l in att:
        a = by_layer[l]["attention"]
        mine = t["layers"][str(l)]
        if a["kept_heads"] == mine["heads"] and a["kept_kv_heads"] == mine["kv_heads"]: att_same += 1
    for l in mlp:
        theirs = set(by_layer[l]["mlp"]["kept_channels"]); mine = set(t["layers"][str(l)]["channels"])
        if theirs == mine: mlp_same += 1
        else: mlp_diff.append(len(theirs ^ mine) // 2)
    heads_removed = sum(len(by_layer[l]["attention"].get("removed_kv_heads", [])) for l in att)
    return {"attention_layers": len(att), "attention_same": att_same, "kv_heads_removed": heads_removed,
            "mlp_layers": len(mlp), "mlp_same": mlp_same, "mlp_channels_swapped": mlp_diff}


def parse_time_v(path):
    """(wall seconds, peak RSS MiB, signal or None) from a /usr/bin/time -v report."""
    wall = rss = sig = None
    for line in open(path):
        line = line.strip()
        if line.startswith("Elapsed (wall clock)"):
            parts = [float(x) for x in line.rsplit(" ", 1)[1].split(":")]
            wall = sum(x * 60 ** i for i, x in enumerate(reversed(parts)))
        elif line.startswith("Maximum resident set size"):
            rss = int(line.rsplit(" ", 1)[1]) / 1024
        elif line.startswith("Command terminated by signal"):
            sig = int(line.rsplit(" ", 1)[1])
    return wall, rss, sig


def record(args):
    """Appends one result line: RESULTS MODEL VARIANT TOOL TIME_FILE|- EXIT LOAD [options]."""
    results, model, variant, tool, time_file, rc, load = args[:7]
    rest = args[7:]
    r = {"model": model, "variant": variant, "tool": tool, "exit": int(rc), "ok": int(rc) == 0, "load": float(load),
         "wall_s": None, "rss_mib": None, "notes": []}
    if time_file != "-":
        r["wall_s"], r["rss_mib"], sig = parse_time_v(time_file)
        if sig: r["notes"].append(f"killed by signal {sig}" + (" (out of memory?)" if sig == 9 else ""))
        elif not r["ok"]: r["notes"].append(f"exit status {rc}")
    i = 0
    torch_json = manifest = None
    while i < len(rest):
        if rest[i] == "--note": r["notes"].append(rest[i + 1]); i += 2
        elif rest[i] == "--torch-json": torch_json = rest[i + 1]; i += 2
        elif rest[i] == "--rss-sample":
            if os.path.exists(rest[i + 1]): r["rss_sample"] = json.load(open(rest[i + 1]))
            i += 2
        elif rest[i] == "--manifest": manifest = rest[i + 1]; i += 2
        elif rest[i] == "--shears-stderr":
            # Lines "EPOCH text": the phases start at prune's messages (open+calibration until the
            # first scoring step, scoring = gradients or activation statistics and selection,
            # recovery, writing until the process ends).
            stderr, start, end = rest[i + 1], float(rest[i + 2]), float(rest[i + 3])
            # wifv + anchored-ls runs scores, selection and recovery in one statistics pass
            # ("one pass"), whose own line "prune: recovery time: statistics X s, selection and
            # solves Y s, scratch files Z s" splits it further.
            marks = [("scoring", " prune: step "), ("one pass", " in one statistics pass"), ("recovery", " prune: recovery ("),
                     ("writing", " prune: writing")]
            at = {}
            inner = {}
            for l in open(stderr):
                for k, m in marks:
                    if m in l and k not in at: at[k] = float(l.split(" ", 1)[0])
                if " prune: recovery time: " in l:
                    for part in l.split(" prune: recovery time: ", 1)[1].split(";")[0].split(","):
                        words = part.split()
                        if len(words) >= 3 and words[-1] == "s":
                            inner[" ".join(words[:-2])] = float(words[-2])
            if at:
                order = sorted(at.items(), key=lambda kv: kv[1])
                split = {"open+calibration": order[0][1] - start}
                for (k, t0), nxt in zip(order, order[1:] + [("end", end)]):
                    split[k] = nxt[1] - t0
                for k, v in inner.items(): split[f"  {k}"] = v
                r["split_s"] = split
            i += 4
        else: raise SystemExit(f"record: unknown option {rest[i]}")
    if torch_json:
        t = json.load(open(torch_json))
        r["split_s"] = t["times_s"]; r["loss"] = t["loss"]
        if manifest: r["agreement"] = compare(torch_json, manifest)
    with open(results, "a") as f: f.write(json.dumps(r) + "\n")


def sample(pid, out):
    """Until process PID ends: the largest RssAnon (and RssFile, Rss at that moment) of its
    descendants (the tool under /usr/bin/time), every 0.1 s, written to OUT as JSON (MiB).
    /usr/bin/time's maximum RSS counts file-backed pages too (memory-mapped checkpoints)."""
    def field(status, key):
        for line in status.splitlines():
            if line.startswith(key + ":"): return int(line.split()[1]) / 1024
        return 0.0
    def descendants(p):
        try: kids = open(f"/proc/{p}/task/{p}/children").read().split()
        except OSError: return []
        return [int(k) for k in kids] + [d for k in kids for d in descendants(int(k))]
    best = {"anon_mib": 0.0, "file_mib_then": 0.0, "max_file_mib": 0.0}
    while os.path.exists(f"/proc/{pid}"):
        for d in descendants(pid):
            try: st = open(f"/proc/{d}/status").read()
            except OSError: continue
            a, f = field(st, "RssAnon"), field(st, "RssFile")
            if a > best["anon_mib"]: best["anon_mib"], best["file_mib_then"] = a, f
            best["max_file_mib"] = max(best["max_file_mib"], f)
        time.sleep(0.1)
    json.dump(best, open(out, "w"))


def need(model_dir, variant):
    """Rough MiB a float32 PyTorch run needs: weights and gradients (and the Fisher sums), plus 1.5 GiB."""
    n = 0
    for f in os.listdir(model_dir):
        if f.endswith(".safetensors"):
            with open(os.path.join(model_dir, f), "rb") as fh:
                size = int.from_bytes(fh.read(8), "little")
                header = json.loads(fh.read(size))
            for k, v in header.items():
                if k != "__metadata__":
                    e = 1
                    for d in v["shape"]: e *= d
                    n += e
    copies = 3 if variant in ("param_mix", "param_second") else 2
    print(int(n * 4 * copies / 2 ** 20 + 1536))


def table(results_path):
    rows = [json.loads(x) for x in open(results_path) if x.strip()]
    print("| model | variant | tool | wall s | peak RSS MiB | peak anon RSS MiB | shears/PyTorch wall | shears/PyTorch RSS | load | time split (s) | notes |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        if r["tool"] != "shears": continue
        p = next((x for x in rows if x["tool"] == "pytorch" and x["model"] == r["model"] and x["variant"] == r["variant"]), None)
        for x in [r] + ([p] if p else []):
            wall = f"{x['wall_s']:.1f}" if x.get("wall_s") is not None else "–"
            rss = f"{x['rss_mib']:.0f}" if x.get("rss_mib") is not None else "–"
            anon = f"{x['rss_sample']['anon_mib']:.0f}" if x.get("rss_sample") else "–"
            rw = rr = ""
            if x is r and p and p["ok"] and r["ok"]:
                rw = f"{r['wall_s'] / p['wall_s']:.2f}"; rr = f"{r['rss_mib'] / p['rss_mib']:.2f}"
            split = ", ".join(f"{k} {v:.1f}" for k, v in x.get("split_s", {}).items()
                             if k != "import" and not (k == "fisher" and x["variant"] == "param_first"))
            notes = list(x["notes"])
            if not x["ok"]: notes.insert(0, "FAILED")
            a = x.get("agreement")
            if a:
                notes.append(f"same selection as shears in {a['attention_same']}/{a['attention_layers']} attention layers "
                             f"({a['kv_heads_removed']} KV heads removed in all), {a['mlp_same']}/{a['mlp_layers']} MLP layers"
                             + (f" (channels swapped: {a['mlp_channels_swapped']})" if a["mlp_channels_swapped"] else ""))
            print(f"| {x['model']} | {x['variant']} | {'shears' if x is r else 'PyTorch'} | {wall} | {rss} | {anon} | {rw} | {rr} | "
                  f"{x['load']:.2f} | {split} | {'; '.join(notes)} |")


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "windows":
        windows(sys.argv[2], sys.argv[3], *[int(x) for x in sys.argv[4:7]])
    elif cmd == "torch":
        run_torch(*sys.argv[2:6])
    elif cmd == "compare":
        print(json.dumps(compare(sys.argv[2], sys.argv[3])))
    elif cmd == "record":
        record(sys.argv[2:])
    elif cmd == "sample":
        sample(int(sys.argv[2]), sys.argv[3])
    elif cmd == "need":
        need(sys.argv[2], sys.argv[3])
    elif cmd == "table":
        table(sys.argv[2])
    else:
        sys.exit(__doc__)
