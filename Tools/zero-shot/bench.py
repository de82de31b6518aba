"""Tools/bench-zero-shot: items per second of `shears eval --tasks` against lm-eval 0.4.13 with
transformers (hf backend, float32) on the same model folder, rows, item limit and thread count,
task by task. shears' time includes opening the model (one process per task); lm-eval's does not
(the model is loaded once before timing). Both wall time and CPU time (user + system, all
threads) are reported: on a shared machine the CPU-time ratio is the steadier one."""
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
ap.add_argument("--limit", type=int, default=100)
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--batch-size", type=int, default=8)
a = ap.parse_args()

torch.set_num_threads(a.threads)
tok = lm_eval_local.tokenizer(a.model)
model = AutoModelForCausalLM.from_pretrained(a.model, dtype=torch.float32).eval()
lm = HFLM(pretrained=model, tokenizer=tok, batch_size=a.batch_size)
def cpu_children():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime

print(f"{'task':14s} {'items':>5s} | wall items/s: {'lm-eval':>8s} {'shears':>8s} {'ratio':>6s} | CPU-time items/s: {'lm-eval':>8s} {'shears':>8s} {'ratio':>6s}")
rows = []
for t in a.tasks.split(","):
    t0, c0 = time.time(), time.process_time()
    _, samples = lm_eval_local.run(lm, a.data, [t], limit=a.limit)
    ref, ref_cpu = time.time() - t0, time.process_time() - c0
    n = len(samples[t])
    t0, c0 = time.time(), cpu_children()
    subprocess.run([a.shears, "eval", a.model, "--tasks", t, "--task-data", a.data, "--limit", str(a.limit),
                    "--threads", str(a.threads), "--json"], check=True, capture_output=True)
    ours, ours_cpu = time.time() - t0, cpu_children() - c0
    rows.append({"task": t, "items": n, "wall": {"lm_eval_s": ref, "shears_s": ours, "ratio": ref / ours},
                 "cpu": {"lm_eval_s": ref_cpu, "shears_s": ours_cpu, "ratio": ref_cpu / ours_cpu}})
    print(f"{t:14s} {n:5d} | {'':13s} {n / ref:8.2f} {n / ours:8.2f} {ref / ours:6.2f} | {'':17s} {n / ref_cpu:8.2f} {n / ours_cpu:8.2f} {ref_cpu / ours_cpu:6.2f}", flush=True)
print(json.dumps(rows))
