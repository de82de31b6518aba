"""Writes Fixtures/zero-shot: a few raw rows per task (excerpts of Tools/fetch-tasks' JSONL) and
goldens.json from lm-eval 0.4.13 itself on the bundled austen-llama model (float32): every
request's context and continuation strings, lm-eval's token ids for them, its log-likelihood, and
the exact (float64) log-likelihood of the same ids (goldens_float64.py)."""
import json, os, sys

import torch
from transformers import LlamaForCausalLM, PreTrainedTokenizerFast
from lm_eval.models.huggingface import HFLM

sys.path.insert(0, os.path.dirname(__file__))
import lm_eval_local

data_dir, root = sys.argv[1], sys.argv[2]
out_dir = os.path.join(root, "Fixtures", "zero-shot")
model_dir = os.path.join(root, "Fixtures", "models", "austen-llama")
os.makedirs(out_dir, exist_ok=True)

# Rows: the first three of each task, plus rows that exercise the definitions' corners.
def pick(task, rows):
    chosen = rows[:3]
    if task == "hellaswag":  # WikiHow rows with [title]/[step] brackets
        chosen += [r for r in rows if "[" in r["ctx"] or any("[" in e for e in r["endings"])][:2]
    if task == "boolq":  # a passage longer than the tiny model's 512 tokens: left truncation
        chosen += [max(rows[:400], key=lambda r: len(r["passage"]))]
    if task == "openbookqa":
        chosen += [r for r in rows if r["answerKey"] != r["answerKey"].lstrip()][:1]
    return chosen

for task in lm_eval_local.TASKS:
    rows = [json.loads(l) for l in open(os.path.join(data_dir, task + ".jsonl"), encoding="utf-8") if l.strip()]
    with open(os.path.join(out_dir, task + ".jsonl"), "w", encoding="utf-8") as f:
        for r in pick(task, rows):
            f.write(json.dumps(r, ensure_ascii=False) + "\n")

torch.set_num_threads(2)
tok = PreTrainedTokenizerFast(tokenizer_file=os.path.join(model_dir, "tokenizer.json"), bos_token="<|endoftext|>", eos_token="<|endoftext|>")
model = LlamaForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
lm = HFLM(pretrained=model, tokenizer=tok, batch_size=4, max_length=None)
results, samples = lm_eval_local.run(lm, out_dir, list(lm_eval_local.TASKS))
goldens = {"model": "Fixtures/models/austen-llama", "max_length": lm.max_length, "lm_eval": lm_eval_local.lm_eval.__version__ if hasattr(lm_eval_local.lm_eval, "__version__") else "0.4.13", "tasks": {}}
for task, items in samples.items():
    out = []
    for s in items:
        reqs = []
        for (ctx, cont), resp in zip(s["arguments"], s["resps"]):
            ctx_ids, cont_ids = lm._encode_pair(ctx, cont)
            full = (ctx_ids + cont_ids)[-(lm.max_length + 1):]
            reqs.append({"context": ctx, "continuation": cont, "context_ids": ctx_ids, "continuation_ids": cont_ids,
                         "truncated_context_ids": full[: len(full) - len(cont_ids)],
                         "loglikelihood": float(resp[0][0]), "greedy": bool(resp[0][1])})
        gold = {"1": 0, "2": 1}[s["doc"]["answer"]] if task == "winogrande" else s["target"]
        out.append({"doc_id": s["doc_id"], "gold": gold, "requests": reqs,
                    "acc": s.get("acc"), "acc_norm": s.get("acc_norm")})
    r = results[task]
    goldens["tasks"][task] = {"items": out, "acc": r.get("acc,none"), "acc_stderr": r.get("acc_stderr,none"),
                              "acc_norm": r.get("acc_norm,none"), "acc_norm_stderr": r.get("acc_norm_stderr,none")}
with open(os.path.join(out_dir, "goldens.json"), "w", encoding="utf-8") as f:
    json.dump(goldens, f, ensure_ascii=False, separators=(",", ":"))
    f.write("\n")
import goldens_float64
goldens_float64.add_float64(root)
print(out_dir)
