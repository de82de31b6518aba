"""Tools/check-zero-shot's comparison: lm-eval 0.4.13 (hf backend, float32) against
`shears eval --tasks` on the same model folder and the same local rows.

Compares every item's per-choice log-likelihood (within --tolerance absolute), acc and acc_norm
per item and per task, and lists every item whose choice flips where the margin between the two
best choices is under --tie (a near tie), instead of hiding it. Writes a JSON summary."""
import argparse, json, os, resource, subprocess, sys, time

import torch
from transformers import AutoModelForCausalLM, PreTrainedTokenizerFast
from lm_eval.models.huggingface import HFLM

sys.path.insert(0, os.path.dirname(__file__))
import lm_eval_local

ap = argparse.ArgumentParser()
ap.add_argument("--model", required=True)
ap.add_argument("--data", required=True)
ap.add_argument("--shears", required=True)
ap.add_argument("--tasks", default=",".join(lm_eval_local.TASKS))
ap.add_argument("--limit", type=int, default=500)
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--batch-size", type=int, default=8)
ap.add_argument("--tolerance", type=float, default=1e-4)
ap.add_argument("--tie", type=float, default=1e-4)
ap.add_argument("--out", default=None)
ap.add_argument("--reference", default=None,
                help="lm-eval's results as JSON: read from this file when it exists (same tasks and limit), else computed and written to it")
ap.add_argument("--reference-only", action="store_true", help="stop after lm-eval's results are written to --reference")
a = ap.parse_args()
tasks = a.tasks.split(",")

torch.set_num_threads(a.threads)
cached = None
if a.reference and os.path.exists(a.reference):
    cached = json.load(open(a.reference))
    if cached["limit"] != a.limit or sorted(cached["tasks"]) != sorted(tasks):
        sys.exit(f"{a.reference}: lm-eval results for tasks {cached['tasks']} limit {cached['limit']}, not {tasks} limit {a.limit}")
if cached:
    ref_results, ref_samples, t_ref = cached["results"], cached["samples"], cached["seconds"]
    cpu_ref = cached.get("cpu_seconds")
else:
    t0, c0 = time.time(), time.process_time()
    tok = lm_eval_local.tokenizer(a.model)
    model = AutoModelForCausalLM.from_pretrained(a.model, dtype=torch.float32).eval()
    lm = HFLM(pretrained=model, tokenizer=tok, batch_size=a.batch_size)
    ref_results, ref_samples = lm_eval_local.run(lm, a.data, tasks, limit=a.limit)
    t_ref, cpu_ref = time.time() - t0, time.process_time() - c0
    # Only what the comparison reads: lm-eval's samples also hold the documents.
    ref_samples = {t: [{k: s[k] for k in ("doc_id", "resps", "acc", "acc_norm") if k in s} for s in v]
                   for t, v in ref_samples.items()}
    if a.reference:
        with open(a.reference, "w") as f:
            json.dump({"limit": a.limit, "tasks": tasks, "seconds": t_ref, "cpu_seconds": cpu_ref, "threads": a.threads,
                       "batch_size": a.batch_size, "results": ref_results, "samples": ref_samples}, f, default=float)
if a.reference_only:
    print(f"lm-eval {t_ref:.1f} s; results in {a.reference}")
    sys.exit(0)

samples_path = (a.out or "/tmp/check-zero-shot") + ".shears-samples.jsonl"
def cpu_children():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


t0, c0 = time.time(), cpu_children()
p = subprocess.run([a.shears, "eval", a.model, "--tasks", a.tasks, "--task-data", a.data, "--limit", str(a.limit),
                    "--threads", str(a.threads), "--samples-out", samples_path, "--json"], capture_output=True, text=True)
t_ours, cpu_ours = time.time() - t0, cpu_children() - c0
if p.returncode != 0:
    sys.exit("shears eval failed: " + p.stderr)
ours_report = json.loads(p.stdout)
ours = {}
for line in open(samples_path):
    r = json.loads(line)
    ours.setdefault(r["task"], []).append(r)

summary = {"model": a.model, "limit": a.limit, "threads": a.threads, "tolerance": a.tolerance,
           "lm_eval_seconds": round(t_ref, 1), "shears_seconds": round(t_ours, 1),
           "lm_eval_cpu_seconds": cpu_ref and round(cpu_ref, 1), "shears_cpu_seconds": round(cpu_ours, 1), "tasks": {}}
ok = True
for t in tasks:
    ref, mine = ref_samples[t], ours[t]
    assert len(ref) == len(mine), (t, len(ref), len(mine))
    worst, over, acc_diff, norm_diff, flips = 0.0, 0, [], [], []
    for i, (r, m) in enumerate(zip(ref, mine)):
        lls = [float(x[0][0]) if isinstance(x[0], (list, tuple)) else float(x[0]) for x in r["resps"]]
        d = max(abs(x - y) for x, y in zip(lls, m["loglikelihoods"]))
        worst = max(worst, d)
        over += d > a.tolerance
        ranked = sorted(lls, reverse=True)
        margin = ranked[0] - ranked[1] if len(ranked) > 1 else float("inf")
        acc_ref = r["acc"]
        acc_ours = 1.0 if m["predicted"] == m["gold"] else 0.0
        if acc_ref != acc_ours:
            (flips if margin < a.tie else acc_diff).append({"index": i, "margin": margin, "lm_eval": lls, "shears": m["loglikelihoods"]})
        if "acc_norm" in r:
            an_ours = 1.0 if m["predicted_norm"] == m["gold"] else 0.0
            if r["acc_norm"] != an_ours:
                norm_diff.append(i)
    mine_task = next(x for x in ours_report["tasks"] if x["task"] == t)
    res = ref_results[t]
    entry = {"n": len(ref), "max_abs_loglik_diff": worst, "items_over_tolerance": over,
             "acc_lm_eval": res.get("acc,none"), "acc_shears": mine_task["acc"],
             "acc_stderr_lm_eval": res.get("acc_stderr,none"), "acc_stderr_shears": mine_task["acc_stderr"],
             "acc_norm_lm_eval": res.get("acc_norm,none"), "acc_norm_shears": mine_task.get("acc_norm"),
             "acc_item_differences": acc_diff, "near_tie_flips": flips, "acc_norm_item_differences": norm_diff}
    entry["equal"] = (over == 0 and not acc_diff and not norm_diff and not flips)
    ok = ok and over == 0 and not acc_diff and not norm_diff
    summary["tasks"][t] = entry
    print(f"{t:14s} n={len(ref):4d} max|Δll|={worst:.2e} over={over} acc lm-eval={entry['acc_lm_eval']:.4f} shears={entry['acc_shears']:.4f}"
          + (f" acc_norm lm-eval={entry['acc_norm_lm_eval']:.4f} shears={entry['acc_norm_shears']:.4f}" if entry["acc_norm_lm_eval"] is not None else "")
          + f" acc-diffs={len(acc_diff)} norm-diffs={len(norm_diff)} near-tie-flips={len(flips)}")
    for f in flips:
        print(f"  near-tie flip: {t} item {f['index']} margin {f['margin']:.2e}")
print(f"lm-eval {t_ref:.1f} s, shears {t_ours:.1f} s wall (shears includes model load); CPU time lm-eval "
      + (f"{cpu_ref:.1f}" if cpu_ref else "?") + f" s, shears {cpu_ours:.1f} s")
summary["ok"] = ok
if a.out:
    with open(a.out, "w") as f:
        json.dump(summary, f, indent=1)
print("check-zero-shot: " + ("EQUAL" if ok else "DIFFERENT"))
sys.exit(0 if ok else 1)
