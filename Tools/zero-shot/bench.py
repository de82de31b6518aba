"""Tools/bench-zero-shot: items per second of `shears eval --tasks` against lm-eval 0.4.13 with
transformers (hf backend, float32) on the same model folder, rows, item limit and thread count,
task by task. shears' time includes opening the model (one process per task); lm-eval's does not
(the model is loaded once before timing)."""
import argparse, json, os, subprocess, sys, time

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
tok = PreTrainedTokenizerFast(tokenizer_file=os.path.join(a.model, "tokenizer.json"))
model = AutoModelForCausalLM.from_pretrained(a.model, dtype=torch.float32).eval()
lm = HFLM(pretrained=model, tokenizer=tok, batch_size=a.batch_size)
print(f"{'task':14s} {'items':>5s} {'lm-eval items/s':>16s} {'shears items/s':>15s} {'ratio':>6s}")
rows = []
for t in a.tasks.split(","):
    t0 = time.time()
    _, samples = lm_eval_local.run(lm, a.data, [t], limit=a.limit)
    ref = time.time() - t0
    n = len(samples[t])
    t0 = time.time()
    subprocess.run([a.shears, "eval", a.model, "--tasks", t, "--task-data", a.data, "--limit", str(a.limit),
                    "--threads", str(a.threads), "--json"], check=True, capture_output=True)
    ours = time.time() - t0
    rows.append({"task": t, "items": n, "lm_eval_items_per_s": n / ref, "shears_items_per_s": n / ours, "ratio": ref / ours})
    print(f"{t:14s} {n:5d} {n / ref:16.2f} {n / ours:15.2f} {ref / ours:6.2f}", flush=True)
print(json.dumps(rows))
