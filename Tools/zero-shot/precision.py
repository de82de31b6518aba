"""Tools/check-zero-shot-precision's measurement: who is closer to the exact log-likelihood,
lm-eval (float32, batched and right-padded as it runs) or `shears eval --tasks` (float32)?

For the first --limit items of each task it builds lm-eval 0.4.13's own requests (the local task
configs of lm_eval_local), encodes each exactly as lm-eval does (`_encode_pair`, left truncation),
and computes the continuation's log-likelihood on those same token ids four ways with transformers:
  - lm-eval itself (`HFLM.loglikelihood`, float32, batch --batch-size, right padding);
  - float32, one request at a time, no padding, log_softmax and sum in float32 (lm-eval's arithmetic);
  - the same float32 logits with log_softmax and the sum in float64 (what shears does after its
    float32 forward pass: the log-sum-exp accumulates in double);
  - float64 weights and activations, one request at a time: the reference ("exact" to ~1e-12);
and reads Shears' values from a `--samples-out` file of the same items. Prints, per task and
overall, each float32 result's largest |Δ| from float64, how many exceed --tolerance, and the
largest |lm-eval − shears|; with --out writes every per-choice value as JSON."""
import argparse, json, math, os, sys, time

import torch
import torch.nn.functional as F
from transformers import AutoModelForCausalLM
from lm_eval.models.huggingface import HFLM
from lm_eval.tasks import TaskManager, get_task_dict

sys.path.insert(0, os.path.dirname(__file__))
import lm_eval_local

ap = argparse.ArgumentParser()
ap.add_argument("--model", required=True)
ap.add_argument("--data", required=True)
ap.add_argument("--shears-samples", required=True, help="shears eval --samples-out file of the same items")
ap.add_argument("--tasks", default=",".join(lm_eval_local.TASKS))
ap.add_argument("--limit", type=int, default=25)
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--batch-size", type=int, default=8)
ap.add_argument("--tolerance", type=float, default=1e-4)
ap.add_argument("--out", default=None)
a = ap.parse_args()
tasks = a.tasks.split(",")
torch.set_num_threads(a.threads)

tok = lm_eval_local.tokenizer(a.model)
m32 = AutoModelForCausalLM.from_pretrained(a.model, dtype=torch.float32).eval()
m64 = AutoModelForCausalLM.from_pretrained(a.model, dtype=torch.float64).eval()
lm = HFLM(pretrained=m32, tokenizer=tok, batch_size=a.batch_size)

shears = {}
for line in open(a.shears_samples):
    r = json.loads(line)
    shears[(r["task"], r["index"])] = r["loglikelihoods"]


def single(model, ids, n_cont, dtype):
    """Sums of the last n_cont tokens' log-probabilities, one unpadded sequence: with log_softmax
    and the sum in `dtype`, and (the same logits) in float64; and the per-token values."""
    with torch.no_grad():
        logits = model(torch.tensor([ids[:-1]])).logits[0][-n_cont:]
    target = torch.tensor(ids[-n_cont:])[:, None]
    lp = F.log_softmax(logits.to(dtype), dim=-1).gather(1, target)
    lp64 = F.log_softmax(logits.double(), dim=-1).gather(1, target)
    return float(lp.sum()), float(lp64.sum()), lp[:, 0].double()


rows, report = [], {}
with __import__("tempfile").TemporaryDirectory() as tmp:
    names = lm_eval_local.write_configs(a.data, tmp)
    tm = TaskManager(include_path=tmp, include_defaults=True)
    tdict = get_task_dict([names[t] for t in tasks], tm)
    for t in tasks:
        task = tdict[names[t]]
        task.build_all_requests(limit=a.limit, rank=0, world_size=1)
        inst = sorted(task.instances, key=lambda i: (i.doc_id, i.idx))
        t0 = time.time()
        batched = [x[0] for x in lm.loglikelihood(inst, disable_tqdm=True)]
        stats = {"requests": len(inst), "lm_eval_vs_f64": 0.0, "f32_single_vs_f64": 0.0, "shears_vs_f64": 0.0,
                 "f32_logits_f64_softmax_vs_f64": 0.0, "f32_logits_f64_softmax_over": 0,
                 "lm_eval_vs_shears": 0.0, "lm_eval_over": 0, "f32_single_over": 0, "shears_over": 0,
                 "lm_eval_vs_shears_over": 0, "max_continuation_tokens": 0}
        for i, b in zip(inst, batched):
            ctx, cont = i.args
            cenc, kenc = lm._encode_pair(ctx, cont)
            ids = (cenc + kenc)[-(lm.max_length + 1):]
            f64, _, tok64 = single(m64, ids, len(kenc), torch.float64)
            f32, f32_ls64, tok32 = single(m32, ids, len(kenc), torch.float32)
            s = shears[(t, i.doc_id)][i.idx]
            row = {"task": t, "index": i.doc_id, "choice": i.idx, "continuation_tokens": len(kenc), "tokens": len(ids) - 1,
                   "f64": f64, "lm_eval": b, "f32_single": f32, "f32_logits_f64_softmax": f32_ls64, "shears": s,
                   "max_token_error_f32": float((tok32 - tok64).abs().max())}
            rows.append(row)
            stats["max_continuation_tokens"] = max(stats["max_continuation_tokens"], len(kenc))
            for key, val in (("lm_eval", b), ("f32_single", f32), ("f32_logits_f64_softmax", f32_ls64), ("shears", s)):
                d = abs(val - f64)
                stats[key + "_vs_f64"] = max(stats[key + "_vs_f64"], d)
                stats[key + "_over"] += d > a.tolerance
            d = abs(b - s)
            stats["lm_eval_vs_shears"] = max(stats["lm_eval_vs_shears"], d)
            stats["lm_eval_vs_shears_over"] += d > a.tolerance
        stats["seconds"] = round(time.time() - t0, 1)
        report[t] = stats
        print(f"{t:14s} requests={len(inst):4d} max|Δ| from float64: lm-eval {stats['lm_eval_vs_f64']:.2e} "
              f"({stats['lm_eval_over']} > tol), f32 unbatched {stats['f32_single_vs_f64']:.2e} ({stats['f32_single_over']}), "
              f"shears {stats['shears_vs_f64']:.2e} ({stats['shears_over']}); |lm-eval − shears| {stats['lm_eval_vs_shears']:.2e} "
              f"({stats['lm_eval_vs_shears_over']}); float32 logits with a float64 log-softmax {stats['f32_logits_f64_softmax_vs_f64']:.2e} "
              f"({stats['f32_logits_f64_softmax_over']}); longest continuation {stats['max_continuation_tokens']} tokens", flush=True)


def rms(key):
    return math.sqrt(sum((r[key] - r["f64"]) ** 2 for r in rows) / len(rows))


total = {k: max(r_[k] for r_ in report.values())
         for k in ("lm_eval_vs_f64", "f32_single_vs_f64", "f32_logits_f64_softmax_vs_f64", "shears_vs_f64", "lm_eval_vs_shears")}
total.update({k: sum(r_[k] for r_ in report.values())
              for k in ("requests", "lm_eval_over", "f32_single_over", "f32_logits_f64_softmax_over", "shears_over", "lm_eval_vs_shears_over")})
total.update({"rms_" + k + "_vs_f64": rms(k) for k in ("lm_eval", "f32_single", "f32_logits_f64_softmax", "shears")})
print("all: " + json.dumps(total))
if a.out:
    with open(a.out, "w") as f:
        json.dump({"limit": a.limit, "tolerance": a.tolerance, "tasks": report, "all": total, "rows": rows}, f, indent=1)
